import { describe, expect, it } from 'vitest';
import type { Middleware } from './context.js';
import { createPipeline } from './pipeline.js';
import { openAICompatible } from './open-ai-compatible.js';
import { rawJson } from './raw-json.js';
import { chunk, rawUpstream, sse } from './test-raw-upstream.js';
import { readAhead, transportStream, type TransportStream } from './transport-stream.js';

const request = { model: 'm', messages: [{ role: 'user' as const, content: 'hi' }], stream: true as const };
/** A chunk the check leaves as it is, with the upstream's own spacing; and one it fills in (no finish_reason). */
const spaced = 'data: {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": "a"}, "logprobs": null, "finish_reason": null}]}\n\n';
const patched = chunk({ index: 0, delta: { content: 'b' } });

/** A pipeline whose one middleware reads the call's stream through `transportStream`, keeping what `lastJson()` said per chunk. */
async function reading(inside: Middleware[] = []) {
  const upstream = await rawUpstream((_req, res) => sse(res, [spaced, patched, 'data: [DONE]\n\n']));
  const texts: Array<string | undefined> = [];
  const found: boolean[] = [];
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: null }) }).use(async function keep(ctx, next) {
    await next();
    const stream = transportStream(ctx);
    found.push(stream !== undefined);
    if (!stream) return;
    ctx.chunks = (async function* kept() {
      for await (const part of stream) {
        texts.push(stream.lastJson());
        yield part;
      }
    })();
  });
  for (const middleware of inside) llm.use(middleware);
  return { llm, texts, found };
}

describe('transportStream', () => {
  it("gives each chunk's data text as the upstream sent it, without keepRawJson, and nothing for a chunk the check changed", async () => {
    const { llm, texts, found } = await reading();
    const parts = [];
    for await (const part of llm.stream(request)) parts.push(part);
    expect(found).toEqual([true]);
    expect(texts).toEqual([spaced.slice('data: '.length, -2), undefined]);
    expect(JSON.parse(texts[0] as string)).toEqual(parts[0]);
    // Nothing is put on the chunks themselves.
    expect(parts.map((part) => rawJson(part))).toEqual([undefined, undefined]);
    await llm.close({ graceMs: 0 });
  });

  it('is undefined once a middleware inside put its own stream in ctx.chunks', async () => {
    const { llm, texts, found } = await reading([
      async function wrap(ctx, next) {
        await next();
        const chunks = ctx.chunks;
        if (chunks) ctx.chunks = (async function* same() { yield* chunks; })();
      },
    ]);
    for await (const _part of llm.stream(request));
    expect(found).toEqual([false]);
    expect(texts).toEqual([]);
    await llm.close({ graceMs: 0 });
  });

  it('is undefined once a middleware inside read from the stream', async () => {
    const { llm, found } = await reading([
      async function peek(ctx, next) {
        await next();
        await ctx.chunks?.[Symbol.asyncIterator]().next();
      },
    ]);
    for await (const _part of llm.stream(request));
    expect(found).toEqual([false]);
    await llm.close({ graceMs: 0 });
  });

  it('tells an observer of every chunk before the reader gets it, then of the end once the stream settled', async () => {
    const upstream = await rawUpstream((_req, res) => sse(res, [spaced, patched, 'data: [DONE]\n\n']));
    const heard: string[] = [];
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: null }) }).use(async function watch(ctx, next) {
      await next();
      // Bound to this response: settled when its stream is.
      ctx.onSettled((settlement) => void heard.push(`settled ${settlement.outcome}`));
      transportStream(ctx)?.observe({
        result: (result) => void heard.push(result.done ? 'end' : `chunk ${result.value.choices[0]?.delta.content}`),
        failed: (error) => void heard.push(`failed ${error.code}`),
      });
    });
    for await (const part of llm.stream(request)) heard.push(`read ${part.choices[0]?.delta.content}`);
    expect(heard).toEqual(['chunk a', 'read a', 'chunk b', 'read b', 'settled success', 'end']);
    await llm.close({ graceMs: 0 });
  });

  it('tells an observer of a failure once the stream settled with it, and the read rejects with the same error', async () => {
    const upstream = await rawUpstream((_req, res) => sse(res, [spaced]));
    const heard: unknown[] = [];
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: null }) }).use(async function watch(ctx, next) {
      await next();
      // Bound to this response: settled when its stream is.
      ctx.onSettled((settlement) => void heard.push(`settled ${settlement.outcome}`));
      transportStream(ctx)?.observe({ result: () => void heard.push('result'), failed: (error) => void heard.push(error) });
    });
    const iterator = llm.stream(request)[Symbol.asyncIterator]();
    await iterator.next();
    const failing = iterator.next();
    await expect(failing).rejects.toMatchObject({ code: 'STREAM_CUT' });
    expect(heard).toEqual(['result', 'settled error', await failing.catch((error: unknown) => error)]);
    await llm.close({ graceMs: 0 });
  });

  it("reads the first chunk ahead and holds it, the stream staying the transport's, with the text of every chunk", async () => {
    const ahead: boolean[] = [];
    const { llm, texts, found } = await reading([
      async function readFirst(ctx, next) {
        await next();
        const reading = readAhead(ctx);
        ahead.push(reading !== undefined);
        await reading;
      },
    ]);
    const parts = [];
    for await (const part of llm.stream(request)) parts.push(part);
    expect(ahead).toEqual([true]);
    expect(found).toEqual([true]);
    expect(parts.map((part) => part.choices[0]?.delta.content)).toEqual(['a', 'b']);
    expect(texts).toEqual([spaced.slice('data: '.length, -2), undefined]);
    await llm.close({ graceMs: 0 });
  });

  it('rejects a read ahead with what the first chunk failed with, and reads nothing of a stream a middleware made', async () => {
    const upstream = await rawUpstream((_req, res) => sse(res, ['data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n']));
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: null }) }).use(async function readFirst(ctx, next) {
      await next();
      await readAhead(ctx);
    });
    await expect(llm.stream(request)[Symbol.asyncIterator]().next()).rejects.toMatchObject({ retryable: true });
    await llm.close({ graceMs: 0 });
    const wrapped: Array<Promise<void> | undefined> = [];
    const { llm: other } = await reading([
      async function wrapThenRead(ctx, next) {
        await next();
        const chunks = ctx.chunks;
        if (chunks) ctx.chunks = (async function* same() { yield* chunks; })();
        wrapped.push(readAhead(ctx));
      },
    ]);
    for await (const _part of other.stream(request));
    expect(wrapped).toEqual([undefined]);
    await other.close({ graceMs: 0 });
  });

  it('drops a chunk read ahead when the stream is closed before anyone took it', async () => {
    const upstream = await rawUpstream((_req, res) => sse(res, [spaced, patched, 'data: [DONE]\n\n']));
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: null }) }).use(async function readFirst(ctx, next) {
      await next();
      await readAhead(ctx);
    });
    const ctx = await llm.run(request);
    const iterator = (ctx.chunks as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    await iterator.return?.();
    await expect(iterator.next()).resolves.toEqual({ done: true, value: undefined });
    await llm.close({ graceMs: 0 });
  });

  it('is undefined for a completion', async () => {
    const upstream = await rawUpstream((_req, res) => {
      const body = '{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok","refusal":null},"logprobs":null,"finish_reason":"stop"}]}';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      res.end(body);
    });
    const found: boolean[] = [];
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: null }) }).use(async (ctx, next) => {
      await next();
      found.push(transportStream(ctx) !== undefined);
    });
    await llm.complete({ ...request, stream: false });
    expect(found).toEqual([false]);
    await llm.close({ graceMs: 0 });
  });
});

describe('TransportStream.outliveCall', () => {
  /**
   * An upstream that sends one chunk, then the rest when told; a middleware
   * that keeps the transport's stream for the test (after `outliveCall()`
   * when `outlive`) and hands its caller the first chunk only.
   */
  async function kept(outlive: boolean) {
    let sendRest!: () => void;
    const rest = new Promise<void>((resolve) => (sendRest = resolve));
    let closedEarly = false;
    const upstream = await rawUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(spaced);
      res.once('close', () => (closedEarly = !res.writableEnded));
      void rest.then(() => res.end(`${patched}data: [DONE]\n\n`));
    });
    let stream: TransportStream | undefined;
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: null }) }).use(async function share(ctx, next) {
      await next();
      stream = transportStream(ctx);
      if (outlive) stream?.outliveCall();
      const first = stream as TransportStream;
      ctx.chunks = (async function* firstOnly() {
        const result = await first[Symbol.asyncIterator]().next();
        if (!result.done) yield result.value;
      })();
    });
    const controller = new AbortController();
    for await (const _part of llm.stream(request, { signal: controller.signal })) {
      controller.abort();
      break;
    }
    return { llm, sendRest, reader: (stream as TransportStream)[Symbol.asyncIterator](), closedEarly: () => closedEarly };
  }

  it('lets the upstream request go on to its end after its call was aborted', async () => {
    const { llm, sendRest, reader } = await kept(true);
    sendRest();
    const next = await reader.next();
    expect(next.done ? undefined : next.value.choices[0]?.delta.content).toBe('b');
    await expect(reader.next()).resolves.toEqual({ done: true, value: undefined });
    await llm.close({ graceMs: 0 });
  });

  it("ends the request at the consumer's return(), the socket closed", async () => {
    const { llm, reader, closedEarly } = await kept(true);
    await reader.return?.();
    await expect(reader.next()).resolves.toEqual({ done: true, value: undefined });
    await llm.close({ graceMs: 0 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(closedEarly()).toBe(true);
  });

  it("without it, the call's abort ends the request", async () => {
    const { llm, sendRest, reader } = await kept(false);
    sendRest();
    await expect(reader.next()).rejects.toMatchObject({ code: 'ABORTED' });
    await llm.close({ graceMs: 0 });
  });
});
