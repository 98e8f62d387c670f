import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalRequest } from './canonical-json.js';
import { requestKey } from './cache-key.js';
import { defaultIgnoredFields } from './options.js';

const ignore = new Set([...defaultIgnoredFields, 'stream']);

/** The same JSON value with every object's keys in another order. */
function shuffled(value: unknown, random: () => number): unknown {
  if (Array.isArray(value)) return value.map((item) => shuffled(item, random));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value).sort(() => random() - 0.5);
  return Object.fromEntries(entries.map(([key, item]) => [key, shuffled(item, random)]));
}

/** The plain definition the hand-written serialiser must agree with: keys sorted by `sort()`, values as JSON writes them. */
function reference(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => reference(item)).join(',')}]`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const record = value as Record<string, unknown>;
  return `{${Object.keys(record).sort().map((key) => `${JSON.stringify(key)}:${reference(record[key])}`).join(',')}}`;
}

describe('canonicalRequest', () => {
  it('gives the keys earlier versions gave, so entries kept in a shared store stay found', () => {
    const request = {
      model: 'gpt-4.1', temperature: 0, seed: 7, user: 'u1',
      messages: [{ role: 'system', content: 'Be "terse".\n' }, { content: 'héllo 😀 \ud800', role: 'user' }],
      tools: [{ type: 'function', function: { name: 'f', parameters: { b: 1, a: [true, null, 1.5] } } }],
    } as never;
    expect(requestKey(request, false, 'https://api.example.com/v1', ignore)).toBe('completion:51909f3c66a015f493ccaa3ef595b8c1779e29351a90376496aad82193e7b2b5');
  });

  it('is the same when built again after a build that threw', () => {
    const request = { model: 'm', messages: [{ role: 'user', content: 'a' }] } as never;
    const before = canonicalRequest(request, ignore);
    expect(() => canonicalRequest({ model: 'm', messages: [], a: [1, 2, 3, 4, 5, 6, 7, 8], z: 1n } as never, ignore)).toThrow(TypeError);
    expect(canonicalRequest(request, ignore)).toBe(before);
  });

  it('is the JSON of the request with every object\'s keys sorted, small objects and large', () => {
    const wide = fc.dictionary(fc.string({ unit: 'binary', maxLength: 4 }), fc.jsonValue({ maxDepth: 1, stringUnit: 'binary' }), { minKeys: 10, maxKeys: 30 });
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ stringUnit: 'binary' }), wide), (value) => {
        const request = { model: 'm', messages: [{ role: 'user', content: 'x', name: 'n' }], extra: value } as never;
        expect(canonicalRequest(request, ignore)).toBe(reference(value === null ? { messages: (request as { messages: unknown }).messages, model: 'm' } : request));
      }),
    );
  });

  it('is the same whatever the order of keys, at any depth', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer(), (value, seed) => {
        let state = seed;
        const random = () => ((state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31 + 1) % 1;
        const request = { model: 'm', messages: [{ role: 'user', content: 'x' }], extra: value } as never;
        expect(canonicalRequest(shuffled(request, random) as never, ignore)).toBe(canonicalRequest(request, ignore));
      }),
    );
  });

  it('keeps the order of arrays: messages and tools are ordered', () => {
    const a = canonicalRequest({ model: 'm', messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] }, ignore);
    const b = canonicalRequest({ model: 'm', messages: [{ role: 'user', content: 'b' }, { role: 'user', content: 'a' }] }, ignore);
    expect(a).not.toBe(b);
  });

  it('leaves out fields that do not change the answer, and top-level nulls', () => {
    const bare = canonicalRequest({ model: 'm', messages: [{ role: 'user', content: 'a' }] }, ignore);
    const noisy = canonicalRequest(
      { model: 'm', messages: [{ role: 'user', content: 'a' }], stream: true, user: 'u', temperature: null, metadata: { a: 1 } } as never,
      ignore,
    );
    expect(noisy).toBe(bare);
  });

  it('writes a value with toJSON, and a boxed primitive, as JSON.stringify sends it', () => {
    const request = {
      model: 'm',
      messages: [{ role: 'user', content: 'a' }],
      after: new Date('2024-01-01T00:00:00Z'),
      where: new URL('https://example.com/a?b=1'),
      boxed: [new Number(3), new String('s'), new Boolean(false)],
      custom: { toJSON: (key: string) => ({ z: key, a: [new Date(0), undefined] }) },
      gone: { toJSON: () => undefined },
    } as never;
    expect(canonicalRequest(request, ignore)).toBe(reference(JSON.parse(JSON.stringify(request))));
    const at = (iso: string) => canonicalRequest({ model: 'm', messages: [{ role: 'user', content: 'a' }], after: new Date(iso) } as never, ignore);
    expect(at('2024-01-01T00:00:00Z')).not.toBe(at('2025-06-01T00:00:00Z'));
  });

  it('tells apart values JSON tells apart', () => {
    const of = (extra: object) => canonicalRequest({ model: 'm', messages: [{ role: 'user', content: 'a' }], ...extra } as never, ignore);
    expect(new Set([of({ temperature: 0 }), of({ temperature: '0' }), of({ seed: 1 }), of({ tools: [] }), of({})]).size).toBe(5);
  });
});

describe('requestKey', () => {
  it('separates streams from completions and one upstream from another', () => {
    const request = { model: 'm', messages: [{ role: 'user' as const, content: 'a' }] };
    const keys = [
      requestKey(request, false, 'https://a/v1', ignore),
      requestKey(request, true, 'https://a/v1', ignore),
      requestKey(request, false, 'https://b/v1', ignore),
    ];
    expect(new Set(keys).size).toBe(3);
    expect(keys[0]).toMatch(/^completion:[0-9a-f]{64}$/);
    expect(keys[1]).toMatch(/^stream:[0-9a-f]{64}$/);
  });
});
