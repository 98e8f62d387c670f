import { SluiceError } from '@sluice/core';

/**
 * Which limit stopped a request: the request or token window, the
 * concurrency cap, the wait queue being full, or a cooperative pause after
 * the upstream's own 429.
 */
export type LimitKind = 'requests' | 'tokens' | 'concurrency' | 'queue' | 'pause';

/**
 * The limiter did not let a request through, and nothing was sent: in
 * `reject` mode, when its wait would pass `maxWaitMs` or the call's
 * deadline, when the queue is full, or when its token reservation can never
 * fit the window. Code `LIMIT_REJECTED`; `retryAfterMs` says when it would
 * have been admitted, when known. Retryable (after `retryAfterMs`), except
 * for a reservation larger than the whole token limit; never final (another
 * upstream with its own limit may take the call) and never the upstream's
 * fault.
 *
 * @example
 * ```ts
 * try { await llm.complete(request); }
 * catch (error) { if (error instanceof LimitRejectedError) console.log(error.limit, error.retryAfterMs); }
 * ```
 */
export class LimitRejectedError extends SluiceError {
  static override readonly brand: string = 'LimitRejectedError';
  /**
   * @param limit - which limit refused the request
   * @param key - the limiter key (`global`, `model:gpt-4.1`, `tenant:acme`, …)
   * @param retryAfterMs - how long until it would have been admitted, when known
   * @param message - what happened, for humans
   * @param retryable - false only when waiting can never help
   */
  constructor(
    readonly limit: LimitKind,
    readonly key: string,
    retryAfterMs: number | undefined,
    message: string,
    retryable = true,
  ) {
    super('LIMIT_REJECTED', message, { retryable, retryAfterMs, httpStatus: 429 });
  }
}
