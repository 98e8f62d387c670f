import { systemClock, type Clock } from './clock.js';
import { ValidationError } from './errors.js';

/** Marks stores that answer in-process, which need no timeout. */
export const kInProcess = Symbol.for('sluice.store.in-process');

/** A record's time to live: fixed, or computed from the value just written. */
export type TimeToLive<T> = number | ((value: T) => number);

/**
 * The state that stateful middleware (breaker, limiter, budget) share
 * between requests, and between processes when the store is distributed.
 *
 * Values are plain JSON-serialisable data. `update` is the one atomic
 * operation: a Redis store implements it with a script or compare-and-set,
 * the memory store synchronously, so middleware never read-then-write
 * racily. Middleware reach a store through `keyedState` (`@sluice/core/kit`),
 * which adds the namespace, the TTL and the store-failure policy.
 */
export interface Store {
  get<T>(key: string): Promise<T | undefined>;
  /** @param ttlMs - drop the key after this long; omitted keeps it */
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
  /**
   * Atomically replaces the value with `update(current)` and returns it.
   * `update` must be pure: a distributed store may call it more than once.
   *
   * @param ttlMs - drop the key this long after the write; a function gets the new value
   */
  update<T>(key: string, update: (current: T | undefined) => T, ttlMs?: TimeToLive<T>): Promise<T>;
  delete(key: string): Promise<void>;
}

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /** Time source for expiry (default the system clock; tests pass a fake one). */
  clock?: Clock;
  /**
   * The most records kept (default 100 000). Past it, the least recently
   * written record is evicted first, so memory has a bound whatever the
   * number of keys (tenants, users) a pipeline sees.
   */
  maxEntries?: number;
}

interface Entry {
  value: unknown;
  expiresAt: number;
}

/**
 * The default {@link Store}: a Map in this process, bounded, with expiry
 * read from the clock, so it follows fake time in tests.
 *
 * @param options - `clock` and `maxEntries`
 * @example
 * ```ts
 * const store = memoryStore({ maxEntries: 10_000 });
 * createPipeline({ transport, store });
 * ```
 */
export function memoryStore(options: MemoryStoreOptions = {}): Store & { readonly size: number } {
  const { clock = systemClock, maxEntries = 100_000 } = options;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new ValidationError('memoryStore.maxEntries', 'must be a positive integer');
  }
  const entries = new Map<string, Entry>();
  const live = (key: string): Entry | undefined => {
    const entry = entries.get(key);
    if (entry && entry.expiresAt <= clock.now()) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  };
  // Live iterators over the Map, kept between writes: one finds the oldest
  // key to evict, the other sweeps a few entries per write. A fresh
  // iterator would step again over every deleted slot at the Map's front,
  // which made each eviction cost more the more keys had passed through.
  let oldest = entries.keys();
  let sweeping = entries.entries();
  const sweep = (now: number) => {
    // Keys that expire unread (one per user, say) would pile up: two
    // entries looked at per write visit every entry within size / 2 writes,
    // so memory follows the live keys, at a constant cost per write.
    for (let i = 0; i < 2; i++) {
      const step = sweeping.next();
      if (step.done) {
        sweeping = entries.entries();
        return;
      }
      if (step.value[1].expiresAt <= now) entries.delete(step.value[0]);
    }
  };
  const put = (key: string, value: unknown, ttlMs: number | undefined) => {
    const now = clock.now();
    sweep(now);
    // Re-inserting moves the key to the end: the Map's order is then the
    // order of last writes, and its first key the one to evict.
    entries.delete(key);
    // A TTL of 0 or less has run out already (as Redis drops such a key); none, or NaN, never runs out.
    const expiresAt = ttlMs === undefined || Number.isNaN(ttlMs) ? Infinity : ttlMs <= 0 ? now : now + ttlMs;
    entries.set(key, { value, expiresAt });
    if (entries.size > maxEntries) {
      let first = oldest.next();
      // An iterator that has once said done stays done, even after new keys.
      if (first.done) first = (oldest = entries.keys()).next();
      entries.delete(first.value as string);
    }
  };
  const store: Store & { readonly size: number; [kInProcess]: true } = {
    [kInProcess]: true,
    get size() {
      return entries.size;
    },
    async get<T>(key: string) {
      return live(key)?.value as T | undefined;
    },
    async set(key, value, ttlMs) {
      put(key, value, ttlMs);
    },
    async update<T>(key: string, update: (current: T | undefined) => T, ttlMs?: TimeToLive<T>) {
      const next = update(live(key)?.value as T | undefined);
      put(key, next, typeof ttlMs === 'function' ? ttlMs(next) : ttlMs);
      return next;
    },
    async delete(key) {
      entries.delete(key);
    },
  };
  return store;
}
