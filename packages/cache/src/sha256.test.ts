import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nativeSha256, portableSha256, sha256 } from './sha256.js';

async function webCrypto(text: string): Promise<string> {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

const native = nativeSha256();

describe('sha256', () => {
  it('takes the runtime digest on Node', () => {
    expect(native).toBeDefined();
    expect(sha256).not.toBe(portableSha256);
  });

  it.each([
    ['the runtime digest', sha256],
    ['the portable digest', portableSha256],
  ])('%s gives the FIPS 180-4 test vectors', (_name, hash) => {
    expect(hash('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(hash('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hash('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  it('both digests equal Web Crypto on any text, lone surrogates, multibyte and every padding length included', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 300 }), async (text) => {
        const expected = await webCrypto(text);
        expect(sha256(text)).toBe(expected);
        expect(portableSha256(text)).toBe(expected);
        // Bytes hash as the string they encode: what the cache key hashes.
        const bytes = new TextEncoder().encode(text);
        expect([sha256(bytes), portableSha256(bytes)]).toEqual([expected, expected]);
      }),
      { numRuns: 50 },
    );
    for (const text of ['\ud800', 'a\udc00b', '😀\ud83d']) expect([sha256(text), portableSha256(text)]).toEqual([await webCrypto(text), await webCrypto(text)]);
    for (const length of [55, 56, 57, 63, 64, 65, 119, 120, 128]) expect(sha256('x'.repeat(length))).toBe(await webCrypto('x'.repeat(length)));
  }, 30_000);
});
