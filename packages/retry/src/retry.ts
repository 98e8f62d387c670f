import { type CompletionContext, type Middleware, sleep, type SluiceError, toSluiceError, ValidationError } from '@sluice/core';
import { keepsChainRules, readAhead } from '@sluice/core/kit';
import { RetryError, type RetryAttempt } from './errors.js';
import type { RetryEvents } from './events.js';
import { withFirstChunk } from './first-chunk.js';
import { resolveRetryOptions, type RetryOptions } from './options.js';

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
   * `not-retryable` (the error is `final`, or its `retryable` flag or
   * `retryOn` said no), `attempts` (all used: a `RetryError`),
   * `max-retry-after` (the error asked for a wait past `maxRetryAfterMs`),
   * `deadline` (the wait would pass the call's deadline, or it passed),
   * `budget` (the retry budget was spent), `aborted` (the caller aborted).
   * Undefined while it may still retry, and on success.
   */
  stopped?: 'not-retryable' | 'attempts' | 'max-retry-after' | 'deadline' | 'budget' | 'aborted';
}

type StopReason = RetryEvents['retry-stop']['reason'];

/** An asked-for wait that can be honoured: a finite number of ms, 0 or more. */
const validWait = (value: number | undefined) =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;

/**
 * Retries failed attempts with exponential backoff and full jitter,
 * honouring the server's `Retry-After`, within the call's one deadline
 * and a retry budget.
 *
 * - Retries what the error says is `retryable` (429, 5xx, 408, 409,
 *   connection errors, attempt timeouts, a stream broken before its first
 *   chunk), or what `retryOn` accepts; never an error marked `final` (an
 *   abort, the call's deadline, 400/401/403/422, a spent cost budget).
 * - Waits the error's `retryAfterMs` when it has one, else the backoff.
 *   A wait past `maxRetryAfterMs` or past the deadline fails at once.
 * - A stream is retried only until its first chunk: that chunk is read
 *   here, and once it is handed on, nothing is retried.
 * - When every attempt failed it throws a {@link RetryError} keeping them
 *   all; when it stops early, it throws the attempt's error itself.
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
  const { attempts, backoff, retryOn, maxRetryAfterMs, budget } = resolveRetryOptions(options);

  /** The wait before the next attempt; throws (recording why) when there is none. */
  function plan(ctx: CompletionContext, state: RetryState, error: SluiceError): number {
    const attempt = state.attempt;
    const stop = (reason: NonNullable<RetryState['stopped']>, thrown: SluiceError = error) => {
      state.stopped = reason;
      return thrown;
    };
    const stopEvent = (reason: StopReason, delayMs: number | undefined) => {
      const codes = state.attempts.map((failed) => failed.code);
      ctx.events.emit('retry-stop', { id: ctx.id, model: ctx.request.model, reason, attempts: attempt, code: error.code, codes, delayMs });
    };
    if (ctx.signal.aborted) {
      const reason = toSluiceError(ctx.signal.reason);
      throw stop(reason.code === 'ABORTED' ? 'aborted' : 'deadline', reason);
    }
    if (error.final || !(retryOn ? retryOn(error, attempt) : error.retryable)) throw stop('not-retryable');
    if (attempt >= attempts) {
      if (attempts === 1) throw stop('attempts');
      stopEvent('attempts', undefined);
      throw stop('attempts', new RetryError(state.attempts));
    }
    const retryAfterMs = validWait(error.retryAfterMs);
    if (retryAfterMs !== undefined && retryAfterMs > maxRetryAfterMs) {
      stopEvent('max-retry-after', retryAfterMs);
      throw stop('max-retry-after');
    }
    const delayMs = retryAfterMs ?? backoff(attempt, error);
    if (typeof delayMs !== 'number' || !(Number.isFinite(delayMs) && delayMs >= 0)) {
      // JSON for anything but a number, so '10' does not read as the number 10.
      const shown = typeof delayMs === 'number' ? String(delayMs) : (JSON.stringify(delayMs) ?? String(delayMs));
      throw new ValidationError('retry.backoff', `returned ${shown}; a wait must be a finite number of ms, 0 or more`);
    }
    if (delayMs >= ctx.remainingMs()) {
      stopEvent('deadline', delayMs);
      throw stop('deadline');
    }
    if (budget && !budget.withdraw(ctx.clock.now())) {
      stopEvent('budget', undefined);
      throw stop('budget');
    }
    ctx.events.emit('retry', { id: ctx.id, model: ctx.request.model, attempt: attempt + 1, delayMs, code: error.code });
    return delayMs;
  }

  // Not async: the first attempt, which is nearly every call's only one, is
  // one `then` rather than an async frame held for as long as the call is
  // in flight; the loop starts only once an attempt failed.
  return keepsChainRules<Middleware>(function retry(ctx, next) {
    const state: RetryState = { attempt: 1, attempts: [] };
    ctx.state.retry = state;
    budget?.deposit(ctx.clock.now());
    let first: Promise<void>;
    try {
      first = next();
    } catch (caught) {
      first = Promise.reject(caught);
    }
    const again = (caught: unknown) => retryAfter(ctx, next, state, caught);
    // Failures that only show on reading (an SSE error, a cut before any
    // chunk) are still retryable here: nothing reached the caller.
    if (ctx.stream) return first.then(() => firstChunk(ctx)).then(undefined, again);
    return first.then(undefined, again);
  });

  /** The attempts after a failed one: wait as planned, try again, until one succeeds or the plan says stop. */
  async function retryAfter(ctx: CompletionContext, next: () => Promise<void>, state: RetryState, caught: unknown): Promise<void> {
    let delayMs = 0;
    for (;;) {
      const error = toSluiceError(caught);
      state.attempts.push({ attempt: state.attempt, delayMs, code: error.code, error });
      delayMs = plan(ctx, state, error);
      try {
        await sleep(delayMs, { clock: ctx.clock, signal: ctx.signal });
      } catch (stopped) {
        const reason = toSluiceError(stopped);
        state.stopped = reason.code === 'ABORTED' ? 'aborted' : 'deadline';
        throw reason;
      }
      state.attempt += 1;
      try {
        await next();
        await firstChunk(ctx);
        return;
      } catch (failed) {
        caught = failed;
      }
    }
  }
}

/**
 * A stream's first chunk read ahead, so that a failure at it can still be
 * retried: by core on the transport's own stream, which then stays in
 * `ctx.chunks` (a cache outside still keeps the upstream's text of its
 * chunks instead of serialising them), else by a wrapper of our own.
 */
function firstChunk(ctx: CompletionContext): Promise<void> | undefined {
  // Not async: core's read-ahead is already a promise, and an async frame
  // around it cost a promise and an await more on every streamed call.
  if (!ctx.stream || !ctx.chunks) return undefined;
  const ahead = readAhead(ctx);
  if (ahead) return ahead;
  return withFirstChunk(ctx.chunks).then((chunks) => {
    ctx.chunks = chunks;
  });
}
