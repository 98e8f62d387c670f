import type { CircuitStateName, OpenReason } from './events.js';
import { type CircuitRecord, type CircuitRules, isCircuitRecord, isDue, probeHeld } from './circuit.js';
import { windowTotals } from './failure-window.js';

/**
 * A circuit's health, as `breaker.state(key)` reports it: plain JSON,
 * so it can be logged, served from a health endpoint or compared in a test.
 *
 * @example
 * ```ts
 * const health = await llmBreaker.state('https://api.deepseek.com/v1|deepseek-v3.2');
 * if (health.state !== 'closed') alert(`${health.key} ${health.state} (${health.reason}), retry in ${health.retryAfterMs} ms`);
 * ```
 */
export interface CircuitSnapshot {
  key: string;
  /** An open circuit whose open time is over reads `half-open`, even before a call came to probe it. */
  state: CircuitStateName;
  /** Consecutive failures (while open, the count that opened it). */
  failures: number;
  /** The failure-rate window's calls, failures and rate (0 without calls); null without `failureRate`. */
  window: { calls: number; failures: number; rate: number } | null;
  /** When it last opened (epoch ms); null when closed. */
  openedAt: number | null;
  /** How long this opening lasts; null when closed or isolated. */
  openMs: number | null;
  /** Milliseconds until half-open: 0 when closed or half-open; null when isolated (held until reset). */
  retryAfterMs: number | null;
  /** Why it opened; null when closed. */
  reason: OpenReason | null;
  /** Openings since it last closed (what `backoff` grows with). */
  trips: number;
  /** Probes in flight. */
  probes: number;
}

/**
 * Reads a stored circuit (or its absence: closed) as a snapshot; internal.
 *
 * @param key - the circuit's key
 * @param record - what the store holds, if anything
 * @param now - the clock's time
 * @param rules - the breaker's rules
 * @example
 * ```ts
 * snapshot('m', undefined, Date.now(), rules).state; // 'closed'
 * ```
 */
export function snapshot(key: string, stored: CircuitRecord | undefined, now: number, rules: CircuitRules): CircuitSnapshot {
  // A record this version cannot trust is reported as the closed circuit the calls read it as.
  const record = stored !== undefined && isCircuitRecord(stored) ? stored : undefined;
  const rate = rules.failureRate;
  const totals = record && rate ? windowTotals(record, now, rate) : { calls: 0, failures: 0 };
  const window = rate ? { ...totals, rate: totals.calls === 0 ? 0 : totals.failures / totals.calls } : null;
  if (!record) {
    return { key, state: 'closed', failures: 0, window, openedAt: null, openMs: null, retryAfterMs: 0, reason: null, trips: 0, probes: 0 };
  }
  const due = isDue(record, now);
  const state = due ? 'half-open' : record.state;
  const retryAfterMs =
    state === 'isolated' ? null : state === 'open' && record.openUntil !== null ? record.openUntil - now : 0;
  const probes = state === 'half-open' && !due ? record.probes.filter(([, at]) => probeHeld(at, now)).length : 0;
  return {
    key,
    state,
    failures: record.failures,
    window,
    openedAt: record.openedAt,
    openMs: record.openMs,
    retryAfterMs,
    reason: record.reason,
    trips: record.trips,
    probes,
  };
}
