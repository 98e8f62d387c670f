/**
 * The events `retry` emits, merged into core's `SluiceEvents` by this
 * package's `index.ts`.
 *
 * @example
 * ```ts
 * llm.events.on('retry', (e) => log.warn(`${e.code}: attempt ${e.attempt} in ${e.delayMs} ms`));
 * llm.events.on('retry-stop', (e) => metrics.increment(`retry.stop.${e.reason}`));
 * ```
 */
export interface RetryEvents {
  /** A failed attempt is retried: attempt number `attempt` is sent after `delayMs`. */
  retry: {
    id: string;
    model: string;
    /** The attempt about to be sent, 1-based: 2 for the first retry. */
    attempt: number;
    /** The wait before it: the error's `retryAfterMs` when it has one, else the backoff. */
    delayMs: number;
    /** The code of the error that caused the retry. */
    code: string;
  };
  /**
   * A retryable failure was not retried, and the call fails:
   * - `attempts`: every attempt was used; a `RetryError` is thrown;
   * - `budget`: the retry budget is spent; the attempt's error is thrown;
   * - `deadline`: the wait (`delayMs`) would pass the call's deadline; the attempt's error is thrown;
   * - `max-retry-after`: the error asked for a wait (`delayMs`) past
   *   `maxRetryAfterMs`; the attempt's error is thrown.
   *
   * An error that is not retryable (or is `final`) ends the call without this event.
   */
  'retry-stop': {
    id: string;
    model: string;
    reason: 'attempts' | 'budget' | 'deadline' | 'max-retry-after';
    /** Attempts made. */
    attempts: number;
    /** The last attempt's error code. */
    code: string;
    /** Every attempt's error code, in order. */
    codes: string[];
    /** The wait that was not taken (`deadline`, `max-retry-after`); undefined for the other reasons. */
    delayMs: number | undefined;
  };
}
