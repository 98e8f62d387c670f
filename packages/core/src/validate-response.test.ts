import { seededRandom } from '@sluice/testing';
import { describe, expect, it } from 'vitest';
import { chatCompletionChunkSchema, chatCompletionSchema } from './schemas.js';
import { chunkResponseSchema, completionResponseSchema } from './response-schemas.js';
import { sanitiseUsage, toChunk, toCompletion } from './validate-response.js';
import type { Settlement } from './context.js';
import { apiKey, ask, collect, setup } from './test-helpers.js';
import { chunk, rawUpstream, sse } from './test-raw-upstream.js';
import { createPipeline } from './pipeline.js';
import { openAICompatible } from './open-ai-compatible.js';

const context = { headers: {}, secrets: [] };
const usage = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };
const completion = (choices: unknown, extra: object = {}) => ({ id: 'c', object: 'chat.completion', model: 'm', choices, ...extra });
const chunkOf = (choices: unknown, extra: object = {}) => ({ id: 'c', object: 'chat.completion.chunk', model: 'm', choices, ...extra });
const message = { role: 'assistant', content: 'hi' };

/** [name, value, accepted] for completions. */
const completions: Array<[string, unknown, boolean]> = [
  ['a plain completion', completion([{ index: 0, message, finish_reason: 'stop' }], { usage }), true],
  ['no choices', completion([]), true],
  ['a tool call', completion([{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{}' } }] }, finish_reason: 'tool_calls' }]), true],
  ['content parts', completion([{ index: 0, message: { role: 'assistant', content: [{ type: 'text', text: 'x' }] }, finish_reason: 'stop' }]), true],
  ['a missing index, role and finish_reason', completion([{ message: { content: 'x' } }]), true],
  ['a missing id and model', { choices: [{ index: 0, message, finish_reason: 'stop' }] }, true],
  ['choices: [null]', completion([null]), false],
  ['choices: [{}]', completion([{}]), false],
  ['a delta where a message belongs', completion([{ index: 0, delta: { content: 'x' }, finish_reason: null }]), false],
  ['message: null', completion([{ index: 0, message: null, finish_reason: 'stop' }]), false],
  ['message an array', completion([{ index: 0, message: [], finish_reason: 'stop' }]), false],
  ['choices not an array', completion({ 0: { message } }), false],
  ['a body that is an array', [completion([])], false],
  ['a numeric content', completion([{ index: 0, message: { role: 'assistant', content: 5 }, finish_reason: 'stop' }]), false],
  ['another role', completion([{ index: 0, message: { role: 'user', content: 'x' }, finish_reason: 'stop' }]), false],
  ['a string index', completion([{ index: '0', message, finish_reason: 'stop' }]), false],
  ['a numeric finish_reason', completion([{ index: 0, message, finish_reason: 1 }]), false],
  ['a tool call without arguments', completion([{ index: 0, message: { role: 'assistant', tool_calls: [{ id: 't', type: 'function', function: { name: 'f' } }] }, finish_reason: 'tool_calls' }]), false],
  ['tool_calls an object', completion([{ index: 0, message: { role: 'assistant', tool_calls: {} }, finish_reason: 'stop' }]), false],
  ['a numeric id', { ...completion([]), id: 7 }, false],
  ['a bad usage (sanitised, not rejected)', completion([], { usage: 'lots' }), true],
];

/** [name, value, accepted] for stream chunks. */
const chunks: Array<[string, unknown, boolean]> = [
  ['a content delta', chunkOf([{ index: 0, delta: { content: 'x' }, finish_reason: null }]), true],
  ['the usage chunk', chunkOf([], { usage }), true],
  ['delta: null', chunkOf([{ index: 0, delta: null, finish_reason: null }]), true],
  ['a finish-only choice', chunkOf([{ index: 0, finish_reason: 'stop' }]), true],
  ['a tool call delta without index', chunkOf([{ index: 0, delta: { tool_calls: [{ function: { arguments: '{' } }] } }]), true],
  ['choices: [null]', chunkOf([null]), false],
  ['choices: [{}]', chunkOf([{}]), false],
  ['a message where a delta belongs', chunkOf([{ index: 0, message, finish_reason: null }]), false],
  ['delta a string', chunkOf([{ index: 0, delta: 'x' }]), false],
  ['a numeric content', chunkOf([{ index: 0, delta: { content: 1 } }]), false],
  ['tool_calls holding null', chunkOf([{ index: 0, delta: { tool_calls: [null] } }]), false],
  ['a tool call function that is a string', chunkOf([{ index: 0, delta: { tool_calls: [{ index: 0, function: 'f' }] } }]), false],
  ['choices a string', chunkOf('none'), false],
  ['a numeric model', { ...chunkOf([]), model: 4 }, false],
];

describe('response checks', () => {
  it.each(completions)('completion with %s: the check and the zod schema agree', (_name, value, accepted) => {
    const copy = structuredClone(value);
    expect(completionResponseSchema.safeParse(structuredClone(value)).success).toBe(accepted);
    if (accepted) expect(() => toCompletion(copy, context)).not.toThrow();
    else expect(() => toCompletion(copy, context)).toThrow(expect.objectContaining({ code: 'MALFORMED_RESPONSE' }));
  });

  it.each(chunks)('chunk with %s: the check and the zod schema agree', (_name, value, accepted) => {
    const copy = structuredClone(value);
    expect(chunkResponseSchema.safeParse(structuredClone(value)).success).toBe(accepted);
    if (accepted) expect(() => toChunk(copy, context)).not.toThrow();
    else expect(() => toChunk(copy, context)).toThrow(expect.objectContaining({ code: 'MALFORMED_RESPONSE' }));
  });

  it('names the bad field in the error', () => {
    expect(() => toChunk(chunkOf([{ index: 0, message }]), context)).toThrow(/choices\.0\.delta: a stream chunk carries a message where a delta belongs/);
    expect(() => toCompletion(completion([{ delta: {} }]), context)).toThrow(/choices\.0\.message: a completion carries a delta/);
  });

  it('sanitises what a caller would otherwise trip on', () => {
    expect(toChunk(chunkOf([{ index: 0, delta: null, finish_reason: null }]), context).choices[0]?.delta).toEqual({});
    expect(toChunk(chunkOf([{ finish_reason: 'stop' }]), context).choices[0]).toMatchObject({ index: 0, delta: {} });
    expect(toCompletion({ choices: [{ message: { content: 'x' } }] }, context)).toMatchObject({
      id: '',
      model: '',
      choices: [{ index: 0, finish_reason: null, message: { role: 'assistant', content: 'x' } }],
    });
  });

  it("fills what the public types (and openai-node's) require but an upstream left out", () => {
    expect(toCompletion({ choices: [{ message: {} }], usage: null, created: 'now' }, context)).toEqual({
      id: '',
      object: 'chat.completion',
      created: 0,
      model: '',
      choices: [{ index: 0, finish_reason: null, logprobs: null, message: { role: 'assistant', content: null, refusal: null } }],
    });
    expect(toChunk({ object: 'chat.completion', choices: [{ delta: { content: 'x' }, logprobs: 'none' }] }, context)).toEqual({
      id: '',
      object: 'chat.completion.chunk',
      created: 0,
      model: '',
      choices: [{ index: 0, finish_reason: null, delta: { content: 'x' } }],
    });
  });

  it('keeps what the upstream sent where it has the right type', () => {
    const logprobs = { content: [], refusal: null };
    const value = toCompletion(completion([{ index: 0, message: { ...message, refusal: 'no' }, finish_reason: 'stop', logprobs }], { created: 1_700_000_000 }), context);
    expect(value).toMatchObject({ created: 1_700_000_000, choices: [{ logprobs, message: { content: 'hi', refusal: 'no' } }] });
  });
});

/** What the exported types promise beyond the zod schemas: the fields openai-node requires are there. */
function meetsPublicType(value: Record<string, unknown>, object: 'chat.completion' | 'chat.completion.chunk'): boolean {
  if (value.object !== object || typeof value.created !== 'number') return false;
  const usage = value.usage as Record<string, unknown> | null | undefined;
  if (usage === null && object === 'chat.completion') return false;
  if (usage && (usage.prompt_tokens_details === null || usage.completion_tokens_details === null)) return false;
  return (value.choices as Array<Record<string, unknown>>).every((choice) => {
    if (choice.finish_reason === undefined) return false;
    if (choice.logprobs !== undefined && choice.logprobs !== null && typeof choice.logprobs !== 'object') return false;
    if (object === 'chat.completion.chunk') return true;
    const message = choice.message as Record<string, unknown>;
    return choice.logprobs !== undefined && message.content !== undefined && message.refusal !== undefined;
  });
}

const odd: unknown[] = [null, {}, [], [null], [{}], '12', '', -5, 0, 1.5, true, 'x', { content: 1 }, { index: 0 }, undefined];

/** Every path to a value inside `value`. */
function paths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (typeof value !== 'object' || value === null) return [prefix];
  const keys: Array<string | number> = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
  return [prefix, ...keys.flatMap((key) => paths((value as Record<string | number, unknown>)[key], [...prefix, key]))];
}

/** `base` with 1-3 random values replaced by odd ones (undefined deletes). */
function mutate(base: unknown, random: () => number): unknown {
  const value = structuredClone(base);
  for (let n = 1 + Math.floor(random() * 3); n > 0; n--) {
    const all = paths(value).filter((path) => path.length > 0);
    const path = all[Math.floor(random() * all.length)];
    if (!path) break;
    const parent = path.slice(0, -1).reduce<unknown>((at, key) => (at as Record<string | number, unknown>)[key], value) as Record<string | number, unknown>;
    const replacement = odd[Math.floor(random() * odd.length)];
    const key = path[path.length - 1] as string | number;
    if (replacement === undefined && !Array.isArray(parent)) delete parent[key];
    else parent[key] = structuredClone(replacement);
  }
  return value;
}

const toolCallChunk = chunkOf([{ index: 0, delta: { role: 'assistant', tool_calls: [{ index: 0, id: 't', type: 'function', function: { name: 'f', arguments: '{' } }] }, finish_reason: null }], { usage: null });
const finalChunk = chunkOf([], { usage: { ...usage, prompt_tokens_details: { cached_tokens: 1 }, completion_tokens_details: { reasoning_tokens: 0 } } });
const toolCompletion = completion([{ index: 0, message: { role: 'assistant', content: null, refusal: null, tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{}' } }] }, finish_reason: 'tool_calls' }], { usage });

/** Counts must be finite numbers of zero or more wherever they are. */
function countsAreSafe(value: { usage?: unknown }): boolean {
  const u = value.usage as Record<string, unknown> | null | undefined;
  if (u === undefined || u === null) return true;
  const counts = [u.prompt_tokens, u.completion_tokens, u.total_tokens, ...Object.values({ ...(u.prompt_tokens_details as object), ...(u.completion_tokens_details as object) })];
  return counts.every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0);
}

describe('response checks against random damage', () => {
  it('a damaged chunk is a typed error or a chunk of the public type with safe counts, as the schema says', () => {
    const random = seededRandom(7);
    for (let i = 0; i < 3_000; i++) {
      const value = mutate([chunkOf([{ index: 0, delta: { content: 'x' }, finish_reason: null }]), toolCallChunk, finalChunk][i % 3], random);
      const accepted = chunkResponseSchema.safeParse(structuredClone(value)).success;
      let result: unknown;
      try {
        result = toChunk(structuredClone(value), context);
      } catch (error) {
        expect(error, JSON.stringify(value)).toMatchObject({ code: 'MALFORMED_RESPONSE' });
        expect(accepted, JSON.stringify(value)).toBe(false);
        continue;
      }
      expect(accepted, JSON.stringify(value)).toBe(true);
      expect(chatCompletionChunkSchema.safeParse(result).success, JSON.stringify(value)).toBe(true);
      expect(meetsPublicType(result as Record<string, unknown>, 'chat.completion.chunk'), JSON.stringify(value)).toBe(true);
      expect(countsAreSafe(result as object), JSON.stringify(value)).toBe(true);
    }
  });

  it('a damaged completion is a typed error or a completion of the public type with safe counts, as the schema says', () => {
    const random = seededRandom(11);
    for (let i = 0; i < 3_000; i++) {
      const value = mutate([completion([{ index: 0, message, finish_reason: 'stop' }], { usage }), toolCompletion][i % 2], random);
      const accepted = completionResponseSchema.safeParse(structuredClone(value)).success;
      let result: { choices: Array<{ message: { content?: unknown } }> };
      try {
        result = toCompletion(structuredClone(value), context);
      } catch (error) {
        expect(error, JSON.stringify(value)).toMatchObject({ code: 'MALFORMED_RESPONSE' });
        expect(accepted, JSON.stringify(value)).toBe(false);
        continue;
      }
      expect(accepted, JSON.stringify(value)).toBe(true);
      // Content parts pass through unchecked (providers add their own kinds).
      for (const choice of result.choices) if (Array.isArray(choice.message.content)) choice.message.content = '';
      expect(chatCompletionSchema.safeParse(result).success, JSON.stringify(value)).toBe(true);
      expect(meetsPublicType(result as unknown as Record<string, unknown>, 'chat.completion'), JSON.stringify(value)).toBe(true);
      expect(countsAreSafe(result as object), JSON.stringify(value)).toBe(true);
    }
  });
});

describe('sanitiseUsage', () => {
  it.each([
    ['a numeric string', { ...usage, prompt_tokens: '12' }],
    ['null', { ...usage, completion_tokens: null }],
    ['a negative count', { ...usage, prompt_tokens: -5 }],
    ['a missing count', { completion_tokens: 2, total_tokens: 2 }],
    ['a string usage', 'lots'],
    ['an array usage', [3, 2, 5]],
  ])('drops a usage with %s', (_name, value) => {
    expect(sanitiseUsage(value)).toBeUndefined();
  });

  it('recomputes a bad total and removes bad details', () => {
    const value = {
      prompt_tokens: 3,
      completion_tokens: 2,
      total_tokens: 'five',
      prompt_tokens_details: { cached_tokens: -1, audio_tokens: 1 },
      completion_tokens_details: 'none',
    };
    expect(sanitiseUsage(value)).toEqual({ prompt_tokens: 3, completion_tokens: 2, total_tokens: 5, prompt_tokens_details: { audio_tokens: 1 } });
    // openai-node types the details as optional objects, never null.
    expect(sanitiseUsage({ ...usage, prompt_tokens_details: null })).toEqual(usage);
  });

  it('drops a bad usage from a completion instead of rejecting it', () => {
    const value = toCompletion(completion([], { usage: { ...usage, prompt_tokens: 'NaN' } }), context);
    expect(value).not.toHaveProperty('usage');
  });
});

describe('openAICompatible: malformed answers over HTTP', () => {
  it.each([
    ['choices: [null]', completion([null])],
    ['choices: [{}]', completion([{}])],
    ['a delta where a message belongs', completion([{ index: 0, delta: { content: 'x' } }])],
    ['choices not an array', completion('x')],
    ['message: null', completion([{ index: 0, message: null }])],
  ])('rejects a completion with %s as MALFORMED_RESPONSE', async (_name, body) => {
    const { upstream, llm } = await setup();
    upstream.enqueue({ kind: 'malformed', body: JSON.stringify(body) });
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'MALFORMED_RESPONSE', status: 200, upstreamFault: true, final: false });
  });

  it.each([
    ['a numeric string', { ...usage, prompt_tokens: '12' }],
    ['a negative count', { ...usage, completion_tokens: -5 }],
    ['a non-object', 'plenty'],
  ])('answers a completion whose usage has %s, without the usage', async (_name, bad) => {
    const { upstream, llm } = await setup();
    let settled: Settlement | undefined;
    llm.use(async function spy(ctx, next) {
      ctx.onSettled((s) => {
        settled = s;
      });
      await next();
    });
    upstream.enqueue({ kind: 'malformed', body: JSON.stringify(completion([{ index: 0, message, finish_reason: 'stop' }], { usage: bad })) });
    const reply = await llm.complete(ask());
    expect(reply.choices[0]?.message.content).toBe('hi');
    expect(reply.usage).toBeUndefined();
    expect(settled?.usage).toBeUndefined();
  });

  it.each([
    ['choices: [{}]', chunk({})],
    ['choices: [null]', `data: ${JSON.stringify(chunkOf([null]))}\n\n`],
    ['a message where a delta belongs', chunk({ index: 0, message })],
    ['a numeric content', chunk({ index: 0, delta: { content: 7 } })],
  ])('rejects a stream chunk with %s mid-stream and drops the socket', async (_name, bad) => {
    // The upstream holds the response open after the bad chunk: only the
    // client closing its socket ends it.
    const upstream = await rawUpstream((_req, res) => sse(res, [chunk(), bad, chunk()], true));
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey }) });
    const seen: string[] = [];
    const reading = (async () => {
      for await (const c of llm.stream(ask())) seen.push(c.choices[0]?.delta.content ?? '');
    })();
    await expect(reading).rejects.toMatchObject({ code: 'MALFORMED_RESPONSE' });
    expect(seen).toEqual(['x']);
    await upstream.socketClosed(1);
    await llm.close();
  });

  it('rejects a stream request answered with a JSON completion instead of an event stream', async () => {
    const upstream = await rawUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion([{ index: 0, message, finish_reason: 'stop' }])));
    });
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey }) });
    await expect(collect(llm.stream(ask()))).rejects.toMatchObject({ code: 'MALFORMED_RESPONSE', message: expect.stringContaining('without an event stream') });
    await llm.close();
  });

  it.each(['null', '42', '"text"'])('rejects a completion body that is the JSON value %s', async (body) => {
    const { upstream, llm } = await setup();
    upstream.enqueue({ kind: 'malformed', body });
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'MALFORMED_RESPONSE' });
  });

  it('sanitises delta: null to an empty delta and finishes the stream', async () => {
    const upstream = await rawUpstream((_req, res) =>
      sse(res, [chunk({ index: 0, delta: { content: 'a' } }), chunk({ index: 0, delta: null, finish_reason: 'stop' }), 'data: [DONE]\n\n']),
    );
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey }) });
    const got = await collect(llm.stream(ask()));
    expect(got.map((c) => c.choices[0]?.delta)).toEqual([{ content: 'a' }, {}]);
    await llm.close();
  });

  it('skips comments and events without data between chunks', async () => {
    const upstream = await rawUpstream((_req, res) => sse(res, [chunk(), ': keep-alive\n\n', 'data:\n\n', 'event: ping\n\n', chunk(), 'data: [DONE]\n\n']));
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey }) });
    await expect(collect(llm.stream(ask()))).resolves.toHaveLength(2);
    await llm.close();
  });

  it('drops a stream usage with bad counts, so nothing downstream counts a NaN', async () => {
    const bad = { prompt_tokens: '12', completion_tokens: 2, total_tokens: 14 };
    const upstream = await rawUpstream((_req, res) => sse(res, [chunk(), `data: ${JSON.stringify(chunkOf([], { usage: bad }))}\n\n`, 'data: [DONE]\n\n']));
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey }) });
    let settled: Settlement | undefined;
    llm.use(async function spy(ctx, next) {
      ctx.onSettled((s) => {
        settled = s;
      });
      await next();
    });
    const got = await collect(llm.stream(ask()));
    // The usage chunk is still hidden from a caller who did not ask for usage.
    expect(got).toHaveLength(1);
    expect(settled).toMatchObject({ outcome: 'success', usage: undefined });
    await llm.close();
  });
});
