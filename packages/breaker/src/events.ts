/**
 * A circuit's state: `closed` lets calls through; `open` fails them fast
 * until its open time is over; `half-open` lets a few probes through while
 * the rest fail fast; `isolated` is held open by hand until `reset`.
 *
 * @example
 * ```ts
 * const healthy = (await circuit.state(key)).state === 'closed';
 * ```
 */
export type CircuitStateName = 'closed' | 'open' | 'half-open' | 'isolated';

/**
 * Why a circuit opened: `consecutive` failures reached `failures`; the
 * window's `failure-rate` reached its threshold; a half-open probe failed
 * (`probe-failed`); or it was `isolated` by hand.
 *
 * @example
 * ```ts
 * llm.events.on('circuit-open', (e) => { if (e.reason === 'failure-rate') page(e.key); });
 * ```
 */
export type OpenReason = 'consecutive' | 'failure-rate' | 'probe-failed' | 'isolated';

/**
 * Why a circuit closed: its half-open probes succeeded, or it was `reset` by hand.
 *
 * @example
 * ```ts
 * llm.events.on('circuit-close', (e) => log.info(`${e.key} closed (${e.reason})`));
 * ```
 */
export type CloseReason = 'probe-succeeded' | 'reset';

/**
 * What `breaker` tells later middleware about a call, under `ctx.state.breaker`
 * (for a call inside `retry`, about its latest attempt).
 *
 * @example
 * ```ts
 * llm.use(async function logCircuit(ctx, next) {
 *   try { await next(); } finally { console.log(ctx.state.breaker?.key, ctx.state.breaker?.state); }
 * });
 * ```
 */
export interface BreakerState {
  /** The circuit the call went through. */
  key: string;
  /**
   * The circuit's state when the call reached it: `closed` (sent),
   * `half-open` (sent as a probe, or failed fast when the probe slots were taken),
   * `open` or `isolated` (failed fast).
   */
  state: CircuitStateName;
}

/**
 * The events `breaker` emits, merged into core's `SluiceEvents`.
 *
 * @example
 * ```ts
 * llm.events.on('circuit-open', (e) => log.error(`${e.key} open for ${e.openMs} ms (${e.reason})`));
 * llm.events.on('circuit-close', (e) => log.info(`${e.key} closed (${e.reason})`));
 * ```
 */
export interface BreakerEvents {
  /** A circuit opened (or reopened, after a failed probe), or was isolated. */
  'circuit-open': {
    /** The call whose result (or admission) changed the circuit; `undefined` for `isolate()`. */
    id: string | undefined;
    key: string;
    reason: OpenReason;
    /**
     * The failures that opened it: consecutive failures for `consecutive`
     * and `probe-failed` (the probe included), the window's failures for
     * `failure-rate`, the consecutive failures so far for `isolated`.
     */
    failures: number;
    /** How long it stays open before half-open: grows with `backoff`; `Infinity` when isolated. */
    openMs: number;
  };
  /** A circuit's open time is over: the next calls are its probes. */
  'circuit-half-open': { id: string | undefined; key: string };
  /** A circuit closed: its probes succeeded, or it was reset. */
  'circuit-close': { id: string | undefined; key: string; reason: CloseReason };
}
