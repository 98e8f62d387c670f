import { SluiceError } from '@sluice/core';

/** One failed attempt of a call, as `retry` saw it. */
export interface RetryAttempt {
  /** Which attempt, 1-based. */
  attempt: number;
  /** How long `retry` waited before sending it, in ms (0 for the first). */
  delayMs: number;
  /** Its error's `code` (`SERVER_ERROR`, `RATE_LIMITED`, `CONNECTION`, …). */
  code: string;
  /** The error it failed with. */
  error: SluiceError;
}

/**
 * Every attempt `retry` was allowed failed with a retryable error. Not
 * retryable itself. `cause` and `lastError` are the last attempt's error
 * (the typed upstream error, with its `status` and `retryAfterMs`);
 * `attempts` keeps each attempt's error and the wait before it.
 *
 * Only running out of attempts gives a `RetryError`: when `retry` stops
 * early (an error that is not retryable, a wait past `maxRetryAfterMs` or
 * the deadline, a spent budget) the attempt's error is thrown as it is.
 *
 * @example
 * ```ts
 * try { await llm.complete(request); }
 * catch (error) {
 *   if (error instanceof RetryError) log.warn(error.message, error.attempts.map((a) => a.delayMs));
 * }
 * ```
 */
export class RetryError extends SluiceError {
  static override readonly brand: string = 'RetryError';

  /** The last attempt's error, also the `cause`. */
  readonly lastError: SluiceError;

  /**
   * @param attempts - every attempt, in order; the last one's error becomes `cause`
   * @throws RangeError when `attempts` is empty
   */
  constructor(readonly attempts: readonly RetryAttempt[]) {
    const last = attempts.at(-1);
    if (!last) throw new RangeError('RetryError needs at least one attempt');
    const codes = attempts.map((attempt) => attempt.code).join(', ');
    const count = attempts.length === 1 ? '1 attempt' : `${attempts.length} attempts`;
    super('RETRY_EXHAUSTED', `${count} failed: ${codes}`, { cause: last.error, retryable: false });
    this.lastError = last.error;
  }
}
