import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { breaker } from '@sluice/breaker';
import { type ChatCompletion, type ChatCompletionChunk, createPipeline, type Middleware, SluiceError, type Usage } from '@sluice/core';
import { retry } from '@sluice/retry';
import { type MockUpstream, mockUpstream } from '@sluice/testing';
import { APICallError, generateText, jsonSchema, streamText, tool, wrapLanguageModel } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { afterEach, describe, expect, it } from 'vitest';
import { languageModels } from './language-model-transport.js';
import { sluiceMiddleware } from './sluice-middleware.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((item) => item.close()));
});

/** A real provider over HTTP to the mock, wrapped with a pipeline; `seen` is the usage each call settled with. */
async function setup(options: { baseUrl?: string; failures?: number } = {}) {
  const upstream: MockUpstream = await mockUpstream({ reply: 'Hi there, friend' });
  const seen: Array<Usage | undefined> = [];
  const llm = createPipeline({ transport: languageModels() })
    .use(async function usage(ctx, next) {
      ctx.onSettled((settled) => {
        seen.push(settled.usage);
      });
      await next();
    })
    .use(retry({ attempts: 3, backoff: () => 0 }))
    .use(breaker({ failures: options.failures ?? 10, openMs: 30_000 }));
  open.push(llm, upstream);
  const provider = createOpenAICompatible({ name: 'relay', baseURL: options.baseUrl ?? upstream.url, apiKey: 'sk-model', includeUsage: true });
  const model = wrapLanguageModel({ model: provider.chatModel('gpt-4.1'), middleware: sluiceMiddleware(llm) });
  return { upstream, model, seen, llm };
}

describe('sluiceMiddleware', () => {
  it('generates text, with the model usage in the pipeline exactly', async () => {
    const { upstream, model, seen } = await setup();
    upstream.enqueue({ kind: 'ok', reply: { content: 'Hi there, friend', usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 } } });
    const result = await generateText({ model, prompt: 'Hello', maxRetries: 0 });
    expect(result.text).toBe('Hi there, friend');
    expect(seen).toEqual([expect.objectContaining({ prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 })]);
    expect(upstream.requests).toHaveLength(1);
  });

  it('streams text, with the usage from the finish part', async () => {
    const { upstream, model, seen } = await setup();
    upstream.enqueue({ kind: 'ok', reply: { content: 'Hi there, friend', usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } } });
    const result = streamText({ model, prompt: 'Hello', maxRetries: 0 });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    expect(text).toBe('Hi there, friend');
    expect((await result.usage).outputTokens).toBe(3);
    expect(seen).toEqual([expect.objectContaining({ prompt_tokens: 5, completion_tokens: 3 })]);
  });

  it('returns tool calls, generated and streamed', async () => {
    const { upstream, model } = await setup();
    const reply = { kind: 'ok' as const, reply: { toolCalls: [{ id: 'call_1', name: 'weather', arguments: { city: 'Paris' } }] } };
    upstream.enqueue(reply, reply);
    const weather = tool({ inputSchema: jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } } }) });
    const generated = await generateText({ model, prompt: 'Weather?', tools: { weather }, maxRetries: 0 });
    expect(generated.toolCalls).toMatchObject([{ toolName: 'weather', input: { city: 'Paris' } }]);
    const streamed = streamText({ model, prompt: 'Weather?', tools: { weather }, maxRetries: 0 });
    expect(await streamed.toolCalls).toMatchObject([{ toolName: 'weather', input: { city: 'Paris' } }]);
  });

  it('retries a 503: one model request per attempt', async () => {
    const { upstream, model } = await setup();
    upstream.enqueue({ kind: 'status', status: 503 });
    const result = await generateText({ model, prompt: 'Hello', maxRetries: 0 });
    expect(result.text).toBe('Hi there, friend');
    expect(upstream.requests).toHaveLength(2);
  });

  it('surfaces exhausted retries as the model APICallError, not retryable, so the AI SDK adds none', async () => {
    const { upstream, model } = await setup();
    upstream.enqueue(...Array.from({ length: 3 }, () => ({ kind: 'status' as const, status: 503 })));
    // maxRetries left at the AI SDK default (2): it must not retry on top.
    const call = generateText({ model, prompt: 'Hello' });
    await expect(call).rejects.toSatisfy((error) => APICallError.isInstance(error));
    await expect(call).rejects.toMatchObject({ statusCode: 503, isRetryable: false });
    expect(upstream.requests).toHaveLength(3);
  });

  it('surfaces a 400 as the model APICallError, sent once', async () => {
    const { upstream, model } = await setup();
    upstream.enqueue({ kind: 'status', status: 400, message: 'bad input' });
    const call = generateText({ model, prompt: 'Hello', maxRetries: 0 });
    await expect(call).rejects.toMatchObject({ statusCode: 400, isRetryable: false });
    expect(upstream.requests).toHaveLength(1);
  });

  it('opens the circuit after failures and fails fast with CIRCUIT_OPEN, sending nothing', async () => {
    const { upstream, model } = await setup({ failures: 3 });
    upstream.enqueue(...Array.from({ length: 3 }, () => ({ kind: 'status' as const, status: 500 })));
    await expect(generateText({ model, prompt: 'Hello', maxRetries: 0 })).rejects.toMatchObject({ statusCode: 500 });
    const open = generateText({ model, prompt: 'Hello', maxRetries: 0 });
    await expect(open).rejects.toBeInstanceOf(SluiceError);
    await expect(open).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    expect(upstream.requests).toHaveLength(3);
  });

  it('aborts mid-stream: the model request socket closes', async () => {
    let closed!: () => void;
    const socketClosed = new Promise<void>((resolve) => (closed = resolve));
    const server = createServer((req, res) => {
      req.socket.once('close', () => closed());
      req.resume();
      req.once('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const content of ['Hello', ' world']) {
          res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4.1', choices: [{ index: 0, delta: { role: 'assistant', content }, finish_reason: null }] })}\n\n`);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    open.push({ close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) });
    const { model } = await setup({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1` });
    const controller = new AbortController();
    const result = streamText({ model, prompt: 'Hello', abortSignal: controller.signal, maxRetries: 0, onError: () => {} });
    let text = '';
    for await (const delta of result.textStream) {
      text += delta;
      if (text === 'Hello world') controller.abort();
    }
    expect(text).toBe('Hello world');
    await socketClosed;
  });

  describe('an answer no model call produced (a cache hit, a middleware answering itself)', () => {
    /** A middleware that answers the second identical call itself, from what the first got, as `@sluice/cache` does. */
    function replaying(): Middleware {
      const seen = new Map<string, { response?: ChatCompletion; chunks?: ChatCompletionChunk[] }>();
      return async function replay(ctx, next) {
        const key = JSON.stringify(ctx.request.messages) + String(ctx.stream);
        const stored = seen.get(key);
        if (stored?.response) return void (ctx.response = JSON.parse(JSON.stringify(stored.response)) as ChatCompletion);
        if (stored?.chunks) {
          const copies = JSON.parse(JSON.stringify(stored.chunks)) as ChatCompletionChunk[];
          ctx.chunks = (async function* () {
            yield* copies;
          })();
          return;
        }
        await next();
        if (!ctx.stream) return void seen.set(key, { response: ctx.response as ChatCompletion });
        const source = ctx.chunks as AsyncIterable<ChatCompletionChunk>;
        const kept: ChatCompletionChunk[] = [];
        ctx.chunks = (async function* () {
          for await (const chunk of source) {
            kept.push(JSON.parse(JSON.stringify(chunk)) as ChatCompletionChunk);
            yield chunk;
          }
          seen.set(key, { chunks: kept });
        })();
      };
    }

    async function replaySetup() {
      const upstream = await mockUpstream({ reply: 'Hi there, friend' });
      const llm = createPipeline({ transport: languageModels() }).use(replaying());
      open.push(llm, upstream);
      const provider = createOpenAICompatible({ name: 'relay', baseURL: upstream.url, apiKey: 'sk-model', includeUsage: true });
      return { upstream, model: wrapLanguageModel({ model: provider.chatModel('gpt-4.1'), middleware: sluiceMiddleware(llm) }) };
    }

    it('hands a replayed completion to generateText as the result it stands for', async () => {
      const { upstream, model } = await replaySetup();
      const weather = tool({ inputSchema: jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } } }) });
      upstream.enqueue({ kind: 'ok', reply: { toolCalls: [{ id: 'call_1', name: 'weather', arguments: { city: 'Paris' } }] } });
      const first = await generateText({ model, prompt: 'Weather?', tools: { weather }, maxRetries: 0 });
      // Before, the second threw a TypeError: no model call, so no result to hand back.
      const again = await generateText({ model, prompt: 'Weather?', tools: { weather }, maxRetries: 0 });
      expect(again.toolCalls).toMatchObject([{ toolName: 'weather', toolCallId: 'call_1', input: { city: 'Paris' } }]);
      expect(again.finishReason).toBe(first.finishReason);
      expect(again.usage.inputTokens).toBe(first.usage.inputTokens);
      const text = await generateText({ model, prompt: 'Hello', maxRetries: 0 });
      expect((await generateText({ model, prompt: 'Hello', maxRetries: 0 })).text).toBe(text.text);
      expect(upstream.requests).toHaveLength(2);
    });

    it('hands a replayed stream to streamText as the parts it stands for, text and tool calls', async () => {
      const { upstream, model } = await replaySetup();
      const read = async () => {
        const result = streamText({ model, prompt: 'Hello', maxRetries: 0 });
        let text = '';
        for await (const delta of result.textStream) text += delta;
        return { text, usage: await result.usage, finishReason: await result.finishReason };
      };
      const first = await read();
      // Before, the second streamed no part at all and ended with "No output generated".
      const again = await read();
      expect(again).toEqual({ ...first, usage: expect.objectContaining({ inputTokens: first.usage.inputTokens, outputTokens: first.usage.outputTokens }) });
      expect(again.text).toBe('Hi there, friend');
      const weather = tool({ inputSchema: jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } } }) });
      upstream.enqueue({ kind: 'ok', reply: { toolCalls: [{ id: 'call_2', name: 'weather', arguments: { city: 'Oslo' } }] } });
      const calls = async () => streamText({ model, prompt: 'Weather?', tools: { weather }, maxRetries: 0 }).toolCalls;
      await calls();
      expect(await calls()).toMatchObject([{ toolName: 'weather', toolCallId: 'call_2', input: { city: 'Oslo' } }]);
      expect(upstream.requests).toHaveLength(2);
    });
  });

  describe('a model that breaks its contract', () => {
    /** A pipeline that would retry and open a circuit on upstream faults, around a model of our own. */
    const wrapped = (model: MockLanguageModelV3, failures = 1) => {
      const llm = createPipeline({ transport: languageModels() })
        .use(retry({ attempts: 3, backoff: () => 0 }))
        .use(breaker({ failures, openMs: 30_000 }));
      open.push(llm);
      return wrapLanguageModel({ model, middleware: sluiceMiddleware(llm) });
    };

    it("ends at the caller's abort when doGenerate never settles and does not hear abortSignal", async () => {
      const model = new MockLanguageModelV3({ doGenerate: () => new Promise<never>(() => {}) });
      const controller = new AbortController();
      const settled = generateText({ model: wrapped(model), prompt: 'Hello', maxRetries: 0, abortSignal: controller.signal }).then(
        () => 'answered',
        (error: { code?: string }) => error.code,
      );
      await new Promise((resolve) => setImmediate(resolve));
      expect(model.doGenerateCalls).toHaveLength(1);
      controller.abort();
      // Before, the call waited on the model for good.
      expect(await settled).toBe('ABORTED');
    });

    it("ends a stream at the caller's abort when the model's stream never sends its next part and does not hear abortSignal", async () => {
      let cancelled = 0;
      const parts = new ReadableStream({
        start(controller) {
          controller.enqueue({ type: 'stream-start', warnings: [] });
          controller.enqueue({ type: 'text-start', id: 't' });
          controller.enqueue({ type: 'text-delta', id: 't', delta: 'Hi' });
        },
        pull: () => new Promise<void>(() => {}),
        cancel: () => void cancelled++,
      });
      const model = new MockLanguageModelV3({ doStream: async () => ({ stream: parts }) as never });
      const controller = new AbortController();
      const result = streamText({ model: wrapped(model), prompt: 'Hello', maxRetries: 0, abortSignal: controller.signal, onError: () => {} });
      const seen: string[] = [];
      const read = (async () => {
        for await (const part of result.fullStream) {
          seen.push(part.type);
          if (part.type === 'text-delta') controller.abort();
        }
        return 'ended';
      })().catch((error: { code?: string }) => error.code);
      // Before, the stream waited on the model's next part for good.
      // The AI SDK ends a stream its caller aborted with an abort part.
      expect(await read).toBe('ended');
      expect(seen.slice(-2)).toEqual(['text-delta', 'abort']);
      expect(cancelled).toBe(1);
    });

    it("keeps a stream's call in flight until it ends, so close() waits for it, then aborts it and cancels the model's stream", async () => {
      let cancelled = 0;
      const model = (endless: boolean) =>
        new MockLanguageModelV3({
          doStream: async () =>
            ({
              stream: new ReadableStream({
                start(controller) {
                  controller.enqueue({ type: 'stream-start', warnings: [] });
                  controller.enqueue({ type: 'text-start', id: 't' });
                  controller.enqueue({ type: 'text-delta', id: 't', delta: 'Hi' });
                  if (!endless) {
                    controller.enqueue({ type: 'text-end', id: 't' });
                    controller.enqueue({ type: 'finish', finishReason: 'stop', usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 } });
                    controller.close();
                  }
                },
                cancel: () => void cancelled++,
              }),
            }) as never,
        });
      const prompt = [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'Hello' }] }];
      // Nothing watches these pipelines' calls: each stream is handed over as the transport made it, or as retry's
      // read of its first chunk wraps it.
      for (const [endless, withRetry] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        const llm = createPipeline({ transport: languageModels() });
        if (withRetry) llm.use(retry({ attempts: 2, backoff: () => 0 }));
        open.push(llm);
        const { stream } = await wrapLanguageModel({ model: model(endless), middleware: sluiceMiddleware(llm) }).doStream({ prompt });
        const reader = stream.getReader();
        const types = [(await reader.read()).value?.type];
        const before = cancelled;
        if (!endless) {
          // Closed while the stream is read: close() waits for it (within its grace), and nothing is cancelled.
          const closing = llm.close({ graceMs: 60_000 });
          for (let part = await reader.read(); !part.done; part = await reader.read()) types.push(part.value.type);
          await closing;
          expect(types).toContain('finish');
          expect(cancelled).toBe(before);
          continue;
        }
        // Half-read when its grace is over: before, close() had nothing to wait for or abort, and the model's stream ran on.
        await llm.close({ graceMs: 0 });
        expect(cancelled).toBe(before + 1);
        let last = await reader.read();
        while (!last.done && last.value.type !== 'error') last = await reader.read();
        expect(last.value).toMatchObject({ type: 'error', error: { code: 'CLOSED' } });
      }
      // Cancelled before its first read: the model's stream is cancelled, and the call ends with it, so close()
      // has nothing to wait for (it would wait out the grace, past this test's timeout, for a call left in flight).
      const llm = createPipeline({ transport: languageModels() });
      open.push(llm);
      const { stream } = await wrapLanguageModel({ model: model(true), middleware: sluiceMiddleware(llm) }).doStream({ prompt });
      await stream.cancel();
      expect(cancelled).toBe(3);
      await llm.close({ graceMs: 60_000 });
    });

    it('gives back what doGenerate threw, once: no retry, no open circuit, as the AI SDK does for a non-APICallError', async () => {
      const thrown = new TypeError('provider bug');
      const model = new MockLanguageModelV3({ doGenerate: async () => Promise.reject(thrown) });
      const first = generateText({ model: wrapped(model), prompt: 'Hello', maxRetries: 0 });
      await expect(first).rejects.toBe(thrown);
      expect(model.doGenerateCalls).toHaveLength(1);
      const stringy = new MockLanguageModelV3({ doGenerate: () => { throw 'boom'; } });
      await expect(generateText({ model: wrapped(stringy), prompt: 'Hello', maxRetries: 0 })).rejects.toBe('boom');
      // The breaker (failures: 1) did not count the bug as an outage.
      const llmModel = wrapped(model);
      await expect(generateText({ model: llmModel, prompt: 'Hello', maxRetries: 0 })).rejects.toBe(thrown);
      await expect(generateText({ model: llmModel, prompt: 'Hello', maxRetries: 0 })).rejects.toBe(thrown);
    });

    it('names what doGenerate or doStream returned instead of a result', async () => {
      const empty = new MockLanguageModelV3({ doGenerate: async () => undefined as never });
      await expect(generateText({ model: wrapped(empty), prompt: 'Hello', maxRetries: 0 })).rejects.toMatchObject({
        code: 'MALFORMED_RESPONSE',
        message: "the model's doGenerate returned undefined, not a result with a content array",
      });
      const noContent = new MockLanguageModelV3({ doGenerate: async () => ({ content: null }) as never });
      await expect(generateText({ model: wrapped(noContent), prompt: 'Hello', maxRetries: 0 })).rejects.toMatchObject({
        message: "the model's doGenerate returned an object whose content is null, not a result with a content array",
      });
      const errors: unknown[] = [];
      const noStream = new MockLanguageModelV3({ doStream: async () => ({}) as never });
      const result = streamText({ model: wrapped(noStream), prompt: 'Hello', maxRetries: 0, onError: ({ error }) => void errors.push(error) });
      for await (const _ of result.textStream);
      expect(errors).toEqual([expect.objectContaining({ code: 'MALFORMED_RESPONSE', message: expect.stringContaining('whose stream is undefined') })]);
      expect(noStream.doStreamCalls).toHaveLength(1);
    });

    it('still retries an error part before the first chunk: the providers turn an SSE error event into one', async () => {
      let calls = 0;
      const model = new MockLanguageModelV3({
        doStream: async () => {
          calls++;
          const parts: unknown[] = calls === 1
            ? [{ type: 'error', error: 'The server had an error while processing your request.' }]
            : [
                { type: 'text-start', id: '1' },
                { type: 'text-delta', id: '1', delta: 'Hi' },
                { type: 'text-end', id: '1' },
                { type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage: { inputTokens: { total: 1 }, outputTokens: { total: 1 } } },
              ];
          return { stream: new ReadableStream({ start: (controller) => { for (const part of parts) controller.enqueue(part); controller.close(); } }) } as never;
        },
      });
      const result = streamText({ model: wrapped(model, 10), prompt: 'Hello', maxRetries: 0 });
      let text = '';
      for await (const delta of result.textStream) text += delta;
      expect(text).toBe('Hi');
      expect(calls).toBe(2);
    });
  });
});
