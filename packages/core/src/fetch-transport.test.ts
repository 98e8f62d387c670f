import { mockUpstream } from '@sluice/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fetchTransport } from './fetch-transport.js';
import { openAICompatible } from './open-ai-compatible.js';
import { createPipeline } from './pipeline.js';
import { apiKey, ask, collect, setup } from './test-helpers.js';
import { rawUpstream, sse, chunk } from './test-raw-upstream.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(open.splice(0).map((item) => item.close()));
});

async function fetchSetup(options: Parameters<typeof mockUpstream>[0] = {}, transport: object = {}) {
  const upstream = await mockUpstream(options);
  const llm = createPipeline({ transport: fetchTransport({ baseUrl: upstream.url, apiKey, ...transport }) });
  open.push(llm, upstream);
  return { upstream, llm };
}

describe('openAICompatible: the runtime picks the client', () => {
  it('sends with undici on Node (no fetch headers)', async () => {
    const { upstream, llm } = await setup();
    await llm.complete(ask());
    expect(upstream.requests[0]?.headers['sec-fetch-mode']).toBeUndefined();
  });

  it('sends with fetch when given one, and fetchTransport always does', async () => {
    const { upstream, llm } = await fetchSetup();
    await llm.complete(ask());
    expect(upstream.requests[0]?.headers['sec-fetch-mode']).toBe('cors');
    const calls: string[] = [];
    const viaFetch = createPipeline({
      transport: openAICompatible({ baseUrl: upstream.url, apiKey, fetch: (input, init) => (calls.push(String(input)), fetch(input, init)) }),
    });
    open.push(viaFetch);
    await viaFetch.complete(ask());
    expect(calls).toEqual([`${upstream.url}/chat/completions`]);
  });

  it('refuses fetch and dispatcher together, and a dispatcher on fetchTransport', () => {
    expect(() => openAICompatible({ baseUrl: 'http://127.0.0.1:1/v1', fetch, dispatcher: { dispatch: () => true } as never })).toThrow(
      /openAICompatible.fetch/,
    );
    expect(() => fetchTransport({ baseUrl: 'http://127.0.0.1:1/v1', dispatcher: { dispatch: () => true } as never })).toThrow(
      /fetchTransport.dispatcher/,
    );
  });
});

describe('fetchTransport', () => {
  it('completes with the bearer key, the completion and usage', async () => {
    const { upstream, llm } = await fetchSetup({ reply: 'Hi!' });
    const reply = await llm.complete(ask());
    expect(reply.choices[0]?.message.content).toBe('Hi!');
    expect(reply.usage?.total_tokens).toBeGreaterThan(0);
    expect(upstream.requests[0]?.headers.authorization).toBe(`Bearer ${apiKey}`);
  });

  it('streams, asks for usage and hides it from a caller who did not', async () => {
    const { upstream, llm } = await fetchSetup({ reply: 'a b c' });
    const chunks = await collect(llm.stream(ask()));
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('a b c');
    expect(chunks.every((c) => c.choices.length > 0)).toBe(true);
    expect(upstream.requests[0]?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('maps statuses to the same typed errors, without the key', async () => {
    const { upstream, llm } = await fetchSetup();
    upstream.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '2' } }, { kind: 'status', status: 401 });
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 2_000 });
    const error = await llm.complete(ask()).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'AUTHENTICATION', status: 401 });
    expect(JSON.stringify(error)).not.toContain(apiKey);
  });

  it('fails a refused connection with CONNECTION', async () => {
    const llm = createPipeline({ transport: fetchTransport({ baseUrl: 'http://127.0.0.1:1/v1', apiKey: null }) });
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'CONNECTION', retryable: true });
  });

  it('fails a stream cut without [DONE] with STREAM_CUT', async () => {
    const { upstream, llm } = await fetchSetup({ reply: 'a b c d' });
    upstream.enqueue({ kind: 'cut', afterChunks: 2 });
    await expect(collect(llm.stream(ask()))).rejects.toMatchObject({ code: 'STREAM_CUT' });
  });

  it('times out an answer whose headers do not come (fake time)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { upstream, llm } = await fetchSetup({}, { firstByteTimeoutMs: 5_000 });
    upstream.enqueue({ kind: 'hang' });
    const settled = expect(llm.complete(ask())).rejects.toMatchObject({ code: 'TIMEOUT', phase: 'first-byte' });
    await upstream.waitForRequests(1);
    await vi.advanceTimersByTimeAsync(5_000);
    await settled;
  });

  it('closes the upstream socket when the consumer stops mid-stream', async () => {
    const upstream = await rawUpstream((_req, res) => sse(res, [chunk(), chunk()], true));
    const llm = createPipeline({ transport: fetchTransport({ baseUrl: upstream.url, apiKey: null }) });
    open.push(llm);
    for await (const received of llm.stream(ask())) {
      expect(received.choices[0]?.delta.content).toBe('x');
      break;
    }
    await upstream.socketClosed(1);
  });

  it('aborts on the caller signal mid-stream', async () => {
    const upstream = await rawUpstream((_req, res) => sse(res, [chunk()], true));
    const llm = createPipeline({ transport: fetchTransport({ baseUrl: upstream.url, apiKey: null }) });
    open.push(llm);
    const controller = new AbortController();
    const reading = collect(
      (async function* () {
        for await (const received of llm.stream(ask(), { signal: controller.signal })) {
          controller.abort();
          yield received;
        }
      })(),
    );
    await expect(reading).rejects.toMatchObject({ code: 'ABORTED' });
    await upstream.socketClosed(1);
  });
});
