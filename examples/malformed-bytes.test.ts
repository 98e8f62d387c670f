/**
 * Every malformed byte an upstream can send, below what `mockUpstream`
 * speaks: a raw TCP server answers each request with a valid response
 * mutated at the HTTP level (bytes flipped, inserted, duplicated, deleted
 * or cut; a wrong status, content type or length; chunked framing with bad
 * sizes or no end; a close mid-body), written in random pieces. The whole
 * recommended pipeline sends hundreds of calls over undici and over fetch,
 * and once more with a cache outside and a router of three deployments inside.
 *
 * Each call settles exactly once: an answer of the right shape, or a
 * `SluiceError` with a code the failure explains (never `UNEXPECTED`,
 * never the API key); no unhandled rejection; and the pipeline closes.
 * Nothing here needs a timer to end (the answers that would, a body that
 * never decodes, are tested on fake time in core's fetch-transport tests),
 * so a call that hangs fails the test by its timeout. This is how a fuzz of
 * the fetch transport found calls that never settled.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { breaker } from '@sluice/breaker';
import { trimContext } from '@sluice/context';
import { createPipeline, fetchTransport, memoryStore, openAICompatible, type Pipeline, SluiceError } from '@sluice/core';
import { budget, trackCost } from '@sluice/cost';
import { rateLimit } from '@sluice/ratelimit';
import { retry } from '@sluice/retry';
import { cache } from '@sluice/cache';
import { router } from '@sluice/router';
import { seededRandom } from '@sluice/testing';
import { afterEach, describe, expect, it } from 'vitest';

const apiKey = 'sk-fuzz-SECRET-0123456789';
const calls = 400;

/** The codes a malformed answer may fail with; anything else (UNEXPECTED above all) is a defect. */
const expectedCodes = new Set([
  'MALFORMED_RESPONSE', 'STREAM_CUT', 'CONNECTION', 'HTTP_ERROR', 'SERVER_ERROR', 'BAD_REQUEST', 'AUTHENTICATION',
  'NOT_FOUND', 'CONFLICT', 'REQUEST_TIMEOUT', 'RATE_LIMITED', 'RETRY_EXHAUSTED', 'RESPONSE_TOO_LARGE', 'CONTEXT_LENGTH_EXCEEDED',
  'PERMISSION_DENIED', 'UNPROCESSABLE', 'NO_DEPLOYMENT',
]);

const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
const completion = JSON.stringify({
  id: 'c1', object: 'chat.completion', created: 1, model: 'gpt-4.1-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello there, héllo 你好 😀' }, finish_reason: 'stop' }],
  usage,
});
const chunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4.1-mini', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const events =
  chunk({ role: 'assistant', content: '' }) + chunk({ content: 'Hel' }) + chunk({ content: 'lo 你' }) + chunk({ content: '😀' }) + chunk({}, 'stop') +
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4.1-mini', choices: [], usage })}\n\n` +
  'data: [DONE]\n\n';

/** A raw HTTP server answering every request with a mutated response; every socket closed with it. */
async function fuzzServer(seed: number): Promise<{ url: string; close(): Promise<void> }> {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const byte = () => Math.floor(random() * 256);

  const mutate = (text: string): Buffer => {
    const body = Buffer.from(text);
    const at = Math.floor(random() * body.length);
    switch (pick(['none', 'none', 'flip', 'cut', 'insert', 'duplicate', 'delete'])) {
      case 'flip':
        for (let i = 0, n = 1 + Math.floor(random() * 4); i < n; i++) body[Math.floor(random() * body.length)] = byte();
        return body;
      case 'cut':
        return body.subarray(0, at);
      case 'insert':
        return Buffer.concat([body.subarray(0, at), Buffer.from(Array.from({ length: 1 + Math.floor(random() * 8) }, byte)), body.subarray(at)]);
      case 'duplicate': {
        const length = Math.floor(random() * 40);
        return Buffer.concat([body.subarray(0, at + length), body.subarray(at, at + length), body.subarray(at + length)]);
      }
      case 'delete':
        return Buffer.concat([body.subarray(0, at), body.subarray(at + 1 + Math.floor(random() * 20))]);
      default:
        return body;
    }
  };

  /** The response's bytes, and whether the server closes the connection after them. */
  const response = (stream: boolean): { bytes: Buffer; close: boolean } => {
    const body = mutate(stream ? events : completion);
    const status = random() < 0.85 ? 200 : pick([201, 204, 301, 400, 401, 404, 408, 409, 429, 500, 502, 503, 599]);
    const type = random() < 0.9 ? (stream ? 'text/event-stream' : 'application/json') : pick(['text/plain', 'application/json', 'text/event-stream', 'text/html']);
    const head = [`HTTP/1.1 ${status} X`, `content-type: ${type}`];
    if (random() < 0.1) head.push(`retry-after: ${pick(['0', '1', '-5', 'soon', 'Wed, 21 Oct 2015 07:28:00 GMT'])}`);
    const framing = pick(['length', 'chunked', 'chunked', 'close', 'short', 'badchunk']);
    let payload = body;
    if (framing === 'length') head.push(`content-length: ${body.length}`);
    else if (framing === 'short') head.push(`content-length: ${body.length + pick([1, 10, 1_000])}`, 'connection: close');
    else if (framing === 'close') head.push('connection: close');
    else {
      head.push('transfer-encoding: chunked');
      const parts: Buffer[] = [];
      for (let at = 0; at < body.length; ) {
        const piece = body.subarray(at, at + 1 + Math.floor(random() * 64));
        const size = framing === 'badchunk' && random() < 0.2 ? piece.length + pick([-1, 1, 5]) : piece.length;
        parts.push(Buffer.from(`${size.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
        at += piece.length;
      }
      // A bad chunk size, or no last chunk: the server closes, so the client is not left waiting.
      if (framing === 'chunked') parts.push(Buffer.from('0\r\n\r\n'));
      payload = Buffer.concat(parts);
    }
    return { bytes: Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), payload]), close: framing !== 'length' && framing !== 'chunked' };
  };

  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    socket.on('data', (data) => {
      buffered = Buffer.concat([buffered, data]);
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length: *(\d+)/i.exec(buffered.subarray(0, end).toString())?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        const stream = buffered.subarray(end + 4, end + 4 + length).includes('"stream":true');
        buffered = buffered.subarray(end + 4 + length);
        const { bytes, close } = response(stream);
        // Written in random pieces, some a turn of the event loop apart.
        let at = 0;
        const write = (): void => {
          if (socket.destroyed) return;
          if (at >= bytes.length) {
            if (close) socket.end();
            return;
          }
          const size = 1 + Math.floor(random() * 200);
          socket.write(bytes.subarray(at, at + size));
          at += size;
          if (random() < 0.3) setImmediate(write);
          else write();
        };
        write();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The recommended pipeline, limits out of reach, retries without waiting. */
function pipeline(transport: ReturnType<typeof openAICompatible>): Pipeline {
  return createPipeline({ transport, store: memoryStore() })
    .use(trackCost())
    .use(trimContext({ maxTokens: 8_000 }))
    .use(budget({ limitUsd: 1_000, period: 'day' }))
    .use(retry({ attempts: 3, backoff: () => 0 }))
    .use(breaker({ failures: false }))
    .use(rateLimit({ rpm: 1e9 }));
}

/** The same, with a cache outside and a router of three deployments (each with its own retry and breaker) inside. */
function routed(transportFor: (url: string) => ReturnType<typeof openAICompatible>, url: string): Pipeline {
  const routes = router({
    deployments: [
      { id: 'a', model: 'gpt-4.1-mini', transport: transportFor(url) },
      { id: 'b', model: 'gpt-4.1-mini', transport: transportFor(url) },
      { id: 'c', model: 'gpt-4.1', transport: transportFor(url) },
    ],
    middleware: () => [retry({ attempts: 2, backoff: () => 0 }), breaker({ failures: false })],
    fallbacks: { 'gpt-4.1-mini': ['gpt-4.1'] },
    // A Retry-After in the fuzz would otherwise pass deployments over for its length: refusals move on at once.
    cooldownMs: 0,
    maxCooldownMs: 1,
  });
  return createPipeline({ transport: routes.transport, store: memoryStore() })
    .use(trackCost())
    .use(cache({ ttlMs: 60_000, when: () => true }))
    .use(trimContext({ maxTokens: 8_000 }))
    .use(budget({ limitUsd: 1_000, period: 'day' }))
    .use(routes);
}

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((item) => item.close()));
});

const undici = (url: string) => openAICompatible({ baseUrl: url, apiKey });
const overFetch = (url: string) => fetchTransport({ baseUrl: url, apiKey });

describe.each([
  ['undici', 11, (url: string) => pipeline(undici(url))],
  ['fetch', 12, (url: string) => pipeline(overFetch(url))],
  ['undici, with a cache and a router', 13, (url: string) => routed(undici, url)],
])('malformed bytes over %s', (_name, seed, pipelineFor) => {
  it('settles every call once, with an answer of the right shape or a typed error that explains it', async () => {
    const server = await fuzzServer(seed);
    const llm = pipelineFor(server.url);
    open.push(server, { close: () => llm.close({ graceMs: 0 }) });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const settled = new Map<number, number>();
    const outcomes: Record<string, number> = {};
    const wrong: unknown[] = [];
    const one = async (index: number) => {
      const request = { model: 'gpt-4.1-mini', messages: [{ role: 'user' as const, content: `question ${index % 40}` }] };
      let outcome: string;
      try {
        if (index % 2 === 0) {
          for await (const received of llm.stream(request)) if (!Array.isArray(received.choices)) wrong.push(received);
        } else {
          const answer = await llm.complete(request);
          if (typeof answer.choices[0]?.message !== 'object') wrong.push(answer);
        }
        outcome = 'answered';
      } catch (error) {
        outcome = SluiceError.is(error) ? error.code : `not a SluiceError: ${String(error)}`;
        if (!SluiceError.is(error) || !expectedCodes.has(error.code)) wrong.push(error);
        if (JSON.stringify(error, Object.getOwnPropertyNames(error)).includes(apiKey) || String((error as Error).stack).includes(apiKey)) wrong.push(error);
      }
      settled.set(index, (settled.get(index) ?? 0) + 1);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    };
    try {
      let next = 0;
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (next < calls) await one(next++);
      }));
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(wrong).toEqual([]);
    expect(unhandled).toEqual([]);
    expect(settled.size).toBe(calls);
    expect([...settled.values()].every((times) => times === 1)).toBe(true);
    // The faults were really met, and some answers still came through.
    expect(outcomes['answered']).toBeGreaterThan(calls / 10);
    expect(outcomes['MALFORMED_RESPONSE']).toBeGreaterThan(0);
    expect(outcomes['STREAM_CUT']).toBeGreaterThan(0);
  });
});
