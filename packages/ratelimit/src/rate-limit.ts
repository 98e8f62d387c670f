import { type CompletionContext, type Middleware, SluiceError, UpstreamError, type Usage } from '@sluice/core';
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

  return async function rateLimit(ctx, next) {
    const key = config.limiter.state.keyOf(ctx);
    let prompt = 0;
    let reserved = 0;
    if (countsTokens) {
      const counted = config.countPrompt(ctx);
      prompt = typeof counted === 'number' ? counted : await counted;
      reserved = prompt + outputCap(ctx.request, config.defaultMaxTokens);
    }
    const ticket = await limiter.acquire(ctx, key, reserved);
    const { state } = ctx;
    state.ratelimit = {
      key,
      waitedMs: (state.ratelimit?.waitedMs ?? 0) + ticket.waitedMs,
      reservedTokens: reserved,
      admittedAt: ticket.bookedAt,
    };
    try {
      await next();
    } catch (caught) {
      const error = caught instanceof SluiceError ? caught : undefined;
      await settle(ctx, ticket, finishOf(ctx, config, prompt, undefined, '', error));
      throw caught;
    }
    if (!ctx.stream) {
      // A whole response has settled by the time next() resolves: settle
      // the ticket now, without a listener for the pipeline to run.
      await settle(ctx, ticket, finishOf(ctx, config, prompt, ctx.usage, '', undefined));
      return;
    }
    // Registered after next() resolved, so it is bound to this response: it
    // fires when the stream is read to the end, cut or cancelled.
    ctx.onSettled((settlement) =>
      limiter.finish(ticket, ctx, finishOf(ctx, config, prompt, settlement.usage, settlement.streamedText, settlement.error)),
    );
  };

  /** Settles a ticket; a failing store is reported as a listener's would be, never thrown. */
  function settle(ctx: CompletionContext, ticket: Ticket, how: Finish): Promise<void> {
    return limiter.finish(ticket, ctx, how).catch((failure: unknown) => {
      ctx.events.emit('listener-error', { id: ctx.id, error: failure });
    });
  }
}

/** What a settled response tells the limiter: real usage, and whether to pause. */
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
    pause = { untilMs: now + upstream.retryAfterMs, reason: 'retry-after' };
  }
  const paced = config.paceFromHeaders && headers ? headerPauseMs(headers) : undefined;
  if (paced !== undefined && (!pause || now + paced > pause.untilMs)) pause = { untilMs: now + paced, reason: 'headers' };
  return pause ? { usedTokens, pause } : { usedTokens };
}
