import type { CompletionContext, TransportInfo } from './context.js';

/**
 * The innermost step: sends `ctx.request` upstream and sets `ctx.response`
 * (non-stream) or `ctx.chunks` (stream, resolving once the upstream
 * accepted the request), and `ctx.usage` when known.
 *
 * A transport ends its work when the call is aborted (`ctx.signal`: the
 * caller, the deadline, the pipeline's `close()`): `send` settles, and a
 * stream's pending read rejects. The pipeline relies on it and does not
 * race the transport, so that calls pay nothing for it; a transport that
 * waits on code that may not hear the signal (an SDK, a runtime's fetch
 * body) wraps those waits in `untilAborted` from `@sluice/core/kit`, as
 * `fetchTransport` and `@sluice/ai-sdk`'s `languageModels()` do.
 */
export interface Transport extends TransportInfo {
  send(ctx: CompletionContext): Promise<void>;
  /** Releases connections; the pipeline's `close()` calls it. */
  close?(): Promise<void>;
  /** Drops connections at once; `close()` on the pipeline calls it when `close` did not finish in time. */
  destroy?(): Promise<void>;
}
