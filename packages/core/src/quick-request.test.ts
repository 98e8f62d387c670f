import { seededRandom } from '@sluice/testing';
import { describe, expect, it } from 'vitest';
import * as z from 'zod/mini';
import { quickRequest } from './quick-request.js';
import { chatCompletionRequestSchema } from './schemas.js';

/** Every object and array reachable from `value`. */
function nodesOf(value: unknown, into = new Set<object>()): Set<object> {
  if (typeof value !== 'object' || value === null || into.has(value)) return into;
  into.add(value);
  for (const key of Object.keys(value)) nodesOf((value as Record<string, unknown>)[key], into);
  return into;
}

/**
 * Where `got` and `want` differ, or undefined: the same keys in the same
 * order, the same primitives, and the caller's own object at the same
 * places (a node of `given`) or a new one at both.
 */
function difference(got: unknown, want: unknown, given: Set<object>, path = 'request'): string | undefined {
  if (typeof got !== 'object' || got === null || typeof want !== 'object' || want === null) {
    return Object.is(got, want) ? undefined : `${path}: ${String(got)} against ${String(want)}`;
  }
  if (given.has(got) || given.has(want)) return got === want ? undefined : `${path}: the caller's object in one, a copy in the other`;
  if (Array.isArray(got) !== Array.isArray(want)) return `${path}: an array in one only`;
  const keys = Object.keys(got);
  const wanted = Object.keys(want);
  if (keys.join() !== wanted.join()) return `${path}: keys ${keys.join()} against ${wanted.join()}`;
  if (Object.getPrototypeOf(got) !== Object.getPrototypeOf(want)) return `${path}: another prototype`;
  for (const key of keys) {
    const found = difference((got as Record<string, unknown>)[key], (want as Record<string, unknown>)[key], given, `${path}.${key}`);
    if (found) return found;
  }
  return undefined;
}

const absent = Symbol('absent');

/** Seeded requests, mostly valid, each field sometimes odd, keys in any order. */
function requests(seed: number): () => unknown {
  const random = seededRandom(seed);
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)] as T;
  const often = (chance: number) => random() < chance;
  const shuffled = (entries: Array<[string, unknown]>): Record<string, unknown> => {
    for (let i = entries.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [entries[i], entries[j]] = [entries[j] as [string, unknown], entries[i] as [string, unknown]];
    }
    const out: Record<string, unknown> = {};
    for (const [key, value] of entries) {
      if (value === absent) continue;
      if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[key] = value;
    }
    return out;
  };
  const extras = (): Array<[string, unknown]> => (often(0.2) ? [[pick(['x_extra', 'reasoning_effort', 'metadata', '__proto__']), pick(['low', 1, { nested: true }, [1, 2], null])]] : []);
  const text = () => (often(0.97) ? 'hello there' : pick([5, null, undefined, absent, {}]));
  const image = (): unknown =>
    often(0.9)
      ? shuffled([['url', often(0.95) ? 'https://x/y.png' : pick([5, absent])], ['detail', maybe(0.4, ['auto', 'low', 'high', 'ultra', null, undefined])], ...extras()])
      : pick([null, 'https://x/y.png', absent]);
  const part = (): unknown =>
    often(0.7)
      ? shuffled([['type', 'text'], ['text', text()], ...extras()])
      : often(0.8)
        ? shuffled([['type', 'image_url'], ['image_url', image()], ...extras()])
        : pick([{ type: 'text' }, { type: 'input_audio', input_audio: { data: 'a', format: 'wav' } }, { type: 'refusal', refusal: 'no' }, null, 'text']);
  const content = (): unknown =>
    often(0.75) ? text() : often(0.8) ? Array.from({ length: Math.floor(random() * 3) }, part) : pick([5, {}, null, undefined, absent, [[]]]);
  const toolCall = (): unknown =>
    often(0.85)
      ? shuffled([
          ['id', pick(['call_1', 'call_1', 'call_1', 7, absent])],
          ['type', pick(['function', 'function', 'function', 'custom', absent])],
          ['function', often(0.9) ? shuffled([['name', pick(['f', 'f', 3, absent])], ['arguments', pick(['{}', '{}', null, absent])], ...extras()]) : pick([null, 'f', absent])],
          ...extras(),
        ])
      : pick([{ id: 'c', type: 'custom', custom: { name: 'c', input: 'x' } }, null, []]);
  const message = (): unknown => {
    const role = often(0.95) ? pick(['system', 'developer', 'user', 'user', 'user', 'assistant', 'assistant', 'tool']) : pick(['function', 'bogus', absent]);
    const entries: Array<[string, unknown]> = [['role', role], ['content', content()]];
    if (often(0.2)) entries.push(['name', pick(['bob', 'bob', undefined, 5, null])]);
    if (role === 'assistant' || often(0.05)) {
      if (often(0.2)) entries.push(['refusal', pick(['no', null, undefined, 5])]);
      if (often(0.4)) entries.push(['tool_calls', often(0.8) ? Array.from({ length: 1 + Math.floor(random() * 2) }, toolCall) : pick([undefined, null, {}, 'x'])]);
    }
    if (role === 'tool' || often(0.05)) entries.push(['tool_call_id', pick(['call_1', 'call_1', 5, absent])]);
    entries.push(...extras());
    if (often(0.03)) return pick([null, 'hi', [], Object.assign(Object.create(null), { role: 'user', content: 'x' }), new (class Message { role = 'user'; content = 'x'; })()]);
    return shuffled(entries);
  };
  const messages = (): unknown => {
    if (often(0.05)) return pick([[], null, 'hi', { 0: { role: 'user', content: 'x' } }, [, { role: 'user', content: 'x' }]]);
    return Array.from({ length: 1 + Math.floor(random() * 4) }, message);
  };
  /** Absent, or the first value (the usual one), or any. */
  const parameters = (): unknown => {
    if (often(0.1)) return pick([null, [], 'object', Object.assign(Object.create(null), { type: 'object' }), { [Symbol('s')]: 1, type: 'object' }, JSON.parse('{"__proto__":{"x":1}}'), undefined]);
    return shuffled([['type', 'object'], ['properties', { city: { type: 'string' } }], ['required', ['city']], ...extras()]);
  };
  const tool = (): unknown =>
    often(0.9)
      ? shuffled([
          ['type', often(0.95) ? 'function' : pick(['custom', absent])],
          ['function', often(0.95) ? shuffled([
            ['name', often(0.95) ? 'weather' : pick([5, absent])],
            ['description', maybe(0.5, ['Looks up the weather', 5, undefined, null])],
            ['parameters', often(0.8) ? parameters() : absent],
            ['strict', maybe(0.3, [true, false, null, undefined, 'yes'])],
            ...extras(),
          ]) : pick([null, 'f', absent])],
          ...extras(),
        ])
      : pick([{ type: 'custom', custom: { name: 'c' } }, null, 'tool']);
  const maybe = (chance: number, values: readonly unknown[]): unknown => (!often(chance) ? absent : often(0.7) ? values[0] : pick(values));
  const counts = [64, 64, 1, 0, -1, 1.5, 2 ** 60, null, undefined, '64', Number.NaN];
  const numbers = [0, 0.7, -0, 1, Number.POSITIVE_INFINITY, Number.NaN, null, undefined, '0'];
  return () => {
    if (often(0.02)) return pick([null, 'request', [], Object.assign(Object.create(null), { model: 'm', messages: [{ role: 'user', content: 'x' }] })]);
    return shuffled([
      ['model', often(0.95) ? 'gpt-4.1' : pick(['', 5, absent])],
      ['messages', messages()],
      ['stream', maybe(0.5, [true, false, true, null, undefined, 'yes'])],
      ['stream_options', maybe(0.3, [{ include_usage: true }, { include_usage: true }, { include_usage: false, extra: 1 }, { include_usage: null }, {}, null, undefined, 'x', []])],
      ['max_tokens', maybe(0.5, counts)],
      ['max_completion_tokens', maybe(0.1, counts)],
      ['n', maybe(0.1, counts)],
      ['temperature', maybe(0.4, numbers)],
      ['top_p', maybe(0.1, numbers)],
      ['tools', often(0.25) ? (often(0.9) ? Array.from({ length: Math.floor(random() * 3) }, tool) : pick([undefined, null, 'x', {}])) : absent],
      ['tool_choice', maybe(0.1, ['auto', { type: 'function', function: { name: 'f' } }, undefined, null])],
      ['user', maybe(0.1, ['u-1', undefined, null, 5])],
      ...extras(),
    ]);
  };
}

const plainCopy = (value: unknown) =>
  typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype ? { ...value } : value;

describe('quickRequest', () => {
  it('answers exactly as the schema does, or leaves the request to zod', () => {
    const next = requests(2026);
    let answered = 0;
    let valid = 0;
    for (let round = 0; round < 20_000; round++) {
      const input = next();
      const parsed = z.safeParse(chatCompletionRequestSchema, plainCopy(input));
      if (parsed.success) valid++;
      const quick = quickRequest(input);
      if (quick === undefined) continue;
      answered++;
      if (!parsed.success) throw new Error(`accepted what zod rejects (${parsed.error.issues[0]?.path.map(String).join('.')}): ${JSON.stringify(input)}`);
      const found = difference(quick, parsed.data, nodesOf(input));
      if (found) throw new Error(`${found} in ${JSON.stringify(input)}`);
    }
    // Most valid requests take the quick path; the rest (tools, images, …) are zod's.
    expect(valid).toBeGreaterThan(4_000);
    expect(answered).toBeGreaterThan(valid * 0.6);
  });

  it('reads the usual requests itself', () => {
    const cases: unknown[] = [
      { model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] },
      { model: 'gpt-4.1', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi', name: 'ann' }], stream: true, stream_options: { include_usage: true }, max_tokens: 64, temperature: 0 },
      { model: 'gpt-4.1', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }], reasoning_effort: 'low', metadata: { team: 'a' } },
      { model: 'gpt-4.1', messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } }] }] },
      {
        model: 'gpt-4.1',
        messages: [
          { role: 'user', content: 'weather?' },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{}' } }] },
          { role: 'tool', content: 'sunny', tool_call_id: 'call_1' },
        ],
        tools: [{ type: 'function', function: { name: 'weather', description: 'Looks it up', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: true } }],
        tool_choice: 'auto',
        user: 'u-1',
      },
      // Read as zod reads it, though for…in would not see it.
      Object.defineProperty({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }, 'stream', { value: true, enumerable: false }),
    ];
    for (const input of cases) {
      const quick = quickRequest(input);
      expect(quick).toBeDefined();
      expect(difference(quick, z.parse(chatCompletionRequestSchema, input), nodesOf(input))).toBeUndefined();
      expect(quick).not.toBe(input);
      expect((quick as { messages: unknown }).messages).not.toBe((input as { messages: unknown }).messages);
    }
  });

  it('leaves to zod what it does not read, and every invalid request', () => {
    const user = { role: 'user', content: 'hi' };
    for (const input of [
      { model: 'm', messages: [user], tools: [{ type: 'custom', custom: { name: 'f' } }] },
      { model: 'm', messages: [user], tools: [{ type: 'function', function: { name: 'f', parameters: { [Symbol('s')]: 1 } } }] },
      { model: 'm', messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'a', format: 'wav' } }] }] },
      { model: 'm', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png', detail: 'ultra' } }] }] },
      { model: 'm', messages: [{ role: 'function', content: null, name: 'f' }] },
      { model: 'm', messages: [user], max_tokens: 0 },
      { model: 'm', messages: [user], temperature: Number.NaN },
      { model: '', messages: [user] },
      { model: 'm', messages: [] },
      { model: 'm', messages: [{ role: 'tool', content: 'x' }] },
      JSON.parse('{"model":"m","messages":[{"role":"user","content":"x","__proto__":{"polluted":true}}]}'),
      Object.assign(Object.create(null), { model: 'm', messages: [user] }),
    ]) {
      expect(quickRequest(input)).toBeUndefined();
    }
  });
});
