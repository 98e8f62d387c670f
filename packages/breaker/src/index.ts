/**
 * @module @sluice/breaker
 *
 * A keyed circuit breaker for sluice pipelines: one circuit per upstream
 * and model, tripped by consecutive failures or a failure rate, with
 * half-open probes, growing open times, manual isolation and serialisable
 * health, kept in core's `Store`.
 */
export { breaker, type BreakerMiddleware } from './breaker.js';
export type { BreakerOptions } from './options.js';
export { CircuitOpenError } from './errors.js';
export type { CircuitSnapshot } from './circuit-snapshot.js';
export { isBreakerFailure } from './is-breaker-failure.js';
export type { BreakerEvents, BreakerState, CircuitStateName, CloseReason, OpenReason } from './events.js';

import type { BreakerEvents, BreakerState } from './events.js';

declare module '@sluice/core' {
  interface SluiceEvents {
    'circuit-open': BreakerEvents['circuit-open'];
    'circuit-half-open': BreakerEvents['circuit-half-open'];
    'circuit-close': BreakerEvents['circuit-close'];
  }
  interface SluiceState {
    breaker?: BreakerState;
  }
}

