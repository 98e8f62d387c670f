import { type CompletionContext, type Middleware, SluiceError, UpstreamError, type Usage } from '@sluice/core';
import { afterNext, keepsChainRules } from '@sluice/core/kit';
import { type Finish, Limiter, type Ticket } from './limiter.js';
import { headerPauseMs } from './pace-from-headers.js';
import { outputCap, type RateLimitOptions, type ResolvedOptions, resolveOptions } from './options.js';

/**
 * Limits requests per window, tokens per window and requests in flight,
 * each optional and all enforced together, per key (global, per model, per
 * tag, or your own function). A request over a limit waits its turn in a
 * FIFO queue (or, with `mode: 'reject'`, fails at once with a
 * `LimitRejectedError`). The windows are exact sliding windows: the whole
 * limit goes at once after a quiet spell, the limit is also the sustained
 * rate, and no window of `windowMs` ever admits more than `limit`. A token
 * limit reserves the prompt plus the output cap before sending and corrects
 * it to the real usage when the response settles, streams included. An upstream 429 with Retry-After pauses the key for
 * every waiter.
 *
 * Place it innermost (after retry and breaker), so every attempt that
 * really reaches the upstream is counted.
 *
 * @param options - limits, key, mode and queueing; see {@link RateLimitOptions}
 * @throws ValidationError naming the bad option (`rateLimit.tokens.windowMs`)
 * @example
 * ```ts
 * const llm = createPipeline({ transport })
 *   .use(retry({ attempts: 3 }))
 *   .use(rateLimit({ rpm: 100, tpm: 200_000, concurrency: 50 }));
 * ```
 */
export function rateLimit(options: RateLimitOptions): Middleware {
  const config = resolveOptions(options);
  const limiter = new Limiter(config.limiter);
  const countsTokens = config.limiter.tokens !== undefined;

  return keepsChainRules<Middleware>(function rateLimit(ctx, next) {
    try {
      const key = perDeployment(ctx, config.limiter.state.keyOf(ctx));
      if (!countsTokens) return admit(ctx, next, key, 0);
      const counted = config.countPrompt(ctx);
      return typeof counted === 'number' ? admit(ctx, next, key, counted) : counted.then((prompt) => admit(ctx, next, key, prompt));
    } catch (error) {
      return Promise.reject(error);
    }
  });

  /** Takes the call's ticket: at once when the limiter admits it on an in-process store, no promise or await of its own. */
  function admit(ctx: CompletionContext, next: () => Promise<void>, key: string, prompt: number): Promise<void> {
    const reserved = countsTokens ? prompt + outputCap(ctx.request, config.defaultMaxTokens) : 0;
    const ticket = limiter.acquireNow(ctx, key, reserved);
    if (ticket instanceof Promise) return ticket.then((admitted) => pass(ctx, next, key, prompt, reserved, admitted));
    return pass(ctx, next, key, prompt, reserved, ticket);
  }

  /** Runs the rest of the pipeline holding the ticket, and gives it back when the call settles. */
  function pass(ctx: CompletionContext, next: () => Promise<void>, key: string, prompt: number, reserved: number, ticket: Ticket): Promise<void> {
    const { state } = ctx;
    state.ratelimit = {
      key,
      waitedMs: (state.ratelimit?.waitedMs ?? 0) + ticket.waitedMs,
      reservedTokens: reserved,
      admittedAt: ticket.bookedAt,
    };
    const failed = (caught: unknown): Promise<never> => {
      const error = caught instanceof SluiceError ? caught : undefined;
      const settling = settle(ctx, ticket, finishOf(ctx, config, prompt, undefined, '', error));
      return settling ? settling.then(() => Promise.reject(caught)) : Promise.reject(caught);
    };
    const answered = (): Promise<void> | undefined => {
      // A whole response has settled by the time next() resolves: settle
      // the ticket now, without a listener for the pipeline to run.
      if (!ctx.stream) return settle(ctx, ticket, finishOf(ctx, config, prompt, ctx.usage, '', undefined));
      // Registered after next() resolved, so it is bound to this response: it
      // fires when the stream is read to the end, cut or cancelled.
      // At once when there is nothing to write (no pause, no token correction), as for a whole response.
      ctx.onSettled((settlement) => settle(ctx, ticket, finishOf(ctx, config, prompt, settlement.usage, settlement.streamedText, settlement.error)));
      return undefined;
    };
    // Not async: one `then`, where an async frame and its awaits cost promises more and held a frame per call in flight.
    return afterNext(next, answered, failed);
  }

  /** Gives the ticket back; a failure to write is reported, never the call's error. At once when there is nothing to write. */
  function settle(ctx: CompletionContext, ticket: Ticket, how: Finish): Promise<void> | undefined {
    let settling: Promise<void> | undefined;
    try {
      settling = limiter.finishNow(ticket, ctx, how);
    } catch (failure) {
      ctx.events.emit('listener-error', { id: ctx.id, error: failure });
      return undefined;
    }
    return settling?.catch((failure: unknown) => {
      ctx.events.emit('listener-error', { id: ctx.id, error: failure });
    });
  }
}

/**
 * A call a router sent to one of its deployments (tagged `deployment`) is
 * limited in that deployment's own window: a limiter in each deployment's
 * middleware would otherwise share one record with the others' (records are
 * named by their limits and key, so that processes share them), and one
 * provider's 429 would pause every deployment. Across processes, the same
 * deployment still shares one window.
 */
function perDeployment(ctx: CompletionContext, key: string): string {
  const deployment = ctx.tags.deployment;
  return deployment === undefined ? key : `deployment=${deployment}|${key}`;
}

function finishOf(
  ctx: CompletionContext,
  config: ResolvedOptions,
  prompt: number,
  usage: Usage | undefined,
  streamedText: string,
  error: SluiceError | undefined,
): Finish {
  // Without reported usage: the prompt was sent, and what reached the caller was produced.
  const usedTokens = usage ? usage.total_tokens : prompt + Math.ceil(streamedText.length / 4);
  const upstream = error instanceof UpstreamError ? error : undefined;
  const headers = upstream?.headers ?? ctx.responseHeaders;
  if (!upstream && !(config.paceFromHeaders && headers)) return { usedTokens };
  const now = ctx.clock.now();
  let pause: Finish['pause'];
  if (config.pauseOn429 && upstream?.code === 'RATE_LIMITED' && upstream.retryAfterMs !== undefined && upstream.retryAfterMs > 0) {
    pause = { untilMs: now + Math.min(upstream.retryAfterMs, config.maxPauseMs), reason: 'retry-after' };
  }
  const asked = config.paceFromHeaders && headers ? headerPauseMs(headers) : undefined;
  const paced = asked === undefined ? undefined : Math.min(asked, config.maxPauseMs);
  if (paced !== undefined && (!pause || now + paced > pause.untilMs)) pause = { untilMs: now + paced, reason: 'headers' };
  return pause ? { usedTokens, pause } : { usedTokens };
}
