import type { SluiceError } from '@sluice/core';
import { parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';
import { type Backoff, type ExponentialBackoffOptions, exponentialBackoffFrom } from './backoff.js';
import { type RetryBudget, type RetryBudgetOptions, retryBudgetFrom } from './retry-budget.js';

const isFunction = (value: unknown) => typeof value === 'function';

const retryOptionsSchema = z.strictObject({
  attempts: z.optional(z.number().check(z.int(), z.minimum(1))),
  backoff: z.optional(z.unknown()),
  random: z.optional(z.custom<() => number>(isFunction, 'must be a function returning [0, 1)')),
  retryOn: z.optional(z.custom<(error: SluiceError, attempt: number) => boolean>(isFunction, 'must be a function')),
  maxRetryAfterMs: z.optional(z.number().check(z.nonnegative())),
  budget: z.optional(z.unknown()),
});

/** Options of `retry()`. */
export interface RetryOptions {
  /** Attempts in all, the first included (default 3). 1 turns retrying off. */
  attempts?: number;
  /**
   * The wait between attempts when the error carries no `retryAfterMs`: a
   * {@link Backoff} function, or options for `exponentialBackoff`
   * (default: 1 s base, factor 2, 10 s maximum, full jitter).
   */
  backoff?: Backoff | ExponentialBackoffOptions;
  /** The random source of the default backoff (default `Math.random`); seed it in tests. */
  random?: () => number;
  /**
   * Decides whether a failed attempt is retried, instead of the error's
   * `retryable` flag. An error marked `final` (an abort, the deadline, a
   * bad request, a spent budget) is never retried, whatever it says.
   */
  retryOn?: (error: SluiceError, attempt: number) => boolean;
  /** The longest asked-for wait (`retryAfterMs`, from `Retry-After`) honoured; a longer one fails at once (default 60,000). */
  maxRetryAfterMs?: number;
  /**
   * The retry budget shared by every call through this middleware: options
   * for `retryBudget`, a budget to share between several `retry()`s, or
   * `false` for none (default: 20% of calls, 10 per second floor).
   */
  budget?: RetryBudget | RetryBudgetOptions | false;
}

/** {@link RetryOptions} validated, with every default filled in; internal. */
export interface ResolvedRetryOptions {
  attempts: number;
  backoff: Backoff;
  retryOn: ((error: SluiceError, attempt: number) => boolean) | undefined;
  maxRetryAfterMs: number;
  budget: RetryBudget | undefined;
}

/**
 * Validates `retry()`'s options and fills in the defaults; internal.
 *
 * @param options - what the user passed to `retry()`
 * @throws ValidationError naming the bad option (`retry.backoff.maxMs`)
 */
/** What users of openai-node, cockatiel and p-retry reach for first, and what it is called here. */
const hints = {
  maxRetries: "use attempts, which counts the first try too: openai-node's maxRetries: 2 is attempts: 3",
  retries: 'use attempts, which counts the first try too: retries: 2 is attempts: 3',
  maxAttempts: 'use attempts',
  timeout: "retry has no timeout of its own: give the call a deadline (timeoutMs in the call's options) or set the transport's attemptTimeoutMs",
  timeoutMs: "retry has no timeout of its own: give the call a deadline (timeoutMs in the call's options) or set the transport's attemptTimeoutMs",
  initialDelayMs: 'use backoff: { baseMs }',
  baseDelayMs: 'use backoff: { baseMs }',
  minDelayMs: 'use backoff: { baseMs }',
  maxDelayMs: 'use backoff: { maxMs }',
  factor: 'use backoff: { factor }',
  jitter: 'use backoff: { jitter }',
  shouldRetry: 'use retryOn',
};

export function resolveRetryOptions(options: RetryOptions): ResolvedRetryOptions {
  const parsed = parseOptions(retryOptionsSchema, options, 'retry', hints);
  const budget = parsed.budget as RetryBudget | RetryBudgetOptions | false | undefined;
  return {
    attempts: parsed.attempts ?? 3,
    maxRetryAfterMs: parsed.maxRetryAfterMs ?? 60_000,
    retryOn: parsed.retryOn,
    backoff: isFunction(parsed.backoff)
      ? (parsed.backoff as Backoff)
      : exponentialBackoffFrom(parsed.backoff ?? {}, 'retry.backoff', parsed.random),
    budget:
      budget === false
        ? undefined
        : isFunction((budget as RetryBudget | undefined)?.withdraw)
          ? (budget as RetryBudget)
          : retryBudgetFrom(budget ?? {}, 'retry.budget'),
  };
}
