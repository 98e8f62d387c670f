/** Why a deployment was not sent a call it could have taken. */
export type SkipReason = 'cooling' | 'busy' | 'window' | 'hop-limit';

/** Why the router sent a call to a deployment. */
export type HopReason = 'route' | 'sticky' | 'fallback' | 'content-filter' | 'context-length';

/** One deployment's part in a call, as `ctx.state.router.hops` records it. */
export interface RouterHop {
  deployment: string;
  /** The model name sent to that deployment. */
  model: string;
  reason: HopReason | 'hedge';
  /** `answered` (the caller got this one), `failed`, `cancelled` (a hedge's loser), or `skipped` without a request. */
  outcome: 'answered' | 'failed' | 'cancelled' | 'skipped';
  /** The error's code when it failed, or the skip's reason. */
  code?: string;
  /** The inner pipeline's call id, which the deployment's own events and cost records name. */
  attemptId?: string;
}

/** What the router writes to `ctx.state.router`. */
export interface RouterState {
  /** The deployment that answered, once one did. */
  deployment: string | undefined;
  /** Every deployment tried or passed over, in order. */
  hops: RouterHop[];
  /** Whether a hedge was sent. */
  hedged: boolean;
}

/** The router's events, merged into `SluiceEvents` by the package's index. */
export interface RouterEvents {
  /** A call was sent to a deployment. */
  route: { id: string; deployment: string; group: string; model: string; reason: HopReason; hop: number };
  /** A deployment failed with an error the caller chose to fall back on (or a content-filter error with somewhere to go); the router moves on. */
  'route-fallback': { id: string; deployment: string; code: string; retryAfterMs: number | undefined };
  /** A deployment was passed over without a request. */
  'route-skip': { id: string; deployment: string; reason: SkipReason };
  /** No first chunk after `delayMs`: the same call was sent to another deployment too. */
  hedge: { id: string; deployment: string; primary: string; delayMs: number };
  /** A hedge was due but not sent: the hedge budget is spent, no other deployment can take it, or the call reached `maxHops`. */
  'hedge-skip': { id: string; reason: 'budget' | 'no-deployment' | 'hop-limit' };
  /** The slower of a hedged pair was cancelled after the other answered. */
  'hedge-cancel': { id: string; deployment: string; winner: string };
}
