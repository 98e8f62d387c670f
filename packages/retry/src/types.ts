import type { RetryAttempt } from './retry-error.js';

/**
 * What `retry` knows about the call in flight, under `ctx.state.retry`.
 * Middleware outside `retry` read it after `await next()`.
 *
 * @example
 * ```ts
 * llm.use(async function logAttempts(ctx, next) {
 *   try { await next(); } finally { console.log(ctx.state.retry?.attempt, ctx.state.retry?.stopped); }
 * });
 * ```
 */
export interface RetryState {
  /** The attempt in flight, or the last one made, 1-based. */
  attempt: number;
  /** Every failed attempt so far, with its error and the wait before it. */
  attempts: RetryAttempt[];
  /**
   * Why `retry` stopped retrying, once a failure ended the call:
   * `not-retryable` (the error's `retryable` flag or `retryOn` said no, or
   * its code is never retried), `attempts` (all used: a `RetryError`),
   * `max-retry-after` (the server asked for a wait past `maxRetryAfterMs`),
   * `deadline` (the wait would pass the call's deadline), `budget` (the
   * retry budget was spent), `aborted` (the caller aborted; the deadline
   * passing mid-call gives `deadline`). Undefined while it may still
   * retry, and on success.
   */
  stopped?: 'not-retryable' | 'attempts' | 'max-retry-after' | 'deadline' | 'budget' | 'aborted';
}

/**
 * The events `retry` emits, merged into core's `SluiceEvents`.
 *
 * @example
 * ```ts
 * llm.events.on('retry', (e) => log.warn(`${e.code}: attempt ${e.attempt} in ${e.delayMs} ms`));
 * llm.events.on('retry-budget-exhausted', (e) => metrics.increment('retry.budget_exhausted'));
 * ```
 */
export interface RetryEvents {
  /** A failed attempt is retried: attempt number `attempt` is sent after `delayMs`. */
  retry: {
    id: string;
    model: string;
    /** The attempt about to be sent, 1-based: 2 for the first retry. */
    attempt: number;
    /** The wait before it: the server's `retryAfterMs` when it gave one, else the backoff. */
    delayMs: number;
    /** The code of the error that caused the retry. */
    code: string;
  };
  /** Every attempt failed; a `RetryError` is thrown. */
  'retry-exhausted': { id: string; model: string; attempts: number; codes: string[] };
  /** A retryable failure was not retried because the retry budget is spent; its error is thrown. */
  'retry-budget-exhausted': { id: string; model: string; attempt: number; code: string };
  /**
   * A retryable failure was not retried because the wait is too long:
   * past `maxRetryAfterMs` (`reason: 'max-retry-after'`) or past the
   * call's deadline (`reason: 'deadline'`); its error is thrown at once.
   */
  'retry-abandoned': {
    id: string;
    model: string;
    attempt: number;
    code: string;
    delayMs: number;
    reason: 'max-retry-after' | 'deadline';
  };
}

declare module '@sluice/core' {
  interface SluiceEvents {
    retry: RetryEvents['retry'];
    'retry-exhausted': RetryEvents['retry-exhausted'];
    'retry-budget-exhausted': RetryEvents['retry-budget-exhausted'];
    'retry-abandoned': RetryEvents['retry-abandoned'];
  }
  interface SluiceState {
    retry?: RetryState;
  }
}
