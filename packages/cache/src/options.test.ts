import { describe, expect, it } from 'vitest';
import { cache } from './cache.js';
import { storeBackend } from './cache-storage.js';
import { lruStorage } from './lru-storage.js';
import { isDeterministic } from './options.js';

describe('cache options', () => {
  it('names a bad field', () => {
    expect(() => cache({ ttlMs: -1 })).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'cache.ttlMs' }));
    expect(() => cache({ key: 'tenant' as never })).toThrow(expect.objectContaining({ field: 'cache.key' }));
    expect(() => cache({ rawJson: 'yes' as never })).toThrow(expect.objectContaining({ field: 'cache.rawJson' }));
  });

  it('points a key other caches use to its name here', () => {
    expect(() => cache({ ttl: 5 } as never)).toThrow(/cache\.ttl: is not an option; use ttlMs/);
    // The LRU's bounds belong to the storage, as the server config's `cache.maxEntries` might suggest otherwise.
    expect(() => cache({ maxEntries: 200 } as never)).toThrow(/cache\.maxEntries: is not an option; set it on the storage: storage: lruStorage\(\{ maxEntries \}\)/);
  });

  it('refuses a storage without get, set and delete, and a storeBackend without a Store', () => {
    const partial = { get: async () => undefined, set: async () => {} };
    expect(() => cache({ storage: partial as never })).toThrow(expect.objectContaining({ field: 'cache.storage' }));
    for (const store of [undefined, null, {}, { get() {}, set() {} }]) {
      expect(() => storeBackend(store as never)).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'storeBackend.store' }));
    }
  });

  it("names lruStorage's bad and unknown options, and points lru-cache's names to its own", () => {
    expect(() => lruStorage({ maxSize: 10 } as never)).toThrow(/lruStorage\.maxSize: is not an option; use maxBytes/);
    expect(() => lruStorage({ max: 10 } as never)).toThrow(/lruStorage\.max: is not an option; use maxEntries/);
    expect(() => lruStorage({ clock: 5 } as never)).toThrow(expect.objectContaining({ field: 'lruStorage.clock' }));
    expect(() => lruStorage({ maxEntries: 1.5 })).toThrow(expect.objectContaining({ field: 'lruStorage.maxEntries' }));
    expect(() => lruStorage(null as never)).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'lruStorage' }));
  });

  it('counts temperature 0 and a seed as deterministic, nothing else', () => {
    const messages = [{ role: 'user' as const, content: 'a' }];
    expect(isDeterministic({ model: 'm', messages, temperature: 0 })).toBe(true);
    expect(isDeterministic({ model: 'm', messages, seed: 3 } as never)).toBe(true);
    expect(isDeterministic({ model: 'm', messages, temperature: 0.2 })).toBe(false);
    expect(isDeterministic({ model: 'm', messages })).toBe(false);
  });
});
