import { type CompletionContext, type Middleware, sleep, type SluiceError, toSluiceError, ValidationError } from '@sluice/core';
import { parseOptions } from '@sluice/core/kit';
import { z } from 'zod';
import { type Backoff, type ExponentialBackoffOptions, exponentialBackoffFrom } from './backoff.js';
import { withFirstChunk } from './first-chunk.js';
import { type RetryBudget, type RetryBudgetOptions, retryBudgetFrom } from './retry-budget.js';
import { RetryError } from './retry-error.js';
import type { RetryState } from './types.js';

const isFunction = (value: unknown) => typeof value === 'function';

const retryOptionsSchema = z.strictObject({
  attempts: z.number().int().min(1).optional(),
  backoff: z.unknown().optional(),
  random: z.custom<() => number>(isFunction, 'must be a function returning [0, 1)').optional(),
  retryOn: z.custom<(error: SluiceError, attempt: number) => boolean>(isFunction, 'must be a function').optional(),
  maxRetryAfterMs: z.number().nonnegative().optional(),
  budget: z.unknown().optional(),
});

/** Options of {@link retry}. */
export interface RetryOptions {
  /** Attempts in all, the first included (default 3). 1 turns retrying off. */
  attempts?: number;
  /**
   * The wait between attempts when the server gave no `Retry-After`: a
   * {@link Backoff} function, or options for {@link exponentialBackoff}
   * (default: 1 s base, factor 2, 10 s cap, full jitter).
   */
  backoff?: Backoff | ExponentialBackoffOptions;
  /** The random source of the default backoff (default `Math.random`); seed it in tests. */
  random?: () => number;
  /**
   * Decides whether a failed attempt is retried, instead of the error's
   * `retryable` flag. Errors that are never retried (see the README) stay
   * so whatever it says.
   */
  retryOn?: (error: SluiceError, attempt: number) => boolean;
  /** The longest server-asked wait (`Retry-After`) honoured; a longer one fails at once (default 60,000). */
  maxRetryAfterMs?: number;
  /**
   * The retry budget shared by every call through this middleware: options
   * for {@link retryBudget}, a budget to share between several `retry()`s,
   * or `false` for none (default: 20% of calls, 10 per second floor).
   */
  budget?: RetryBudget | RetryBudgetOptions | false;
}

/**
 * Codes never retried, whatever `retryable` or `retryOn` say: sending
 * the same request again cannot change the answer (400, 401, 403, 404,
 * 422, a bad option), or retrying would defeat another decision (the
 * caller aborted, a circuit is open, a cost budget is spent).
 */
const neverRetried = new Set([
  'BAD_REQUEST',
  'CONTEXT_LENGTH_EXCEEDED',
  'AUTHENTICATION',
  'PERMISSION_DENIED',
  'NOT_FOUND',
  'UNPROCESSABLE_ENTITY',
  'VALIDATION',
  'ABORTED',
  'CIRCUIT_OPEN',
  'BUDGET_EXCEEDED',
]);

const isNeverRetried = (error: SluiceError) => error.final || neverRetried.has(error.code);

/** The server's asked-for wait, from any error that carries one (core's UpstreamError does). */
function retryAfterOf(error: SluiceError): number | undefined {
  const value = (error as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

/**
 * Retries failed attempts with exponential backoff and full jitter,
 * honouring the server's `Retry-After`, within the call's one deadline
 * and a retry budget.
 *
 * - Retries what is `retryable` (429, 5xx, 408, 409, connection errors,
 *   attempt timeouts, a stream broken before its first chunk), or what
 *   `retryOn` accepts; never 400/401/403/404/422, an abort, a passed
 *   deadline, an open circuit or a spent cost budget.
 * - Waits the server's `retryAfterMs` when it gave one, else the backoff.
 *   A wait past `maxRetryAfterMs` or past the deadline fails at once.
 * - A stream is retried only until its first chunk: that chunk is read
 *   here, and once it is handed on, nothing is retried.
 * - When every attempt failed it throws a {@link RetryError} keeping them
 *   all; when it stops early, it throws the upstream's error itself.
 *
 * @param options - attempts, backoff, retryOn, maxRetryAfterMs, budget; all optional
 * @returns the `retry` middleware
 * @throws ValidationError naming the bad option (`retry.attempts`)
 * @example
 * ```ts
 * const llm = createPipeline({ transport: openAICompatible({ baseUrl, apiKey }) })
 *   .use(retry({ attempts: 3 }))
 *   .use(breaker());
 * llm.events.on('retry', (e) => log.warn(`retrying ${e.code} in ${e.delayMs} ms`));
 * ```
 */
export function retry(options: RetryOptions = {}): Middleware {
  const parsed = parseOptions(retryOptionsSchema, options, 'retry');
  const attempts = parsed.attempts ?? 3;
  const maxRetryAfterMs = parsed.maxRetryAfterMs ?? 60_000;
  const { retryOn } = parsed;
  const backoff: Backoff = isFunction(parsed.backoff)
    ? (parsed.backoff as Backoff)
    : exponentialBackoffFrom(parsed.backoff ?? {}, 'retry.backoff', parsed.random);
  const budget: RetryBudget | undefined =
    parsed.budget === false
      ? undefined
      : isFunction((parsed.budget as RetryBudget | undefined)?.withdraw)
        ? (parsed.budget as RetryBudget)
        : retryBudgetFrom(parsed.budget ?? {}, 'retry.budget');

  /** The wait before the next attempt; throws (recording why) when there is none. */
  function plan(ctx: CompletionContext, state: RetryState, error: SluiceError): number {
    const attempt = state.attempt;
    const base = { id: ctx.id, model: ctx.request.model, attempt, code: error.code };
    const stop = (reason: NonNullable<RetryState['stopped']>, thrown: SluiceError = error) => {
      state.stopped = reason;
      return thrown;
    };
    if (ctx.signal.aborted) {
      const reason = toSluiceError(ctx.signal.reason);
      throw stop(reason.code === 'ABORTED' ? 'aborted' : 'deadline', reason);
    }
    if (isNeverRetried(error) || !(retryOn ? retryOn(error, attempt) : error.retryable)) throw stop('not-retryable');
    if (attempt >= attempts) {
      if (attempts === 1) throw stop('attempts');
      const codes = state.attempts.map((failed) => failed.code);
      ctx.events.emit('retry-exhausted', { id: ctx.id, model: ctx.request.model, attempts: attempt, codes });
      throw stop('attempts', new RetryError(state.attempts));
    }
    const retryAfterMs = retryAfterOf(error);
    if (retryAfterMs !== undefined && retryAfterMs > maxRetryAfterMs) {
      ctx.events.emit('retry-abandoned', { ...base, delayMs: retryAfterMs, reason: 'max-retry-after' });
      throw stop('max-retry-after');
    }
    const delayMs = retryAfterMs ?? backoff(attempt, error);
    if (!(Number.isFinite(delayMs) && delayMs >= 0)) {
      throw new ValidationError('retry.backoff', `returned ${delayMs}; a wait must be a finite number of ms, 0 or more`);
    }
    if (delayMs >= ctx.remainingMs()) {
      ctx.events.emit('retry-abandoned', { ...base, delayMs, reason: 'deadline' });
      throw stop('deadline');
    }
    if (budget && !budget.withdraw(ctx.clock.now())) {
      ctx.events.emit('retry-budget-exhausted', base);
      throw stop('budget');
    }
    ctx.events.emit('retry', { ...base, attempt: attempt + 1, delayMs });
    return delayMs;
  }

  return async function retry(ctx, next) {
    const state: RetryState = { attempt: 0, attempts: [] };
    ctx.state.retry = state;
    budget?.deposit(ctx.clock.now());
    let delayMs = 0;
    for (;;) {
      state.attempt += 1;
      try {
        await next();
        // Failures that only show on reading (an SSE error, a cut before
        // any chunk) are still retryable here: nothing reached the caller.
        if (ctx.stream && ctx.chunks) ctx.chunks = await withFirstChunk(ctx.chunks);
        return;
      } catch (caught) {
        const error = toSluiceError(caught);
        state.attempts.push({ attempt: state.attempt, delayMs, code: error.code, error });
        delayMs = plan(ctx, state, error);
      }
      try {
        await sleep(delayMs, { clock: ctx.clock, signal: ctx.signal });
      } catch (caught) {
        const reason = toSluiceError(caught);
        state.stopped = reason.code === 'ABORTED' ? 'aborted' : 'deadline';
        throw reason;
      }
    }
  };
}
