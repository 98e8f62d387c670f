import { seededRandom } from '@sluice/testing';
import { describe, expect, it } from 'vitest';
import type { Clock } from './clock.js';
import type { CompletionContext } from './context.js';
import { createEmitter } from './events.js';
import { keyedState } from './keyed-state.js';
import { memoryStore, type RecordSlot } from './store.js';

/** What a key holds in the model: a count, or a value set from outside. */
interface Held {
  value: number;
  expiresAt: number;
}

/**
 * Seeded runs of the memory store against a model of it (a map of values
 * with their expiry): sets, deletes, reads, and counting updates through
 * keyed state, in place or not, with or without a slot, while time moves
 * and records expire. Every read must be what the model says, or, once the
 * store is full, nothing (an evicted record); never an expired or an older
 * value.
 */
async function run(seed: number, maxEntries: number) {
  const random = seededRandom(seed);
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)] as T;
  let time = 1_000_000;
  const clock: Clock = { now: () => time, setTimeout: () => 0, clearTimeout: () => {} };
  const store = memoryStore({ clock, maxEntries });
  const ctx = { id: 'call', tags: {}, store, clock, events: createEmitter() } as unknown as CompletionContext;
  const state = keyedState({ name: 'model', defaultKey: 'global', field: 'model.key' });
  const model = new Map<string, Held>();
  const slots = new Map<string, RecordSlot>();
  const keys = Array.from({ length: 24 }, (_, index) => `k${index}`);
  const ttls = [undefined, 5, 20, 200, 0, -1];
  const live = (key: string): number | undefined => {
    const held = model.get(key);
    return held !== undefined && held.expiresAt > time ? held.value : undefined;
  };
  const expiry = (ttl: number | undefined) => (ttl === undefined ? Infinity : ttl <= 0 ? time : time + ttl);
  let last: string | undefined;
  for (let step = 0; step < 4_000; step++) {
    const key = pick(keys);
    const roll = random();
    if (roll < 0.15) time += Math.floor(random() * 30);
    else if (roll < 0.3) {
      const value = Math.floor(random() * 1_000);
      const ttl = pick(ttls);
      void store.set(`sluice:model:${key}`, value, ttl);
      model.set(key, { value, expiresAt: expiry(ttl) });
      last = key;
    } else if (roll < 0.36) {
      void store.delete(`sluice:model:${key}`);
      model.delete(key);
      if (last === key) last = undefined;
    } else if (roll < 0.85) {
      const ttl = pick(ttls);
      const inPlace = random() < 0.6;
      let slot: RecordSlot | undefined;
      if (random() < 0.7) {
        slot = slots.get(key) ?? { slotOwner: undefined, slotEntry: undefined };
        slots.set(key, slot);
      }
      const count = (current: { n: number } | number | undefined, mine?: true): { n: number } => {
        const before = typeof current === 'number' ? current : (current?.n ?? 0);
        if (mine && typeof current === 'object') {
          current.n = before + 1;
          return current;
        }
        return { n: before + 1 };
      };
      const answer = state.updateNow<{ n: number }>(ctx, key, count, { ttlMs: ttl ?? Number.POSITIVE_INFINITY, ...(slot === undefined ? {} : { slot }), inPlace, recordKey: `sluice:model:${key}` });
      const expected = (live(key) ?? 0) + 1;
      // Full, the store may have evicted the record: counted again from nothing.
      if (maxEntries >= keys.length || (answer as { n: number }).n !== 1) expect((answer as { n: number }).n, `step ${step}: update of ${key}`).toBe(expected);
      model.set(key, { value: (answer as { n: number }).n, expiresAt: expiry(ttl) });
      last = key;
    } else {
      const value = await store.get<{ n: number } | number>(`sluice:model:${key}`);
      const read = typeof value === 'object' ? value.n : value;
      if (maxEntries >= keys.length || read !== undefined) expect(read, `step ${step}: read of ${key}`).toBe(live(key));
    }
    expect(store.size).toBeLessThanOrEqual(maxEntries);
    // The record written last is never the one evicted.
    if (last !== undefined && live(last) !== undefined) expect(await store.get(`sluice:model:${last}`), `step ${step}: ${last}, written last`).toBeDefined();
  }
  return { store, live: () => keys.filter((key) => live(key) !== undefined).length, advance: (ms: number) => (time += ms) };
}

describe('memoryStore against a model of it', () => {
  it('reads back exactly what was written, expired or not, with slots and in-place records, when nothing is evicted', async () => {
    for (let seed = 1; seed <= 12; seed++) {
      const { store, live, advance } = await run(seed, 1_000);
      // Once every record with a time to live has run out, writes sweep them all within two passes.
      advance(1_000);
      for (let index = 0; index < 60; index++) await store.set(`fresh-${index % 4}`, index);
      expect(store.size, `seed ${seed}`).toBe(4 + live());
      expect(store.evicted).toBe(0);
    }
  });

  it('never reads back an expired or an older value when full, and holds its bound', async () => {
    for (let seed = 1; seed <= 12; seed++) {
      const { store } = await run(seed * 31, 6);
      expect(store.size).toBeLessThanOrEqual(6);
      expect(store.evicted).toBeGreaterThan(0);
    }
  });
});
