import { type Store, ValidationError } from '@sluice/core';

/**
 * Where the cache keeps its answers: serialised entries (JSON strings) by
 * key, each with a time to live. Small on purpose, so a backend is a thin
 * adapter: {@link lruStorage} in this process, {@link storeBackend} over any
 * core `Store` (memory, Redis). The cache checks every entry's own expiry
 * too, so a backend's TTL is housekeeping, not correctness. Its methods
 * answer with promises; one that answers with the value itself is taken at
 * its word, as `await` would take it, and one that throws is a miss.
 */
export interface CacheStorage {
  /** The entry at `key`, or `undefined`. */
  get(key: string): Promise<string | undefined>;
  /**
   * Stores `value` at `key` for `ttlMs`; a backend may decline (too large)
   * silently. `bytes`, when given, is the value's UTF-8 length, which the
   * cache knows from the entry's parts: a backend that bounds its size may
   * take it instead of measuring the value (never less than the true
   * length: at most an over-estimate, so a bound still holds).
   */
  set(key: string, value: string, ttlMs: number, bytes?: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** True when it answers in this process: the cache then runs no timeout around its calls. */
  readonly inProcess?: boolean;
  /**
   * The entry at `key`, at once: a storage in this process may offer it,
   * and the cache then reads and writes without a promise (`get` and `set`
   * stay for everyone else). Optional; `setSync` goes with it.
   */
  getSync?(key: string): string | undefined;
  /** Stores `value` at `key` for `ttlMs`, at once (with `getSync`); `bytes` as for `set`. */
  setSync?(key: string, value: string, ttlMs: number, bytes?: number): void;
}

/**
 * A {@link CacheStorage} over any core `Store`: entries are kept as strings
 * with `store.set` and the entry's TTL, so it works unchanged on
 * `memoryStore()` and on a Redis store shared by many instances. Keys are
 * the cache's own (`sluice:cache:…`), used as given.
 *
 * @param store - the store to keep entries in
 * @throws ValidationError when `store` is not a Store (`storeBackend.store`)
 * @example
 * ```ts
 * const llm = createPipeline({ transport }).use(cache({ storage: storeBackend(redisStore({ client })) }));
 * ```
 */
export function storeBackend(store: Store): CacheStorage {
  const methods = store as Partial<Record<'get' | 'set' | 'delete', unknown>> | null | undefined;
  if (typeof methods?.get !== 'function' || typeof methods.set !== 'function' || typeof methods.delete !== 'function') {
    throw new ValidationError('storeBackend.store', 'must be a core Store (get, set, delete), such as memoryStore() or redisStore({ client })');
  }
  return {
    // core's memoryStore marks itself so: it answers synchronously and needs no timeout.
    inProcess: (store as unknown as Record<symbol, unknown>)[Symbol.for('sluice.store.in-process')] === true,
    async get(key) {
      const value = await store.get<unknown>(key);
      // Anything else under the key was not written by the cache: a miss, not a crash.
      return typeof value === 'string' ? value : undefined;
    },
    set: (key, value, ttlMs) => store.set(key, value, ttlMs),
    delete: (key) => store.delete(key),
  };
}
