import type { Clock } from '@sluice/core';
import { parseOptions } from '@sluice/core/kit';
import { LRUCache } from 'lru-cache';
import * as z from 'zod/mini';
import type { CacheStorage } from './cache-storage.js';
import { utf8Bytes } from './utf8-bytes.js';

/** Options of {@link lruStorage}. */
export interface LruStorageOptions {
  /** The most entries kept (default 10 000); past it, the least recently used goes first. */
  maxEntries?: number;
  /**
   * The most bytes of serialised entries kept (default 64 MiB), counted
   * exactly in UTF-8; an entry larger than this alone is not kept at all.
   */
  maxBytes?: number;
  /** Time source for expiry (default: the runtime's monotonic clock). */
  clock?: Pick<Clock, 'now'>;
}

const positiveInteger = z.number().check(z.int(), z.positive());
const lruStorageOptionsSchema = z.strictObject({
  maxEntries: z.optional(positiveInteger),
  maxBytes: z.optional(positiveInteger),
  clock: z.optional(z.custom<Pick<Clock, 'now'>>((value) => typeof (value as Clock | undefined)?.now === 'function', 'must have a now() method')),
});

/** Answers for the names lru-cache itself gives these bounds. */
const lruHints = {
  max: 'use maxEntries',
  maxSize: 'use maxBytes',
  ttl: "an entry's time to live is the cache's: cache({ ttlMs })",
};

/**
 * The default {@link CacheStorage}: an LRU in this process (the `lru-cache`
 * package), bounded both by entries and by bytes, with per-entry expiry.
 *
 * @param options - `maxEntries`, `maxBytes`, `clock`
 * @throws ValidationError naming a bad or unknown option (`lruStorage.maxBytes`; `max` is answered with "use maxEntries")
 * @example
 * ```ts
 * cache({ storage: lruStorage({ maxEntries: 1_000, maxBytes: 16 * 1024 * 1024 }) });
 * ```
 */
export function lruStorage(
  options: LruStorageOptions = {},
): CacheStorage & Required<Pick<CacheStorage, 'getSync' | 'setSync'>> & { readonly size: number; readonly bytes: number } {
  const { maxEntries = 10_000, maxBytes = 64 * 1024 * 1024, clock } = parseOptions(lruStorageOptionsSchema, options, 'lruStorage', lruHints);
  const lru = new LRUCache<string, string>({
    max: maxEntries,
    maxSize: maxBytes,
    // lru-cache needs a positive size; an empty string is still an entry.
    sizeCalculation: (text) => Math.max(1, utf8Bytes(text)),
    // lru-cache otherwise reuses one reading of the time for a millisecond, which a manual clock never lets pass.
    ...(clock ? { perf: { now: () => clock.now() }, ttlResolution: 0 } : {}),
  });
  // One options object each for the synchronous read and write, filled in per call: lru-cache
  // otherwise makes one per call (and adds a `status` to it). It writes its `status` into them
  // and reads it back as the caller's own, so that is cleared every time: a diagnostics
  // subscriber must get a fresh status for each call.
  const getOptions: { status?: undefined } = { status: undefined };
  const setOptions: { ttl: number; size: number | undefined; status?: undefined } = { ttl: 0, size: undefined, status: undefined };
  return {
    inProcess: true,
    get size() {
      return lru.size;
    },
    get bytes() {
      return lru.calculatedSize;
    },
    async get(key) {
      return lru.get(key);
    },
    async set(key, value, ttlMs, bytes) {
      lru.set(key, value, bytes === undefined ? { ttl: ttlMs } : { ttl: ttlMs, size: Math.max(1, bytes) });
    },
    getSync(key) {
      getOptions.status = undefined;
      return lru.get(key, getOptions);
    },
    setSync(key, value, ttlMs, bytes) {
      setOptions.status = undefined;
      setOptions.ttl = ttlMs;
      // The cache knows an entry's bytes from its parts: measuring the whole would copy it into one string first.
      setOptions.size = bytes === undefined ? undefined : Math.max(1, bytes);
      lru.set(key, value, setOptions);
    },
    async delete(key) {
      lru.delete(key);
    },
  };
}
