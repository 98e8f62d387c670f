import type { CompletionContext, TransportInfo } from './context.js';

/**
 * The innermost step: sends `ctx.request` upstream and sets `ctx.response`
 * (non-stream) or `ctx.chunks` (stream, resolving once the upstream
 * accepted the request), and `ctx.usage` when known.
 *
 * A transport ends its work when the call is aborted (`ctx.signal`: the
 * caller, the deadline, the pipeline's `close()`): `send` settles, and a
 * stream's pending read rejects. A transport that waits on code that may
 * not hear the signal (an SDK, a runtime's fetch body) wraps those waits
 * in `untilAborted` from `@sluice/core/kit`, as `fetchTransport` and
 * `@sluice/ai-sdk`'s `languageModels()` do, and says so with
 * `honoursAbort: true`.
 *
 * @example
 * ```ts
 * const transport: Transport = {
 *   name: 'in-house',
 *   origin: 'https://llm.internal/v1',
 *   async send(ctx) {
 *     ctx.response = await untilAborted(ctx, myClient.chat(ctx.request));
 *     ctx.usage = ctx.response.usage ?? undefined;
 *   },
 *   honoursAbort: true,
 * };
 * ```
 */
export interface Transport extends TransportInfo {
  send(ctx: CompletionContext): Promise<void>;
  /**
   * `true` when the transport keeps the contract above: `send` settles,
   * and a pending read of its stream rejects, once the call is aborted.
   * The pipeline then trusts it and adds nothing to a call. Without it,
   * the pipeline holds the transport to the call's abort itself: `send`
   * and each read of its stream end at the abort (its caller, its
   * deadline, `close()`), a late answer's stream is told to stop, and a
   * stream's reads cost a promise more each. So a transport written
   * without a thought for `ctx.signal` still ends at the deadline.
   * Core's transports, the router's and `@sluice/ai-sdk`'s set it.
   */
  readonly honoursAbort?: boolean;
  /** Releases connections; the pipeline's `close()` calls it. */
  close?(): Promise<void>;
  /** Drops connections at once; `close()` on the pipeline calls it when `close` did not finish in time. */
  destroy?(): Promise<void>;
}
