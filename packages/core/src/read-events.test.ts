import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Attempt, DeadlineQueue } from './attempt.js';
import { systemClock } from './clock.js';
import type { CompletionContext } from './context.js';
import { readEvents } from './read-events.js';
import { type TextCodec, webCodec } from './text-codec.js';
import { loadNodeModules } from './undici-transport.js';
import type { Clock } from './clock.js';
import { openAICompatible, type OpenAICompatibleOptions } from './open-ai-compatible.js';
import { createPipeline } from './pipeline.js';
import { apiKey, ask, collect, setup } from './test-helpers.js';
import { chunk, rawUpstream, sse } from './test-raw-upstream.js';

afterEach(() => {
  vi.useRealTimers();
});

/** The system clock, counting the timers still armed. */
function countingClock(): Clock & { armed: Set<unknown> } {
  const armed = new Set<unknown>();
  return {
    armed,
    now: () => Date.now(),
    setTimeout(callback, ms) {
      const handle = setTimeout(() => {
        armed.delete(handle);
        callback();
      }, ms);
      armed.add(handle);
      return handle;
    },
    clearTimeout(handle) {
      armed.delete(handle);
      clearTimeout(handle as ReturnType<typeof setTimeout>);
    },
  };
}

function pipelineFor(url: string, options: Partial<OpenAICompatibleOptions> = {}, clock?: Clock) {
  return createPipeline({ transport: openAICompatible({ baseUrl: url, apiKey, ...options }), ...(clock ? { clock } : {}) });
}

describe('readEvents', () => {
  const texts = ['Hello', ' 日本語', ' 🙂🙃', ' é\u0301', ' done'];
  const wire = Buffer.from(
    [...texts.map((text) => chunk({ index: 0, delta: { content: text } })), ': keep-alive\r\n\r\n', 'data: [DONE]\n\n'].join(''),
  );

  const { StringDecoder } = loadNodeModules()!;
  const nodeCodec: TextCodec = { decoder: () => new StringDecoder('utf8'), text: () => '' };

  async function read(parts: Buffer[], codec: TextCodec): Promise<string[]> {
    const ctx = { signal: new AbortController().signal, clock: systemClock, usage: undefined } as unknown as CompletionContext;
    const attempt = new Attempt(ctx, new DeadlineQueue(systemClock), 60_000, 60_000);
    attempt.streaming(60_000);
    const body = Readable.from(parts) as AsyncIterable<Uint8Array>;
    const options = { hideUsage: true, headers: {}, secrets: [], maxEventSize: 1 << 20, decoder: codec.decoder() };
    const out: string[] = [];
    for await (const c of readEvents(ctx, body, attempt, options)) out.push(c.choices[0]?.delta.content ?? '');
    return out;
  }

  it('yields the same chunks however the bytes are split, even inside a character, with the Node and the web decoders', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: wire.length - 1 }), { maxLength: 30 }), async (cuts) => {
        const edges = [0, ...cuts.sort((a, b) => a - b), wire.length];
        const parts = edges.slice(1).map((end, i) => wire.subarray(edges[i], end));
        expect(await read(parts, nodeCodec)).toEqual(texts);
        expect(await read(parts, webCodec)).toEqual(texts);
      }),
      { numRuns: 200 },
    );
  });
});

describe('openAICompatible: the edges of the wire format', () => {
  const event = (content: string) => chunk({ index: 0, delta: { content } });
  /** A body written one character at a time, the hardest split for the parser. */
  const byCharacter = (body: string, type = 'text/event-stream') => (_req: unknown, res: import('node:http').ServerResponse) => {
    res.writeHead(200, { 'content-type': type });
    for (const character of body) res.write(character);
    res.end();
  };
  const read = async (url: string) => (await collect(pipelineFor(url).stream(ask()))).map((c) => c.choices[0]?.delta.content).join('');

  it('drops a leading byte order mark, keeping the first event', async () => {
    // Before, on Node, the mark made the first line an unknown field: its chunk was lost without a word.
    const upstream = await rawUpstream(byCharacter(`\ufeff${event('a')}${event('b')}data: [DONE]\n\n`));
    await expect(read(upstream.url)).resolves.toBe('ab');
  });

  it('reads CR line endings to the end, and a [DONE] the body ends right after', async () => {
    // Before, both were reported as STREAM_CUT after the whole answer, which a retry would pay for again.
    const cr = await rawUpstream(byCharacter(`${event('a')}${event('b')}data: [DONE]\n\n`.replaceAll('\n', '\r')));
    await expect(read(cr.url)).resolves.toBe('ab');
    const trimmed = await rawUpstream(byCharacter(`${event('a')}${event('b')}data: [DONE]`));
    await expect(read(trimmed.url)).resolves.toBe('ab');
  });

  it('ends a stream whose every choice finished when the body ends with no [DONE], and only then', async () => {
    const finish = (index: number) => chunk({ index, delta: {}, finish_reason: 'stop' });
    // Some servers never send [DONE] (openai-node does not need it): the model said it was done.
    const finished = await rawUpstream(byCharacter(`${event('a')}${event('b')}${finish(0)}`));
    await expect(read(finished.url)).resolves.toBe('ab');
    // Two choices, one of them unfinished when the body ends: cut.
    const half = await rawUpstream(byCharacter(`${chunk({ index: 0, delta: { content: 'a' } })}${chunk({ index: 1, delta: { content: 'b' } })}${finish(0)}`));
    await expect(read(half.url)).rejects.toMatchObject({ code: 'STREAM_CUT' });
  });

  it('takes a [DONE] with spaces around it, and passes over a relayed ping event', async () => {
    const upstream = await rawUpstream(byCharacter(`${event('a')}event: ping\ndata: {}\n\n${event('b')}data:  [DONE] \n\n`));
    await expect(read(upstream.url)).resolves.toBe('ab');
  });

  it('still reports a body that ends inside an event as cut', async () => {
    const upstream = await rawUpstream(byCharacter(`${event('a')}${event('b').slice(0, 30)}`));
    await expect(read(upstream.url)).rejects.toMatchObject({ code: 'STREAM_CUT' });
  });

  it('asks for no content coding, keeps a caller\'s own, and names one it cannot decode', async () => {
    const seen: Array<string | undefined> = [];
    const upstream = await rawUpstream((req, res) => {
      seen.push(req.headers['accept-encoding']);
      // Gzipped whatever was asked: with no Accept-Encoding at all, RFC 9110 lets a server do that.
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync('{}'));
    });
    await expect(pipelineFor(upstream.url).complete(ask())).rejects.toMatchObject({
      code: 'MALFORMED_RESPONSE',
      message: 'upstream answered 200 with a body encoded as gzip, which this transport does not decode (it asks for identity)',
    });
    await pipelineFor(upstream.url, { headers: { 'Accept-Encoding': 'gzip' } }).complete(ask()).catch(() => {});
    expect(seen).toEqual(['identity', 'gzip']);
  });

  it('parses a JSON answer that starts with a byte order mark', async () => {
    const body = JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }] });
    const upstream = await rawUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`\ufeff${body}`);
    });
    await expect(pipelineFor(upstream.url).complete(ask())).resolves.toMatchObject({ choices: [{ message: { content: 'hi' } }] });
  });
});

describe('openAICompatible: the idle limit counts events, not bytes', () => {
  it('times out a stream that drips a byte at a time without finishing an event', async () => {
    // Real time with short limits: the drip must really reach the client
    // between ticks, which fake time cannot promise.
    const next = chunk({ index: 0, delta: { content: 'never finished' } });
    const upstream = await rawUpstream((_req, res) => {
      sse(res, [chunk()], true);
      let sent = 0;
      const drip = setInterval(() => res.write(next[sent++ % (next.length - 2)] ?? ''), 10);
      res.once('close', () => clearInterval(drip));
    });
    const llm = pipelineFor(upstream.url, { idleTimeoutMs: 150 });
    const seen: unknown[] = [];
    const reading = (async () => {
      for await (const c of llm.stream(ask())) seen.push(c);
    })();
    await expect(reading).rejects.toMatchObject({ code: 'TIMEOUT', phase: 'idle' });
    expect(seen).toHaveLength(1);
    await upstream.socketClosed(1);
    await llm.close();
  });
});

describe('openAICompatible: keep-alive comments are progress', () => {
  it('keeps a stream whose model thinks longer than the idle limit alive through `:` comments', async () => {
    // Real time with short limits, as above: the pings must reach the client between ticks.
    const upstream = await rawUpstream((_req, res) => {
      sse(res, [], true);
      let pings = 0;
      const ping = setInterval(() => {
        if (++pings < 8) return void res.write(': OPENROUTER PROCESSING\n\n');
        clearInterval(ping);
        res.end(`${chunk()}data: [DONE]\n\n`);
      }, 40);
      res.once('close', () => clearInterval(ping));
    });
    const llm = pipelineFor(upstream.url, { idleTimeoutMs: 150 });
    const seen = await collect(llm.stream(ask()));
    expect(seen).toHaveLength(1);
    await llm.close();
  });
});

describe('openAICompatible: the idle limit is the upstream\'s, not the consumer\'s', () => {
  it('lets a consumer take longer than the idle limit over a chunk', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let rest: (() => void) | undefined;
    const upstream = await rawUpstream((_req, res) => {
      sse(res, [chunk()], true);
      rest = () => res.end(`${chunk()}data: [DONE]\n\n`);
    });
    const llm = pipelineFor(upstream.url, { idleTimeoutMs: 10_000 });
    let seen = 0;
    for await (const c of llm.stream(ask())) {
      expect(c.choices[0]?.delta.content).toBe('x');
      if (++seen > 1) continue;
      // The consumer thinks for 25 s over the first chunk; then the upstream sends the rest at once.
      await vi.advanceTimersByTimeAsync(25_000);
      rest?.();
    }
    expect(seen).toBe(2);
    await llm.close();
  });
});

describe('openAICompatible: size caps', () => {
  it('rejects a JSON body past maxResponseBytes from its content-length, and reads one under it', async () => {
    const { upstream, llm } = await setup({ transport: { maxResponseBytes: 2_000 } });
    upstream.enqueue({ kind: 'ok', reply: 'x'.repeat(5_000) });
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'RESPONSE_TOO_LARGE', upstreamFault: true, message: expect.stringContaining('maxResponseBytes') });
    await expect(llm.complete(ask())).resolves.toMatchObject({ choices: [{ message: { role: 'assistant' } }] });
  });

  it('stops reading a chunked JSON body, with no content-length, at maxResponseBytes', async () => {
    const upstream = await rawUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`{"id":"c","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"`);
      // Would go on for ever; the client must hang up.
      const pump = setInterval(() => res.write('y'.repeat(1_000)), 5);
      res.once('close', () => clearInterval(pump));
    });
    const llm = pipelineFor(upstream.url, { maxResponseBytes: 10_000 });
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'RESPONSE_TOO_LARGE', upstreamFault: true, message: expect.stringContaining('maxResponseBytes') });
    await upstream.socketClosed(1);
    await llm.close();
  });

  it('fails a JSON body cut short of its content-length with STREAM_CUT and drops the socket', async () => {
    const upstream = await rawUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"id":"c","model":"m","choices":[');
      setTimeout(() => res.destroy(), 20);
    });
    const llm = pipelineFor(upstream.url);
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'STREAM_CUT', retryable: true });
    await upstream.socketClosed(1);
    await llm.close();
  });

  it('times a JSON body of declared length out at the attempt limit while it trickles', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let stop: (() => void) | undefined;
    const upstream = await rawUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"id":"c","model":"m","choices":[');
      stop = () => res.destroy();
    });
    const llm = pipelineFor(upstream.url, { attemptTimeoutMs: 5_000 });
    const call = llm.complete(ask());
    const settled = expect(call).rejects.toMatchObject({ code: 'TIMEOUT', phase: 'attempt' });
    while (!stop) await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(5_000);
    await settled;
    await upstream.socketClosed(1);
    stop();
    await llm.close();
  });

  it('rejects an SSE event past maxResponseBytes, and streams events under it', async () => {
    const { upstream, llm } = await setup({ upstream: { chunks: 1 }, transport: { maxResponseBytes: 2_000 } });
    upstream.enqueue({ kind: 'ok', reply: 'x'.repeat(5_000) });
    await expect(collect(llm.stream(ask()))).rejects.toMatchObject({ code: 'RESPONSE_TOO_LARGE', upstreamFault: true, message: expect.stringContaining('maxResponseBytes') });
    upstream.enqueue({ kind: 'ok', reply: 'x'.repeat(1_000) });
    await expect(collect(llm.stream(ask()))).resolves.not.toHaveLength(0);
  });

  it('rejects an SSE event that grows past maxResponseBytes without ever finishing', async () => {
    const upstream = await rawUpstream((_req, res) => sse(res, [chunk(), `data: {"id":"${'z'.repeat(3_000)}`], true));
    const llm = pipelineFor(upstream.url, { maxResponseBytes: 2_000 });
    await expect(collect(llm.stream(ask()))).rejects.toMatchObject({ code: 'RESPONSE_TOO_LARGE', upstreamFault: true, message: expect.stringContaining('maxResponseBytes') });
    await upstream.socketClosed(1);
    await llm.close();
  });

  it('validates maxResponseBytes', () => {
    expect(() => openAICompatible({ baseUrl: 'http://127.0.0.1:1/v1', maxResponseBytes: 0 })).toThrow(
      expect.objectContaining({ field: 'openAICompatible.maxResponseBytes' }),
    );
  });
});

describe('openAICompatible: every path gives back its timer', () => {
  it.each([
    ['a finished stream', [chunk(), 'data: [DONE]\n\n'], undefined],
    ['a malformed chunk mid-stream', [chunk(), chunk({}), chunk()], 'MALFORMED_RESPONSE'],
    ['an error event mid-stream', [chunk(), 'event: error\ndata: {"error":{"message":"boom"}}\n\n'], 'SERVER_ERROR'],
    ['a stream cut before [DONE]', [chunk()], 'STREAM_CUT'],
  ])('after %s', async (_name, events, code) => {
    const upstream = await rawUpstream((_req, res) => sse(res, events));
    const clock = countingClock();
    const llm = pipelineFor(upstream.url, {}, clock);
    const reading = collect(llm.stream(ask()));
    if (code) await expect(reading).rejects.toMatchObject({ code });
    else await reading;
    expect(clock.armed.size).toBe(0);
    await llm.close();
  });

  it('after the consumer breaks out, and after a non-stream body too large', async () => {
    const upstream = await rawUpstream((req, res) => {
      if (req.headers.accept === 'application/json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'c', model: 'm', choices: [], pad: 'z'.repeat(5_000) }));
      } else sse(res, [chunk(), chunk()], true);
    });
    const clock = countingClock();
    const llm = pipelineFor(upstream.url, { maxResponseBytes: 1_000 }, clock);
    for await (const c of llm.stream(ask())) {
      expect(c).toBeDefined();
      break;
    }
    expect(clock.armed.size).toBe(0);
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'RESPONSE_TOO_LARGE' });
    expect(clock.armed.size).toBe(0);
    await llm.close();
  });

  it('after an error body cut short, which still maps by its status', async () => {
    const upstream = await rawUpstream((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"error":{"message":"over');
      setImmediate(() => res.destroy());
    });
    const clock = countingClock();
    const llm = pipelineFor(upstream.url, {}, clock);
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'SERVER_ERROR', status: 503 });
    expect(clock.armed.size).toBe(0);
    await llm.close();
  });
});
