import { manualClock } from '@sluice/testing/kit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lruStorage } from './lru-storage.js';
import { portableUtf8Bytes, utf8Bytes } from './utf8-bytes.js';

describe('lruStorage', () => {
  it('evicts the least recently used past maxEntries', async () => {
    const storage = lruStorage({ maxEntries: 2 });
    await storage.set('a', 'A', 60_000);
    await storage.set('b', 'B', 60_000);
    await storage.get('a');
    await storage.set('c', 'C', 60_000);
    expect(await storage.get('a')).toBe('A');
    expect(await storage.get('b')).toBeUndefined();
    expect(storage.size).toBe(2);
  });

  it('keeps the total of UTF-8 bytes within maxBytes, and declines an entry larger than that', async () => {
    const storage = lruStorage({ maxBytes: 10 });
    await storage.set('a', 'éé', 60_000); // 4 bytes
    await storage.set('b', '😀', 60_000); // 4 bytes
    expect(storage.bytes).toBe(8);
    await storage.set('c', 'xyz', 60_000);
    expect(storage.bytes).toBeLessThanOrEqual(10);
    expect(await storage.get('a')).toBeUndefined();
    await storage.set('d', 'x'.repeat(11), 60_000);
    expect(await storage.get('d')).toBeUndefined();
  });

  it('sizes an entry at exactly its UTF-8 bytes, natively and in plain JavaScript, lone surrogates included', () => {
    const encoder = new TextEncoder();
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
        const bytes = encoder.encode(text).length;
        expect(utf8Bytes(text)).toBe(bytes);
        expect(portableUtf8Bytes(text)).toBe(bytes);
      }),
      { numRuns: 200 },
    );
    for (const text of ['\ud800', 'a\udc00b', '😀\ud83d', '\ud83d😀', 'é€😀']) expect(portableUtf8Bytes(text)).toBe(encoder.encode(text).length);
    expect(utf8Bytes).not.toBe(portableUtf8Bytes);
  });

  it('takes the size its caller gives, and still keeps its total within maxBytes', async () => {
    const storage = lruStorage({ maxBytes: 10 });
    storage.setSync('a', 'aaaa', 60_000, 6);
    expect(storage.bytes).toBe(6);
    storage.setSync('b', 'bbbb', 60_000, 6);
    expect(storage.bytes).toBe(6);
    expect(storage.getSync('a')).toBeUndefined();
    await storage.set('c', 'c', 60_000, 11);
    expect(await storage.get('c')).toBeUndefined();
  });

  it('expires entries on its clock', async () => {
    const clock = manualClock();
    const storage = lruStorage({ clock });
    await storage.set('a', 'A', 1_000);
    clock.advance(999);
    expect(await storage.get('a')).toBe('A');
    clock.advance(2);
    expect(await storage.get('a')).toBeUndefined();
  });

  it('names a bad bound', () => {
    expect(() => lruStorage({ maxBytes: 0 })).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'lruStorage.maxBytes' }));
  });
});
