import type { CompletionContext, TransportInfo } from './context.js';

/**
 * The innermost step: sends `ctx.request` upstream and sets `ctx.response`
 * (non-stream) or `ctx.chunks` (stream, resolving once the upstream
 * accepted the request), and `ctx.usage` when known.
 */
export interface Transport extends TransportInfo {
  send(ctx: CompletionContext): Promise<void>;
  /** Releases connections; the pipeline's `close()` calls it. */
  close?(): Promise<void>;
  /** Drops connections at once; `close()` on the pipeline calls it when `close` did not finish in time. */
  destroy?(): Promise<void>;
}
