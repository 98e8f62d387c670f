/*
 * Why a process keeps a view of the circuits that are not closed: with it,
 * a call to a closed circuit is admitted without reading the store, and a
 * call to an open one fails fast without reading it either, so a call costs
 * one store call (its result) instead of two. Only circuits seen open,
 * half-open or isolated are kept, each until its record would expire, so
 * the view is as small as the trouble.
 *
 * The price, with a store shared between processes: a process learns that
 * another opened a circuit from the record its next result writes (the calls
 * it has in flight by then were sent anyway), and that another closed or
 * reset one once the open time it saw is over. An isolated circuit is read
 * from the store at every call, so a reset anywhere frees it at once.
 */
import type { Store } from '@sluice/core';
import { type CircuitRecord, type CircuitRules, isCircuitRecord, lifetimeMs } from './circuit.js';
import type { CircuitStateName } from './events.js';

/**
 * What a process last saw of a circuit that is not closed; internal.
 *
 * @example
 * ```ts
 * const view: CircuitView = { state: 'open', openUntil: Date.now() + 30_000, expiresAt: Date.now() + 330_000, openedAt: Date.now() };
 * ```
 */
export interface CircuitView {
  state: Exclude<CircuitStateName, 'closed'>;
  /** When an open circuit turns half-open; null otherwise. */
  openUntil: number | null;
  /** When the record it was seen in expires: past it, nothing is known. */
  expiresAt: number;
  /** When the circuit opened: one that opened well after `now` is due, as the store's record is (see `isDue`). */
  openedAt: number | null;
}

/** Views kept per store before the expired ones are swept and then the oldest dropped. */
const maxViews = 10_000;

/**
 * The views of one breaker, per store (one breaker may serve pipelines with
 * different stores); internal.
 *
 * @example
 * ```ts
 * const views = new CircuitViews();
 * views.see(store, key, record, now, rules);
 * views.get(store, key, now); // undefined: closed, as far as this process knows
 * ```
 */
export class CircuitViews {
  private readonly byStore = new WeakMap<Store, Map<string, CircuitView>>();

  /**
   * The view of `key`, or `undefined` when this process knows it only closed.
   *
   * @param store - the store the circuit lives in
   * @param key - the circuit's store key
   * @param now - the clock's time
   */
  get(store: Store, key: string, now: number): CircuitView | undefined {
    const views = this.byStore.get(store);
    const view = views?.get(key);
    if (view && now >= view.expiresAt) {
      views?.delete(key);
      return undefined;
    }
    return view;
  }

  /**
   * Remembers what a store call returned about `key`.
   *
   * @param store - the store the circuit lives in
   * @param key - the circuit's store key
   * @param record - the record read or written, if any
   * @param now - the clock's time
   * @param rules - the breaker's rules
   */
  see(store: Store, key: string, record: CircuitRecord | undefined, now: number, rules: CircuitRules): void {
    let views = this.byStore.get(store);
    if (!record || record.state === 'closed' || !isCircuitRecord(record)) {
      views?.delete(key);
      return;
    }
    if (!views) this.byStore.set(store, (views = new Map()));
    const lifetime = lifetimeMs(record, now, rules);
    views.delete(key); // re-inserted last: the map's order is the order of last sight
    views.set(key, { state: record.state, openUntil: record.openUntil, expiresAt: now + lifetime, openedAt: record.openedAt });
    if (views.size > maxViews) sweep(views, now);
  }
}

function sweep(views: Map<string, CircuitView>, now: number): void {
  for (const [key, view] of views) if (now >= view.expiresAt) views.delete(key);
  // A forgotten view costs one call sent to a circuit that is not closed: its result brings the view back.
  for (const key of views.keys()) {
    if (views.size <= maxViews) break;
    views.delete(key);
  }
}
