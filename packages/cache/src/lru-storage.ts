import { type Clock, ValidationError } from '@sluice/core';
import { LRUCache } from 'lru-cache';
import type { CacheStorage } from './cache-storage.js';

/** Options of {@link lruStorage}. */
export interface LruStorageOptions {
  /** The most entries kept (default 10 000); past it, the least recently used goes first. */
  maxEntries?: number;
  /**
   * The most bytes of serialised entries kept (default 64 MiB); an entry
   * larger than this alone is not kept at all.
   */
  maxBytes?: number;
  /** Time source for expiry (default: the runtime's monotonic clock). */
  clock?: Pick<Clock, 'now'>;
}

/**
 * The default {@link CacheStorage}: an LRU in this process (the `lru-cache`
 * package), bounded both by entries and by bytes, with per-entry expiry.
 *
 * @param options - `maxEntries`, `maxBytes`, `clock`
 * @throws ValidationError naming a bad bound (`lruStorage.maxBytes`)
 * @example
 * ```ts
 * cache({ storage: lruStorage({ maxEntries: 1_000, maxBytes: 16 * 1024 * 1024 }) });
 * ```
 */
export function lruStorage(
  options: LruStorageOptions = {},
): CacheStorage & Required<Pick<CacheStorage, 'getSync' | 'setSync'>> & { readonly size: number; readonly bytes: number } {
  const { maxEntries = 10_000, maxBytes = 64 * 1024 * 1024, clock } = options;
  for (const [field, value] of [['maxEntries', maxEntries], ['maxBytes', maxBytes]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) throw new ValidationError(`lruStorage.${field}`, 'must be a positive integer');
  }
  const lru = new LRUCache<string, string>({
    max: maxEntries,
    maxSize: maxBytes,
    sizeCalculation: utf8Bytes,
    // lru-cache otherwise reuses one reading of the time for a millisecond, which a manual clock never lets pass.
    ...(clock ? { perf: { now: () => clock.now() }, ttlResolution: 0 } : {}),
  });
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
    async set(key, value, ttlMs) {
      lru.set(key, value, { ttl: ttlMs });
    },
    getSync: (key) => lru.get(key),
    setSync(key, value, ttlMs) {
      lru.set(key, value, { ttl: ttlMs });
    },
    async delete(key) {
      lru.delete(key);
    },
  };
}

const nonAscii = /[^\x00-\x7f]/;

/** The UTF-8 length of `text`, without encoding it (no Buffer: the package runs beyond Node). */
function utf8Bytes(text: string): number {
  // Most entries are ASCII JSON: one native scan instead of a loop over every unit.
  if (!nonAscii.test(text)) return Math.max(1, text.length);
  let bytes = text.length;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x80) continue;
    // Two bytes up to U+07FF, three for the rest of the BMP; a surrogate pair (two units) is four.
    bytes += code < 0x800 || (code >= 0xd800 && code <= 0xdfff) ? 1 : 2;
  }
  return Math.max(1, bytes);
}
