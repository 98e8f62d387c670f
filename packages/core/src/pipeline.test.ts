import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CompletionContext, Middleware, Settlement } from './context.js';
import { AbortError, SluiceError } from './errors.js';
import { abortReason, onAbort, outliveParent } from './call.js';
import type { SluiceEvents } from './augmentable.js';
import { createPipeline, type Pipeline } from './pipeline.js';
import type { ChatCompletionRequest } from './schemas.js';
import type { Transport } from './transport.js';
import { apiKey, ask, collect, setup } from './test-helpers.js';
import { readAhead } from './transport-stream.js';
import { streamReading } from './stream-end.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('createPipeline', () => {
  it('validates its options, naming the field', () => {
    expect(() => createPipeline({} as never)).toThrow(expect.objectContaining({ field: 'createPipeline.transport' }));
  });

  it('closes idempotently', async () => {
    const { llm } = await setup();
    await llm.close();
    await expect(llm.close()).resolves.toBeUndefined();
  });

  it('rejects a non-function middleware', async () => {
    const { llm } = await setup();
    expect(() => llm.use('retry' as unknown as Middleware)).toThrow(expect.objectContaining({ field: 'middleware' }));
  });
});

describe('pipeline.complete', () => {
  it('rejects a malformed request at the entrance, naming the field, without sending it', async () => {
    const { upstream, llm } = await setup();
    await expect(llm.complete({ model: 'gpt-4.1', messages: [{ role: 'wizard', content: 'x' }] } as never)).rejects.toMatchObject({
      code: 'VALIDATION',
      field: 'request.messages.0.role',
    });
    await expect(llm.complete({ model: '', messages: [] } as never)).rejects.toMatchObject({ field: 'request.model' });
    await expect(llm.complete({ ...ask(), max_tokens: -1 })).rejects.toMatchObject({ field: 'request.max_tokens' });
    await expect(llm.complete({ ...ask(), stream: true })).rejects.toMatchObject({ field: 'stream' });
    await expect(llm.complete(ask(), { timeoutMs: -5 })).rejects.toMatchObject({ field: 'options.timeoutMs' });
    expect(upstream.requests).toHaveLength(0);
  });

  it('accepts every message role, content parts and tool calls', async () => {
    const { upstream, llm } = await setup();
    await llm.complete({
      model: 'gpt-4.1',
      max_completion_tokens: 100,
      tools: [{ type: 'function', function: { name: 'weather', parameters: { type: 'object' } } }],
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'developer', content: 'Use tools.' },
        { role: 'user', name: 'ann', content: [{ type: 'text', text: 'Weather?' }, { type: 'image_url', image_url: { url: 'data:,', detail: 'low' } }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'weather', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'sunny' },
      ],
    });
    expect(upstream.requests).toHaveLength(1);
  });

  it("accepts openai's custom tools and custom tool calls, and sends them as given", async () => {
    const { upstream, llm } = await setup();
    const tools: ChatCompletionRequest['tools'] = [{ type: 'custom', custom: { name: 'grep', description: 'free-form input' } }];
    await llm.complete({
      model: 'm',
      tools,
      messages: [
        { role: 'user', content: 'Find it.' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'custom', custom: { name: 'grep', input: 'needle' } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'found' },
      ],
    });
    expect(upstream.requests[0]?.body).toMatchObject({ tools, messages: [{}, { tool_calls: [{ custom: { input: 'needle' } }] }, {}] });
    // A tool call of neither kind is still refused, naming it.
    await expect(
      llm.complete({
        model: 'm',
        messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c2', type: 'other', other: {} } as never] }],
      }),
    ).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('messages.0.tool_calls.0') });
  });

  it('parses a request built by spreading, one with no prototype, and a class instance with getters, as it reads them', async () => {
    const { upstream, llm } = await setup();
    const defaults = { model: 'gpt-4.1', max_tokens: 16 };
    await llm.complete({ ...defaults, temperature: 0, messages: [{ role: 'user', content: 'spread' }] });
    const bare = Object.assign(Object.create(null) as ChatCompletionRequest, { model: 'bare', messages: [{ role: 'user' as const, content: 'bare' }] });
    await llm.complete(bare);
    // Its fields are getters on its prototype: a shallow copy would have none, so it is parsed as it is.
    class Request {
      get model() {
        return 'from-getter';
      }
      get messages() {
        return [{ role: 'user' as const, content: 'getter' }];
      }
    }
    await llm.complete(new Request() as ChatCompletionRequest);
    expect(upstream.requests.map((request) => request.body)).toMatchObject([
      { model: 'gpt-4.1', max_tokens: 16, temperature: 0, messages: [{ content: 'spread' }] },
      { model: 'bare', messages: [{ content: 'bare' }] },
      { model: 'from-getter', messages: [{ content: 'getter' }] },
    ]);
    await expect(llm.complete(Object.assign(Object.create(null), { model: 'bare' }))).rejects.toMatchObject({ field: 'request.messages' });
  });

  it("lets middleware rewrite the request without touching the caller's object", async () => {
    const { upstream, llm } = await setup();
    llm.use(async function swap(ctx, next) {
      ctx.request.messages.push({ role: 'user', content: 'appended' });
      ctx.request = { ...ctx.request, model: 'cheaper-model' };
      await next();
    });
    const request = ask();
    const before = structuredClone(request);
    await llm.complete(request);
    expect(request).toEqual(before);
    expect(upstream.requests[0]?.body).toMatchObject({ model: 'cheaper-model' });
  });

  it('validates requests the same once enough calls have the request schema compiled', async () => {
    const transport: Transport = {
      name: 'memory',
      origin: 'memory://',
      async send(ctx) {
        ctx.response = { id: 'r', object: 'chat.completion', created: 0, model: ctx.request.model, choices: [] };
      },
    };
    const seen: ChatCompletionRequest[] = [];
    const llm = createPipeline({ transport }).use(async function record(ctx, next) {
      seen.push(ctx.request);
      await next();
    });
    // Past the 100 parses after which the schema is compiled, however many calls other tests made.
    for (let i = 0; i < 101; i++) await llm.complete(ask());
    await expect(llm.complete({ model: 'gpt-4.1', messages: [{ role: 'wizard', content: 'x' }] } as never)).rejects.toMatchObject({
      field: 'request.messages.0.role',
    });
    await expect(llm.complete({ ...ask(), max_tokens: 1.5 })).rejects.toMatchObject({
      field: 'request.max_tokens',
      message: 'request.max_tokens: Invalid input: expected int, received number',
    });
    await expect(llm.complete({ ...ask(), messages: [] })).rejects.toMatchObject({
      message: 'request.messages: Too small: expected array to have >=1 items',
    });
    const request = { ...ask(), provider: { order: ['a'] }, messages: [{ role: 'user' as const, content: 'hi', cache_control: { type: 'x' } }] };
    const before = structuredClone(request);
    await llm.complete(request);
    expect(seen.at(-1)).toEqual(before);
    expect(seen.at(-1)?.messages).not.toBe(request.messages);
    expect(seen.at(-1)?.messages[0]).not.toBe(request.messages[0]);
  });

  it('lets a middleware answer without calling the transport', async () => {
    const { upstream, llm } = await setup();
    llm.use(async function cache(ctx) {
      ctx.response = { id: 'cached', object: 'chat.completion', created: 0, model: ctx.request.model, choices: [] };
    });
    await expect(llm.complete(ask())).resolves.toMatchObject({ id: 'cached' });
    expect(upstream.requests).toHaveLength(0);
  });

  it('wraps an unexpected throw from a middleware in a SluiceError', async () => {
    const { llm } = await setup();
    llm.use(async function buggy() {
      throw new TypeError('oops');
    });
    const error = await llm.complete(ask()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SluiceError);
    expect(error).toMatchObject({ code: 'UNEXPECTED', cause: expect.any(TypeError) });
  });

  it('gives every middleware the same deadline', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_000 });
    const { llm } = await setup();
    const seen: Array<number | undefined> = [];
    const look: Middleware = async (ctx, next) => {
      seen.push(ctx.deadline, ctx.remainingMs());
      await next();
    };
    llm.use(look).use(look);
    await llm.complete(ask(), { timeoutMs: 5_000 });
    expect(seen).toEqual([6_000, 5_000, 6_000, 5_000]);
  });

  it('emits request and response events with the outcome and usage', async () => {
    const { upstream, llm } = await setup();
    const events: Array<[string, unknown]> = [];
    llm.events.on('request', (e) => events.push(['request', e]));
    llm.events.on('response', (e) => events.push(['response', e]));
    await llm.complete(ask(), { tags: { tenant: 'acme' } });
    upstream.enqueue({ kind: 'status', status: 500 });
    await llm.complete(ask()).catch(() => {});
    expect(events.map(([name]) => name)).toEqual(['request', 'response', 'request', 'response']);
    expect(events[0]?.[1]).toMatchObject({ model: 'gpt-4.1', stream: false, tags: { tenant: 'acme' } });
    expect(events[1]?.[1]).toMatchObject({ outcome: 'success', usage: { total_tokens: expect.any(Number) } });
    expect(events[3]?.[1]).toMatchObject({ outcome: 'error', errorCode: 'SERVER_ERROR' });
  });
});

describe('a call made for a parent call', () => {
  it('is aborted when its parent is, with the same reason, and inherits its deadline when that is sooner', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_000 });
    const { llm: outer } = await setup();
    const { llm: inner } = await setup();
    const deadlines: Array<number | undefined> = [];
    inner.use(async function hang(ctx) {
      deadlines.push(ctx.deadline);
      if (deadlines.length < 3) return void (ctx.response = { id: 'quick', object: 'chat.completion', created: 0, model: ctx.request.model, choices: [] });
      await new Promise((_resolve, reject) => onAbort(ctx, () => reject(abortReason(ctx))));
    });
    let child: Promise<unknown> | undefined;
    outer.use(async function hop(ctx) {
      await inner.run(ask(), { parent: ctx, timeoutMs: 1_000 });
      await inner.run(ask(), { parent: ctx, timeoutMs: 60_000 });
      child = inner.run(ask(), { parent: ctx });
      await child;
    });
    const controller = new AbortController();
    const call = outer.complete(ask(), { signal: controller.signal, timeoutMs: 5_000 });
    await vi.waitFor(() => expect(deadlines).toHaveLength(3));
    controller.abort();
    const error = await call.catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'ABORTED' });
    await expect(child).rejects.toBe(error);
    expect(deadlines).toEqual([2_000, 6_000, 6_000]);
  });

  it('is aborted at once when its parent already was, before anything is sent', async () => {
    const { llm: outer } = await setup();
    const { upstream, llm: inner } = await setup();
    const controller = new AbortController();
    outer.use(async function hop(ctx) {
      controller.abort();
      await inner.run(ask(), { parent: ctx });
    });
    await expect(outer.complete(ask(), { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(upstream.requests).toHaveLength(0);
  });

  it('outlives its parent once asked (outliveParent): the parent is aborted, the child still answers', async () => {
    const { llm: outer } = await setup();
    const { llm: inner } = await setup({ upstream: { chunkDelayMs: 20 } });
    let child: CompletionContext | undefined;
    let outlives: boolean[] = [];
    outer.use(async function hop(ctx) {
      child = await inner.run({ ...ask('one two three four'), stream: true }, { parent: ctx });
      outlives = [outliveParent(child), outliveParent(child)];
      ctx.chunks = (async function* none() {})();
    });
    const controller = new AbortController();
    await outer.run({ ...ask(), stream: true }, { signal: controller.signal });
    controller.abort();
    expect(outlives).toEqual([true, false]);
    let text = '';
    for await (const part of (child as CompletionContext).chunks ?? []) text += part.choices[0]?.delta.content ?? '';
    expect(text).toContain('one two three four');
  });

  it('says outliveParent is false for a call made for nobody', async () => {
    const { llm } = await setup();
    expect(outliveParent(await llm.run(ask()))).toBe(false);
  });

  it('follows a parent that no pipeline made through its signal', async () => {
    const { upstream, llm } = await setup();
    const controller = new AbortController();
    llm.use(async function hang(ctx) {
      await new Promise((_resolve, reject) => onAbort(ctx, () => reject(abortReason(ctx))));
    });
    const parent = { signal: controller.signal, remainingMs: () => Infinity } as never;
    const call = llm.complete(ask(), { parent });
    controller.abort(new AbortError('The parent was aborted'));
    await expect(call).rejects.toMatchObject({ code: 'ABORTED' });
    expect(upstream.requests).toHaveLength(0);
  });

  it('ends a streamed child that nobody reads when its parent is aborted, settling it with the abort', async () => {
    const { llm: outer } = await setup();
    const { llm: inner } = await setup({ upstream: { chunkDelayMs: 20 } });
    const settled: Settlement[] = [];
    inner.use(async function watch(ctx, next) {
      await next();
      ctx.onSettled((settlement) => void settled.push(settlement));
    });
    outer.use(async function hop(ctx) {
      ctx.chunks = (await inner.run(ctx.request, { parent: ctx })).chunks;
    });
    const controller = new AbortController();
    const ctx = await outer.run({ ...ask(), stream: true }, { signal: controller.signal });
    controller.abort();
    // Settled as the abort's error, not as a consumer's cancel: the same abort settles a stream being read that way.
    await vi.waitFor(() => expect(settled).toMatchObject([{ outcome: 'error', error: { code: 'ABORTED' } }]));
    await expect(collect(ctx.chunks as AsyncIterable<never>)).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('settles a stream aborted while nobody reads it as the abort, whether or not a chunk was already there', async () => {
    for (const ahead of [true, false]) {
      const { llm } = await setup({ upstream: { chunkDelayMs: 20 } });
      const settled: Settlement[] = [];
      llm.use(async function watch(ctx, next) {
        ctx.onSettled((settlement) => void settled.push(settlement));
        await next();
      });
      const controller = new AbortController();
      const ctx = await llm.run({ ...ask(), stream: true }, { signal: controller.signal });
      // With a chunk read ahead and held for the reader, or aborted at once, before anything was read.
      if (ahead) await readAhead(ctx);
      controller.abort();
      await vi.waitFor(() => expect(settled).toMatchObject([{ outcome: 'error', error: { code: 'ABORTED' } }]));
      await expect(collect(ctx.chunks as AsyncIterable<never>)).rejects.toMatchObject({ code: 'ABORTED' });
    }
  });

  it('names a parent that is not a call', async () => {
    const { llm } = await setup();
    await expect(llm.complete(ask(), { parent: {} as never })).rejects.toMatchObject({ code: 'VALIDATION', field: 'options.parent' });
  });
});

describe('settlement', () => {
  const record = (into: Settlement[], when: 'before' | 'after'): Middleware =>
    async function recorder(ctx, next) {
      if (when === 'before') ctx.onSettled((s) => void into.push(s));
      await next();
      if (when === 'after') ctx.onSettled((s) => void into.push(s));
    };

  it('tells a non-stream listener the outcome and usage, before complete() resolves', async () => {
    const { llm } = await setup();
    const settled: Settlement[] = [];
    llm.use(async function slowListener(ctx, next) {
      await next();
      ctx.onSettled(async (s) => {
        await new Promise((resolve) => setImmediate(resolve));
        settled.push(s);
      });
    });
    await llm.complete(ask());
    expect(settled).toEqual([expect.objectContaining({ outcome: 'success', stream: false, usage: expect.any(Object) })]);
  });

  it('tells a stream listener when the stream is read to its end, with usage and streamed text', async () => {
    const { llm } = await setup({ upstream: { reply: 'alpha beta' } });
    const settled: Settlement[] = [];
    llm.use(record(settled, 'after'));
    const chunks = await collect(llm.stream(ask()));
    expect(settled).toHaveLength(1);
    expect(settled[0]).toMatchObject({ outcome: 'success', stream: true, streamedText: 'alpha beta', chunks: chunks.length });
    expect(settled[0]?.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('reports a cut stream as an error with what was streamed so far', async () => {
    const { upstream, llm } = await setup({ upstream: { reply: 'a b c d e f' } });
    upstream.enqueue({ kind: 'cut', afterChunks: 3 });
    const settled: Settlement[] = [];
    llm.use(record(settled, 'before'));
    await collect(llm.stream(ask())).catch(() => {});
    expect(settled[0]).toMatchObject({ outcome: 'error', error: { code: 'STREAM_CUT' }, usage: undefined, chunks: 3 });
    expect(settled[0]?.streamedText.length).toBeGreaterThan(0);
  });

  it('binds a listener registered after next() to that attempt, one registered before to the final outcome', async () => {
    const { upstream, llm } = await setup();
    upstream.enqueue({ kind: 'status', status: 503 });
    const outer: Settlement[] = [];
    const perAttempt: Settlement[] = [];
    llm.use(record(outer, 'before'));
    llm.use(async function retryOnce(_ctx, next) {
      await next().catch(() => next());
    });
    llm.use(async function inner(ctx, next) {
      try {
        await next();
      } finally {
        ctx.onSettled((s) => void perAttempt.push(s));
      }
    });
    await llm.complete(ask());
    expect(outer.map((s) => s.outcome)).toEqual(['success']);
    expect(perAttempt.map((s) => [s.outcome, s.error?.code])).toEqual([
      ['error', 'SERVER_ERROR'],
      ['success', undefined],
    ]);
    expect(upstream.requests).toHaveLength(2);
  });

  it('reports a throwing event listener as listener-error without failing the call', async () => {
    const { llm } = await setup();
    const errors: Array<SluiceEvents['listener-error']> = [];
    llm.events.on('listener-error', (e) => errors.push(e));
    llm.events.on('request', () => {
      throw new Error('listener bug');
    });
    await expect(llm.complete(ask())).resolves.toBeDefined();
    expect(errors).toEqual([{ event: 'request', error: expect.any(Error) }]);
  });

  it('reports a thrown listener as listener-error without failing the call', async () => {
    const { llm } = await setup();
    const errors: Array<SluiceEvents['listener-error']> = [];
    llm.events.on('listener-error', (e) => errors.push(e));
    llm.use(async function throwing(ctx, next) {
      ctx.onSettled(() => {
        throw new Error('listener bug');
      });
      await next();
    });
    await expect(llm.complete(ask())).resolves.toBeDefined();
    expect(errors).toHaveLength(1);
  });
});

describe('a stream heard by the call and by its attempt', () => {
  // trackCost's shape (a listener registered before next(): the call's final outcome) beside
  // rateLimit's (after next(): this attempt's response). The attempt's stream settles both.
  function heard(llm: Pipeline, options: { readAhead?: boolean; attemptListener?: boolean } = {}) {
    const order: string[] = [];
    const calls: Settlement[] = [];
    const attempts: Settlement[] = [];
    llm.use(function callListener(ctx, next) {
      ctx.onSettled((s) => {
        order.push('call');
        calls.push(s);
      });
      return next();
    });
    llm.use(async function attemptListener(ctx, next) {
      await next();
      if (options.readAhead) await readAhead(ctx);
      if (options.attemptListener !== false) {
        ctx.onSettled((s) => {
          order.push('attempt');
          attempts.push(s);
        });
      }
    });
    return { order, calls, attempts };
  }

  it('settles the attempt, then the call, each once, with every chunk and its text, read to the end', async () => {
    const { llm } = await setup({ upstream: { reply: 'alpha beta gamma' } });
    const { order, calls, attempts } = heard(llm);
    const chunks = await collect(llm.stream(ask()));
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe('alpha beta gamma');
    expect(order).toEqual(['attempt', 'call']);
    for (const settled of [calls[0], attempts[0]]) {
      expect(settled).toMatchObject({ outcome: 'success', stream: true, streamedText: 'alpha beta gamma', chunks: chunks.length, accepted: true });
      expect(settled?.usage?.completion_tokens).toBeGreaterThan(0);
    }
  });

  it('settles both with the cut, and the reader gets the same error', async () => {
    const { upstream, llm } = await setup({ upstream: { reply: 'a b c d e f' } });
    upstream.enqueue({ kind: 'cut', afterChunks: 2 });
    const { order, calls, attempts } = heard(llm);
    const read = await collect(llm.stream(ask())).catch((error: unknown) => error);
    expect(read).toMatchObject({ code: 'STREAM_CUT' });
    expect(order).toEqual(['attempt', 'call']);
    expect(calls[0]).toMatchObject({ outcome: 'error', error: read, chunks: 2 });
    expect(attempts[0]).toMatchObject({ outcome: 'error', error: read, chunks: 2 });
  });

  it('settles both as cancelled when the reader stops early', async () => {
    const { llm } = await setup({ upstream: { reply: 'one two three four five' } });
    const { order, calls, attempts } = heard(llm);
    for await (const _chunk of llm.stream(ask())) break;
    expect(order).toEqual(['attempt', 'call']);
    expect(calls[0]).toMatchObject({ outcome: 'cancelled', chunks: 1 });
    expect(attempts[0]).toMatchObject({ outcome: 'cancelled', chunks: 1 });
  });

  it('settles both with the deadline when nobody reads it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { llm, upstream } = await setup({ upstream: { reply: 'one two three' } });
    upstream.enqueue({ kind: 'delay', chunkDelayMs: 60_000 });
    const { order, calls, attempts } = heard(llm);
    const ctx = await llm.run({ ...ask(), stream: true }, { timeoutMs: 1_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    await vi.waitFor(() => expect(order).toEqual(['attempt', 'call']));
    expect(calls[0]).toMatchObject({ outcome: 'error', error: { code: 'DEADLINE_EXCEEDED' } });
    expect(attempts[0]).toMatchObject({ outcome: 'error', error: { code: 'DEADLINE_EXCEEDED' } });
    await expect(collect(ctx.chunks as AsyncIterable<unknown>)).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
  });

  it("gives the call the text of a chunk read ahead before anyone wanted the attempt's text", async () => {
    // A first chunk with text (the mock upstream's first is the role alone).
    const chunk = (content: string) => ({ id: 'c', object: 'chat.completion.chunk' as const, created: 0, model: 'gpt-4.1', choices: [{ index: 0, delta: { content }, finish_reason: null }] });
    const transport: Transport = {
      name: 'words',
      origin: 'memory:words',
      honoursAbort: true,
      async send(ctx) {
        ctx.chunks = (async function* () {
          yield* ['first ', 'second ', 'third'].map(chunk);
        })();
      },
    };
    const llm = createPipeline({ transport });
    const { order, calls } = heard(llm, { readAhead: true, attemptListener: false });
    const chunks = await collect(llm.stream(ask()));
    expect(order).toEqual(['call']);
    expect(calls[0]).toMatchObject({ outcome: 'success', streamedText: 'first second third', chunks: chunks.length });
    await llm.close();
  });

  it('times the call from its start and the attempt from its send', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    const { llm } = await setup({ upstream: { reply: 'a b' } });
    const { order, calls, attempts } = heard(llm);
    llm.use(async function queued(_ctx, next) {
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      await next();
    });
    const read = collect(llm.stream(ask()));
    await vi.advanceTimersByTimeAsync(5_000);
    await read;
    expect(order).toEqual(['attempt', 'call']);
    expect(calls[0]?.durationMs).toBeGreaterThanOrEqual(5_000);
    expect(attempts[0]?.durationMs).toBeLessThan(5_000);
  });
});

describe('pipeline.batch', () => {
  it('keeps results in input order with each failure next to its request', async () => {
    const { upstream, llm } = await setup({ upstream: { reply: (body) => `re: ${String(body.messages[0]?.content)}` } });
    upstream.enqueue({ kind: 'ok' }, { kind: 'status', status: 500 }, { kind: 'ok' });
    const requests = ['a', 'b', 'c', 'd'].map((c) => ask(c));
    const results = await llm.batch(requests, { concurrency: 1 });
    expect(results.map((r) => r.ok)).toEqual([true, false, true, true]);
    expect(results[1]).toMatchObject({ ok: false, index: 1, error: { code: 'SERVER_ERROR' } });
    expect(results[3]).toMatchObject({ ok: true, value: { choices: [{ message: { content: 're: d' } }] } });
  });

  it('never has more than `concurrency` requests in flight and reports progress', async () => {
    const { llm } = await setup();
    let inFlight = 0;
    let peak = 0;
    llm.use(async function gauge(_ctx, next) {
      peak = Math.max(peak, ++inFlight);
      try {
        await next();
      } finally {
        inFlight--;
      }
    });
    const progress: Array<SluiceEvents['batch-progress']> = [];
    llm.events.on('batch-progress', (e) => progress.push(e));
    const results = await llm.batch(Array.from({ length: 100 }, (_, i) => ask(`q${i}`)), { concurrency: 8 });
    expect(results.every((r) => r.ok)).toBe(true);
    expect(peak).toBe(8);
    expect(progress.at(-1)).toEqual({ done: 100, failed: 0, total: 100 });
  });

  it('fails an invalid request in place instead of rejecting the batch', async () => {
    const { llm } = await setup();
    const results = await llm.batch([ask(), { model: 'x' } as never]);
    expect(results[1]).toMatchObject({ ok: false, error: { code: 'VALIDATION', field: 'request.messages' } });
  });

  it('marks requests not started when the signal aborts as ABORTED, without sending them', async () => {
    const { upstream, llm } = await setup();
    const controller = new AbortController();
    llm.events.on('batch-progress', (e) => {
      if (e.done === 2) controller.abort();
    });
    const results = await llm.batch(Array.from({ length: 5 }, () => ask()), { concurrency: 1, signal: controller.signal });
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'ok', 'ABORTED', 'ABORTED', 'ABORTED']);
    expect(upstream.requests).toHaveLength(2);
  });

  it('rejects bad options, naming the field', async () => {
    const { llm } = await setup();
    await expect(llm.batch([ask()], { concurrency: 0 })).rejects.toMatchObject({ field: 'options.concurrency' });
  });
});

describe('pipeline.stream', () => {
  it('sends nothing until iteration starts', async () => {
    const { upstream, llm } = await setup();
    const stream = llm.stream(ask());
    expect(upstream.requests).toHaveLength(0);
    await collect(stream);
    expect(upstream.requests).toHaveLength(1);
  });

  it('cancels through an abort signal mid-stream', async () => {
    const { upstream, llm } = await setup({ upstream: { reply: 'a b c d e f' } });
    upstream.enqueue({ kind: 'delay', chunkDelayMs: 60_000 });
    const controller = new AbortController();
    const reading = (async () => {
      for await (const _chunk of llm.stream(ask(), { signal: controller.signal })) controller.abort();
    })();
    await expect(reading).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it("answers next()s asked at once on run()'s ctx.chunks in order, on either transport, watched or not", async () => {
    const { fetchTransport } = await import('./fetch-transport.js');
    for (const transport of ['undici', 'fetch'] as const) {
      for (const watched of [false, true]) {
        const { upstream, llm: viaUndici } = await setup({ upstream: { reply: 'a b c', chunkDelayMs: 1 } });
        const llm = transport === 'undici' ? viaUndici : createPipeline({ transport: fetchTransport({ baseUrl: upstream.url, apiKey }) });
        if (watched) llm.events.on('response', () => {});
        const expected = await collect(llm.stream(ask()));
        const ctx = await llm.run({ ...ask(), stream: true });
        const reader = (ctx.chunks as AsyncIterable<unknown>)[Symbol.asyncIterator]();
        // Before, two reads of the body at once: the first never settled, and the call hung.
        const results = await Promise.all(Array.from({ length: expected.length + 3 }, () => reader.next()));
        const deltas = (chunks: unknown[]) => chunks.map((chunk) => (chunk as { choices: Array<{ delta: unknown }> }).choices[0]?.delta);
        expect(deltas(results.filter((result) => !result.done).map((result) => result.value))).toEqual(deltas(expected));
        expect(results.slice(expected.length).every((result) => result.done)).toBe(true);
        if (llm !== viaUndici) await llm.close();
      }
    }
  });

  it('runs one call for next()s asked at once, and answers them in order, then done', async () => {
    for (const watched of [false, true]) {
      const { upstream, llm } = await setup({ upstream: { reply: 'a b c' } });
      const outcomes: string[] = [];
      // Watched, the caller reads through the settling wrapper; unwatched, straight from the transport's reader.
      if (watched) llm.events.on('response', (event) => outcomes.push(event.outcome));
      const reader = llm.stream(ask())[Symbol.asyncIterator]();
      const results = await Promise.all(Array.from({ length: 9 }, () => reader.next()));
      const expected = await collect(llm.stream(ask()));
      // Before, each next() made while the call started sent a request of its own and took its first chunk.
      const deltas = (chunks: unknown[]) => chunks.map((chunk) => (chunk as { choices: Array<{ delta: unknown }> }).choices[0]?.delta);
      expect(deltas(results.filter((result) => !result.done).map((result) => result.value))).toEqual(deltas(expected));
      expect(results.slice(expected.length).every((result) => result.done)).toBe(true);
      await expect(reader.next()).resolves.toEqual({ done: true, value: undefined });
      // Asked at once after the first chunk: queued behind the read under way.
      const later = llm.stream(ask())[Symbol.asyncIterator]();
      const head = await later.next();
      const rest = await Promise.all(Array.from({ length: 8 }, () => later.next()));
      expect(deltas([head, ...rest].filter((result) => !result.done).map((result) => result.value))).toEqual(deltas(expected));
      expect(upstream.requests).toHaveLength(3);
      if (watched) expect(outcomes).toEqual(['success', 'success', 'success']);
    }
  });

  it('queues next()s asked while a chunk is being read behind that read', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    for (const watched of [false, true]) {
      const { upstream, llm } = await setup({ upstream: { reply: 'a b c d', chunkDelayMs: 1_000 } });
      if (watched) llm.events.on('response', () => {});
      const reader = llm.stream(ask())[Symbol.asyncIterator]();
      const head = reader.next();
      await upstream.waitForRequests(1);
      await vi.advanceTimersByTimeAsync(1_000);
      await head;
      // Each chunk arrives in a read of its own: the first of these reads, the rest wait behind it.
      const rest = Promise.all(Array.from({ length: 8 }, () => reader.next()));
      await vi.advanceTimersByTimeAsync(10_000);
      const results = [await head, ...(await rest)];
      const text = results.map((result) => (result.done ? '|' : (result.value.choices[0]?.delta.content ?? ''))).join('');
      expect(text).toBe('a b c d|||');
      expect(upstream.requests).toHaveLength(1);
    }
  });

  it("passes next()s asked at once straight through to a stream that says it answers them in order, and chains them otherwise", async () => {
    const chunk = (content: string) => ({ id: 'c', object: 'chat.completion.chunk' as const, created: 0, model: 'gpt-4.1', choices: [{ index: 0, delta: { content }, finish_reason: null }] });
    // A middleware's own stream that answers each next() a turn later, in order, and counts the reads under way at once.
    const ownStream = (says: 'symbol' | 'field' | 'nothing') => {
      const words = ['a', 'b', 'c', 'd', 'e'];
      let index = 0;
      let underWay = 0;
      const stream = {
        most: 0,
        [Symbol.asyncIterator]() {
          return this;
        },
        next(): Promise<IteratorResult<ReturnType<typeof chunk>, undefined>> {
          const word = words[index++];
          stream.most = Math.max(stream.most, ++underWay);
          return new Promise((resolve) =>
            setImmediate(() => {
              underWay--;
              resolve(word === undefined ? { done: true, value: undefined } : { done: false, value: chunk(word) });
            }),
          );
        },
        // Never under way as far as it is concerned: it answers reads in order itself.
        ...(says === 'symbol' ? { [streamReading]: false } : says === 'field' ? { reading: false } : {}),
      };
      return stream;
    };
    for (const says of ['symbol', 'field', 'nothing'] as const) {
      const stream = ownStream(says);
      const neverSent: Transport = { name: 'never', origin: 'memory:never', honoursAbort: true, send: () => Promise.reject(new Error('not sent')) };
      const llm = createPipeline({ transport: neverSent }).use(async (ctx) => {
        ctx.chunks = stream;
      });
      const reader = llm.stream(ask())[Symbol.asyncIterator]();
      const head = await reader.next();
      const rest = await Promise.all(Array.from({ length: 6 }, () => reader.next()));
      const text = [head, ...rest].map((result) => (result.done ? '|' : (result.value.choices[0]?.delta.content ?? ''))).join('');
      expect(text).toBe('abcde||');
      // Straight through only on the symbol's word: a field of the same name, meaning anything, is not taken at it.
      expect(stream.most).toBe(says === 'symbol' ? 6 : 1);
      await llm.close();
    }
    // Core's own streams say so: the transport's reader handed over unwatched, and the settling wrapper when watched.
    for (const watched of [false, true]) {
      const { llm } = await setup({ upstream: { reply: 'a b' } });
      if (watched) llm.events.on('response', () => {});
      const ctx = await llm.run({ ...ask(), stream: true });
      expect((ctx.chunks as unknown as Record<symbol, unknown>)[streamReading]).toBe(false);
      await collect(ctx.chunks as AsyncIterable<unknown>);
    }
  });

  it('ends the iterator after a failed start: the first next() rejects, those asked with it are done', async () => {
    const { upstream, llm } = await setup();
    upstream.enqueue({ kind: 'status', status: 400 });
    const reader = llm.stream(ask())[Symbol.asyncIterator]();
    const results = await Promise.allSettled([reader.next(), reader.next(), reader.next()]);
    expect(results[0]).toMatchObject({ status: 'rejected', reason: { code: 'BAD_REQUEST' } });
    expect(results.slice(1)).toEqual([
      { status: 'fulfilled', value: { done: true, value: undefined } },
      { status: 'fulfilled', value: { done: true, value: undefined } },
    ]);
    expect(upstream.requests).toHaveLength(1);
  });

  it('cancels a stream its caller dropped half-read once the collector finds it, releasing its call', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    for (const watched of [false, true]) {
      const { upstream, llm } = await setup({ upstream: { reply: 'a b c d e f' } });
      const ended: string[] = [];
      if (watched) llm.events.on('response', (event) => ended.push(`${event.outcome} ${event.errorCode}`));
      // The rest of the stream would take a minute (the mock's own timers, cancelled when the socket goes).
      upstream.enqueue({ kind: 'delay', chunkDelayMs: 60_000 });
      const peek = async () => {
        const reader = llm.stream(ask())[Symbol.asyncIterator]();
        return (await reader.next()).done;
      };
      await expect(peek()).resolves.toBe(false);
      // Nothing refers to the reader any more; the call behind it is still in flight, so close()
      // waits for it (for up to a minute) unless it is let go.
      let closed = false;
      const closing = llm.close({ graceMs: 60_000 }).then(() => (closed = true));
      for (let round = 0; round < 20 && !closed; round++) {
        gc();
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(closed).toBe(true);
      await closing;
      // As if its caller had left its loop: cancelled, not failed.
      if (watched) expect(ended).toEqual(['cancelled ABORTED']);
    }
  });

  it('lets go of a stream read to its end at the next collection, and of its call with it', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // The transport's own reader, nothing watching; the pipeline watching; a middleware's own stream, which says nothing of its end.
    const { openAICompatible } = await import('./open-ai-compatible.js');
    for (const kind of ['unwatched', 'watched', 'own', 'own, failing'] as const) {
      const { upstream, llm: harnessed } = await setup({ upstream: { reply: 'a b c' } });
      // The harness records every event: a pipeline of its own, so that nothing watches the stream unless asked.
      const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey }) });
      if (kind === 'watched') llm.events.on('response', () => {});
      let call: WeakRef<object> | undefined;
      llm.use(async function keep(ctx, next) {
        call = new WeakRef(ctx);
        await next();
        const source = ctx.chunks;
        if (!kind.startsWith('own') || !source) return;
        // An iterator of its own that holds its call, as a middleware's stream may; one fails after its first chunk.
        const reader = source[Symbol.asyncIterator]();
        let reads = 0;
        const own = {
          call: ctx,
          // Failing, it lets its source go first, as a middleware's stream should.
          next: async () => {
            if (kind !== 'own, failing' || reads++ === 0) return reader.next();
            await reader.return?.();
            throw new Error('cut by the middleware');
          },
          return: () => reader.return?.() ?? Promise.resolve({ done: true as const, value: undefined }),
          [Symbol.asyncIterator]: () => own,
        };
        ctx.chunks = own;
      });
      const read = async () => {
        let chunks = 0;
        const iterator = llm.stream(ask())[Symbol.asyncIterator]();
        try {
          // Read by hand: a for-await loop would call return() on a throw, which takes the registration out itself.
          while (!(await iterator.next()).done) chunks++;
        } catch (error) {
          if (kind !== 'own, failing') throw error;
        }
        return chunks;
      };
      expect(await read()).toBeGreaterThan(0);
      await new Promise((resolve) => setImmediate(resolve));
      gc();
      // In the same turn as the collection, before any callback of the collector's safety net for
      // dropped streams can run: a registration kept past the stream's end held the call until then.
      expect(call?.deref(), kind).toBeUndefined();
      await llm.close();
      await harnessed.close();
    }
  });

  it('lets go of a stream returned while it was starting, reading nothing of it', async () => {
    const { upstream, llm } = await setup({ upstream: { reply: 'a b c d e f' } });
    const outcomes: string[] = [];
    llm.events.on('response', (event) => outcomes.push(event.outcome));
    const reader = llm.stream(ask())[Symbol.asyncIterator]();
    const first = reader.next();
    await expect(reader.return?.()).resolves.toEqual({ done: true, value: undefined });
    await expect(first).resolves.toEqual({ done: true, value: undefined });
    await vi.waitFor(() => expect(outcomes).toEqual(['cancelled']));
    expect(upstream.requests).toHaveLength(1);
  });
});
