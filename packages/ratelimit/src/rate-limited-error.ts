import { SluiceError, type SluiceErrorOptions } from '@sluice/core';

/**
 * Which limit stopped a request: the request or token rate, the
 * concurrency cap, the wait queue being full, or a cooperative pause after
 * the upstream's own 429.
 */
export type LimitKind = 'requests' | 'tokens' | 'concurrency' | 'queue' | 'pause';

/**
 * The limiter did not let a request through: in `reject` mode, when its
 * wait would pass `maxWaitMs` or the call's deadline, when the queue is
 * full, or when its token reservation can never fit the window (then
 * `retryable` is false). Code `LIMIT_REJECTED`.
 *
 * @example
 * ```ts
 * try { await llm.complete(request); }
 * catch (error) { if (error instanceof RateLimitedError) console.log(error.limit, error.retryAfterMs); }
 * ```
 */
export class RateLimitedError extends SluiceError {
  static override readonly brand: string = 'RateLimitedError';
  /**
   * @param limit - which limit refused the request
   * @param key - the limiter key (`global`, `model:gpt-4.1`, `tenant:acme`, …)
   * @param retryAfterMs - how long until it would have been admitted, when known
   * @param message - what happened, for humans
   * @param options - `cause`, and `retryable` (default true)
   */
  constructor(
    readonly limit: LimitKind,
    readonly key: string,
    override readonly retryAfterMs: number | undefined,
    message: string,
    options: SluiceErrorOptions = {},
  ) {
    super('LIMIT_REJECTED', message, { retryable: true, ...options });
  }
}
