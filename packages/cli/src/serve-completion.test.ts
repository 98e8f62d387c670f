import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPipeline, openAICompatible, type Pipeline } from '@sluice/core';
import { type MockUpstream, mockUpstream } from '@sluice/testing';
import { chat } from '@sluice/testing/kit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { answerCompletion } from './serve-completion.js';

let upstream: MockUpstream;
let pipeline: Pipeline;
let server: Server | undefined;
beforeEach(async () => {
  upstream = await mockUpstream({ reply: 'one two three', headers: { 'x-ratelimit-remaining-requests': '99', 'x-secret-internal': 'no' } });
  pipeline = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }) });
});
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
  await pipeline.close({ graceMs: 0 });
  await upstream.close();
});

/** A server answering every request with `answerCompletion` of `body`; `settled` resolves when the answer is done. */
async function serve(body: ReturnType<typeof chat>): Promise<{ url: string; settled: Promise<void> }> {
  let settle!: () => void;
  const settled = new Promise<void>((resolve) => (settle = resolve));
  server = createServer((request, target) => {
    request.resume();
    const stop = new AbortController();
    target.once('close', () => {
      if (!target.writableFinished) stop.abort(new Error('client left'));
    });
    void answerCompletion(pipeline, body, { signal: stop.signal, tags: { tenant: 't' } }, target).then(settle);
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, settled };
}

describe('answerCompletion', () => {
  it('answers JSON with its length and forwards only the rate-limit and request-id headers', async () => {
    const { url } = await serve(chat('hi'));
    const response = await fetch(url, { method: 'POST' });
    const text = await response.text();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('99');
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
    expect(response.headers.get('x-secret-internal')).toBeNull();
    expect(JSON.parse(text)).toMatchObject({ object: 'chat.completion', choices: [{ message: { content: 'one two three' } }] });
  });

  it('streams every chunk, then [DONE], hiding the usage chunk nobody asked for', async () => {
    const { url } = await serve(chat('hi', { stream: true }));
    const response = await fetch(url, { method: 'POST' });
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const events = (await response.text()).split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event.slice('data: '.length)) as { choices: Array<{ delta: { content?: string } }>; usage?: unknown });
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe('one two three');
    expect(chunks.every((chunk) => chunk.usage === undefined || chunk.usage === null)).toBe(true);
  });

  it('answers a failure before the first chunk as an HTTP error, and one after it as an SSE error event', async () => {
    upstream.enqueue({ kind: 'status', status: 503 });
    const { url } = await serve(chat('hi', { stream: true }));
    const before = await fetch(url, { method: 'POST' });
    expect({ status: before.status, body: await before.json() }).toMatchObject({ status: 503, body: { error: { sluice_code: 'SERVER_ERROR' } } });

    upstream.enqueue({ kind: 'cut', afterChunks: 2 });
    const after = await fetch(url, { method: 'POST' });
    expect(after.status).toBe(200);
    const last = (await after.text()).split('\n\n').filter(Boolean).at(-1) ?? '';
    expect(JSON.parse(last.slice('data: '.length))).toMatchObject({ error: { sluice_code: expect.any(String) } });
  });

  it('ends the call and its upstream request when the client leaves mid-stream', async () => {
    upstream.enqueue({ kind: 'delay', chunkDelayMs: 60_000 });
    const { url, settled } = await serve(chat('hi', { stream: true }));
    const client = httpRequest(url, { method: 'POST' });
    client.on('error', () => {});
    client.on('response', (response) => response.once('data', () => client.destroy()));
    client.end();
    // Resolves only once the call gave up its upstream request: the 60 s delay never runs out here.
    await settled;
    expect(client.destroyed).toBe(true);
  });
});
