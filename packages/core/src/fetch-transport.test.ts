import { mockUpstream } from '@sluice/testing';
import { createServer, type AddressInfo } from 'node:net';
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

  describe("a body whose read never settles and does not hear the fetch's abort", () => {
    /** A fetch whose answer's body never yields a byte and ignores the signal, as Node 20's did on a close-delimited body it could not decode. */
    const stuck = (contentType: string) => {
      const cancelled: unknown[] = [];
      const fetch = async () =>
        new Response(new ReadableStream<Uint8Array>({ pull: () => new Promise<void>(() => {}), cancel: (reason) => void cancelled.push(reason) }), {
          status: 200,
          headers: { 'content-type': contentType },
        });
      return { fetch, cancelled };
    };

    it('times a JSON answer out at the attempt limit and cancels the body (fake time)', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      const { fetch, cancelled } = stuck('application/json');
      const llm = createPipeline({ transport: fetchTransport({ baseUrl: 'http://127.0.0.1:9/v1', apiKey: null, fetch, attemptTimeoutMs: 5_000 }) });
      open.push(llm);
      const settled = expect(llm.complete(ask())).rejects.toMatchObject({ code: 'TIMEOUT', phase: 'attempt' });
      await vi.advanceTimersByTimeAsync(5_000);
      await settled;
      expect(cancelled).toMatchObject([{ code: 'TIMEOUT' }]);
    });

    it('times a stream out at the idle limit (fake time)', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      const { fetch } = stuck('text/event-stream');
      const llm = createPipeline({ transport: fetchTransport({ baseUrl: 'http://127.0.0.1:9/v1', apiKey: null, fetch, idleTimeoutMs: 2_000 }) });
      open.push(llm);
      const settled = expect(collect(llm.stream(ask()))).rejects.toMatchObject({ code: 'TIMEOUT', phase: 'idle' });
      await vi.advanceTimersByTimeAsync(2_000);
      await settled;
    });

    it('times out at the first-byte limit a fetch that never answers and does not hear its signal, and lets go of a late answer (fake time)', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      let answer: (response: Response) => void = () => {};
      let cancelled = 0;
      const fetch = () => new Promise<Response>((resolve) => (answer = resolve));
      const llm = createPipeline({ transport: fetchTransport({ baseUrl: 'http://127.0.0.1:9/v1', apiKey: null, fetch, firstByteTimeoutMs: 5_000 }) });
      open.push(llm);
      const settled = expect(llm.complete(ask())).rejects.toMatchObject({ code: 'TIMEOUT', phase: 'first-byte' });
      await vi.advanceTimersByTimeAsync(5_000);
      // Before, the call waited on fetch for good.
      await settled;
      answer(new Response(new ReadableStream({ cancel: () => void cancelled++ }), { status: 200, headers: { 'content-type': 'application/json' } }));
      await vi.waitFor(() => expect(cancelled).toBe(1));
    });

    it("ends at the call's deadline on a real close-delimited body that does not decode", async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      const server = createServer((socket) => {
        socket.on('error', () => {});
        socket.once('data', () => {
          socket.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: br\r\nconnection: close\r\n\r\n{"id":"c1","choices":[{');
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      open.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
      const { port } = server.address() as AddressInfo;
      const llm = createPipeline({ transport: fetchTransport({ baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: null }) });
      open.push(llm);
      const settled = llm.complete(ask(), { timeoutMs: 1_000 }).then(
        () => 'answered',
        (error: { code: string }) => error.code,
      );
      // Real I/O runs between the steps of fake time: the answer comes, and its body is read (or not).
      for (let step = 0; step < 20; step++) {
        await new Promise((resolve) => setImmediate(resolve));
        await vi.advanceTimersByTimeAsync(50);
      }
      // Some runtimes fail the body at once; Node 20's fetch never did, and the deadline must end it.
      expect(['DEADLINE_EXCEEDED', 'MALFORMED_RESPONSE', 'STREAM_CUT']).toContain(await settled);
    });
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
