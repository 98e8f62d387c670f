import { systemClock, type Clock } from './clock.js';

/**
 * The state that stateful middleware (breaker, limiter, budget) share
 * between requests, and between processes when the store is distributed.
 *
 * Values are plain JSON-serialisable data. `update` is the one atomic
 * operation: a Redis store implements it with WATCH/MULTI or a script, the
 * memory store synchronously, so middleware never read-then-write racily.
 */
export interface Store {
  get<T>(key: string): Promise<T | undefined>;
  /** @param ttlMs - drop the key after this long; omitted keeps it */
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
  /**
   * Atomically replaces the value with `update(current)` and returns it.
   * `update` must be pure: a distributed store may call it more than once.
   */
  update<T>(key: string, update: (current: T | undefined) => T, ttlMs?: number): Promise<T>;
  delete(key: string): Promise<void>;
}

interface Entry {
  value: unknown;
  expiresAt: number;
}

/**
 * The default {@link Store}: a Map in this process, with expiry read from
 * the clock, so it follows fake time in tests.
 *
 * @example
 * ```ts
 * const store = memoryStore();
 * createPipeline({ transport, store });
 * ```
 */
export function memoryStore(options: { clock?: Clock } = {}): Store & { readonly size: number } {
  const { clock = systemClock } = options;
  const entries = new Map<string, Entry>();
  const live = (key: string): Entry | undefined => {
    const entry = entries.get(key);
    if (entry && entry.expiresAt <= clock.now()) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  };
  let writes = 0;
  const put = (key: string, value: unknown, ttlMs?: number) => {
    // Keys that expire unread (one per user, say) would pile up; sweep now
    // and then so memory follows the live keys, not every key ever seen.
    if (++writes % 1024 === 0) {
      const now = clock.now();
      for (const [k, entry] of entries) if (entry.expiresAt <= now) entries.delete(k);
    }
    entries.set(key, { value, expiresAt: ttlMs === undefined ? Infinity : clock.now() + ttlMs });
  };
  return {
    get size() {
      return entries.size;
    },
    async get<T>(key: string) {
      return live(key)?.value as T | undefined;
    },
    async set(key, value, ttlMs) {
      put(key, value, ttlMs);
    },
    async update<T>(key: string, update: (current: T | undefined) => T, ttlMs?: number) {
      const next = update(live(key)?.value as T | undefined);
      put(key, next, ttlMs);
      return next;
    },
    async delete(key) {
      entries.delete(key);
    },
  };
}
