import { describe, expect, it } from 'vitest';
import { cache } from './cache.js';
import { isDeterministic } from './options.js';

describe('cache options', () => {
  it('names a bad field', () => {
    expect(() => cache({ ttlMs: -1 })).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'cache.ttlMs' }));
    expect(() => cache({ key: 'tenant' as never })).toThrow(expect.objectContaining({ field: 'cache.key' }));
    expect(() => cache({ rawJson: 'yes' as never })).toThrow(expect.objectContaining({ field: 'cache.rawJson' }));
  });

  it('points a key other caches use to its name here', () => {
    expect(() => cache({ ttl: 5 } as never)).toThrow(/cache\.ttl: is not an option; use ttlMs/);
  });

  it('counts temperature 0 and a seed as deterministic, nothing else', () => {
    const messages = [{ role: 'user' as const, content: 'a' }];
    expect(isDeterministic({ model: 'm', messages, temperature: 0 })).toBe(true);
    expect(isDeterministic({ model: 'm', messages, seed: 3 } as never)).toBe(true);
    expect(isDeterministic({ model: 'm', messages, temperature: 0.2 })).toBe(false);
    expect(isDeterministic({ model: 'm', messages })).toBe(false);
  });
});
