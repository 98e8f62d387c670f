/**
 * @module @sluice/router
 *
 * Deployments, fallbacks, routing and hedging for sluice pipelines: one
 * public model served by several deployments (each a transport and the
 * model name it expects, each with its own inner middleware), fallback
 * chains across models, content-aware fallbacks (context window, content
 * filter), weighted / least-busy / latency / cost routing, sticky routing
 * by tag, and hedged requests under a hedge budget.
 */
export { router, type RouterMiddleware } from './router.js';
export type { RouterOptions, Deployment, RoutingStrategy, FallbackOn, HedgeOptions, LatencyOptions } from './options.js';
export { NoDeploymentError, ContentFilteredError } from './errors.js';
export type { RouterEvents, RouterState, RouterHop, HopReason, SkipReason } from './events.js';

import type { RouterEvents, RouterState } from './events.js';

declare module '@sluice/core' {
  interface SluiceEvents {
    route: RouterEvents['route'];
    'route-fallback': RouterEvents['route-fallback'];
    'route-skip': RouterEvents['route-skip'];
    hedge: RouterEvents['hedge'];
    'hedge-skip': RouterEvents['hedge-skip'];
    'hedge-cancel': RouterEvents['hedge-cancel'];
  }
  interface SluiceState {
    router?: RouterState;
  }
}
