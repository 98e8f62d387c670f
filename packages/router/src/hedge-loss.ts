import { type CompletionContext, SluiceError, type Usage } from '@sluice/core';
import { abortReason } from '@sluice/core/kit';

/** The code of the reason a hedge's loser is cancelled with. */
const hedgeLost = 'HEDGE_LOST';

/**
 * The error a hedge's loser is cancelled with; internal.
 *
 * @example
 * ```ts
 * controller.abort(hedgeLoss());
 * ```
 */
export function hedgeLoss(): SluiceError {
  return new SluiceError(hedgeLost, 'another deployment answered first', { final: true });
}

// A usage the upstream never reported: cost's `settledCost` then counts the
// prompt itself and marks the cost estimated, as it does for a stream the
// upstream accepted and cut before its first chunk.
const unreported = Object.freeze({}) as Usage;

/**
 * The innermost middleware of every deployment's pipeline. A request a
 * hedge cancelled after it was sent reached an upstream that may already
 * bill its prompt; without an answer it would settle with no usage, and a
 * deployment's `trackCost` and `budget` would count nothing. It settles
 * instead with a usage the upstream never reported, so they count its
 * prompt as an estimated cost on that deployment. A request cancelled
 * before it was sent (waiting at a limiter) costs nothing, as before; internal.
 *
 * @param ctx - the deployment's call
 * @param next - the transport
 * @throws what the transport threw, unchanged
 */
export async function hedgeLossCost(ctx: CompletionContext, next: () => Promise<void>): Promise<void> {
  // Aborted already: the transport will refuse without sending anything.
  if (abortReason(ctx) !== undefined) return next();
  try {
    await next();
  } catch (error) {
    if (ctx.usage === undefined && isHedgeLoss(abortReason(ctx))) ctx.usage = unreported;
    throw error;
  }
}

/** Whether an abort's reason is, or wraps, a hedge's cancel. */
function isHedgeLoss(reason: unknown): boolean {
  let current = reason;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    if ((current as SluiceError).code === hedgeLost) return true;
    current = current.cause;
  }
  return false;
}
