import { Agent, createServer, request as httpRequest, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { createPipeline, openAICompatible, type Pipeline } from '@sluice/core';
import { mockUpstream } from '@sluice/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { apiKeys } from './api-keys.js';
import { serveHandler } from './serve-handler.js';

const key = 'sk-handler-test-0123456789';
const servers: Server[] = [];
const pipelines: Pipeline[] = [];
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await Promise.all(pipelines.splice(0).map((pipeline) => pipeline.close({ graceMs: 0 })));
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** `sluice serve`'s listener over a pipeline to `baseUrl`, listening; resolves its origin. */
async function serve(baseUrl: string, keepRawJson = false): Promise<{ origin: string; pipeline: Pipeline }> {
  const pipeline = createPipeline({ transport: openAICompatible({ baseUrl, apiKey: 'sk-upstream', keepRawJson }) });
  pipelines.push(pipeline);
  const handler = serveHandler({
    pipeline,
    tenantOf: apiKeys([{ key, tenant: 't' }], {}),
    allowAnonymous: false,
    maxBodyBytes: 1 << 20,
    models: undefined,
    circuit: undefined,
    origin: '',
    publicHealth: false,
    deadline: { timeoutMs: undefined, maxTimeoutMs: undefined },
  });
  return { origin: await listen(createServer(handler.listener)), pipeline };
}

const body = (stream: boolean) => JSON.stringify({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }], stream });

describe('serveHandler', () => {
  it('ends the call and its upstream request when the client closes its connection mid-stream', async () => {
    const upstream = await mockUpstream({ reply: 'one two three' });
    cleanups.push(() => upstream.close());
    upstream.enqueue({ kind: 'delay', chunkDelayMs: 60_000 });
    const { origin, pipeline } = await serve(upstream.url);
    const settled = new Promise<{ outcome: string; errorCode?: string }>((resolve) => pipeline.events.once('response', resolve));
    const client = httpRequest(`${origin}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
    client.on('error', () => {});
    client.on('response', (response) => response.once('data', () => client.destroy()));
    client.end(body(true));
    // Heard only once the call let go of its upstream request: the 60 s delay never runs out here.
    expect(await settled).toMatchObject({ outcome: 'error', errorCode: 'ABORTED' });
  });

  it('names a route it does not serve, repeating a long path only in part', async () => {
    const { origin } = await serve('http://127.0.0.1:9/v1');
    const headers = { authorization: `Bearer ${key}` };
    const short = await fetch(`${origin}/v1/embeddings`, { method: 'POST', headers, body: '{}' });
    expect(short.status).toBe(404);
    expect(((await short.json()) as { error: { message: string } }).error.message).toBe('no route for POST /v1/embeddings');
    const long = await fetch(`${origin}/${'a'.repeat(5_000)}`, { headers });
    const { message } = ((await long.json()) as { error: { message: string } }).error;
    // Before, all 5,000 characters came back.
    expect(message).toBe(`no route for GET /${'a'.repeat(199)}…`);
  });

  it('answers one request after another on one keep-alive connection', async () => {
    const upstream = await mockUpstream({ reply: 'again' });
    cleanups.push(() => upstream.close());
    const { origin } = await serve(upstream.url);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(async () => agent.destroy());
    const sockets = new Set<unknown>();
    const ask = (stream: boolean) =>
      new Promise<string>((resolve, reject) => {
        const client = httpRequest(`${origin}/v1/chat/completions`, { method: 'POST', agent, headers: { authorization: `Bearer ${key}` } }, (response) => {
          sockets.add(response.socket);
          let text = '';
          response.setEncoding('utf8').on('data', (part: string) => (text += part));
          response.on('end', () => resolve(`${response.statusCode} ${text}`));
        });
        client.on('error', reject);
        client.end(body(stream));
      });
    for (const stream of [false, true, false, true]) expect(await ask(stream)).toMatch(/^200 .*again/s);
    expect(sockets.size).toBe(1);
  });

  it('sends the events that arrive together as one chunk of the chunked encoding', async () => {
    const events = ['', ' one', ' two', ' three'].map((content, index) => ({
      id: 'c1',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'gpt-4.1',
      choices: [{ index: 0, delta: index === 0 ? { role: 'assistant', content } : { content }, logprobs: null, finish_reason: null }],
    }));
    // The whole answer in one write, so it reaches the server in one read.
    const upstreamUrl = await listen(
      createServer((request, response) => {
        request.resume();
        request.on('end', () => {
          response.writeHead(200, { 'content-type': 'text/event-stream' });
          response.end(`${events.map((event) => `data: ${JSON.stringify(event)}\n\n`).join('')}data: [DONE]\n\n`);
        });
      }),
    );
    const { origin } = await serve(`${upstreamUrl}/v1`);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(origin).port), '127.0.0.1');
      let text = '';
      socket.setEncoding('latin1').on('data', (part: string) => {
        text += part;
        if (text.endsWith('\r\n0\r\n\r\n')) socket.end(() => resolve(text));
      });
      socket.on('error', reject);
      const payload = body(true);
      socket.write(
        `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key}\r\ncontent-type: application/json\r\n` +
          `content-length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
      );
    });
    const [head = '', ...rest] = raw.split('\r\n\r\n');
    expect(head).toMatch(/transfer-encoding: chunked/i);
    // Chunked framing: hex size, CRLF, data, CRLF; a 0-size chunk ends it.
    const frames: string[] = [];
    let framed = rest.join('\r\n\r\n');
    for (;;) {
      const line = framed.indexOf('\r\n');
      const size = Number.parseInt(framed.slice(0, line), 16);
      if (size === 0) break;
      frames.push(framed.slice(line + 2, line + 2 + size));
      framed = framed.slice(line + 2 + size + 2);
    }
    const sent = frames.join('').split('\n\n').filter(Boolean);
    expect(sent).toHaveLength(events.length + 1);
    expect(sent.at(-1)).toBe('data: [DONE]');
    expect(sent.slice(0, -1).map((event) => JSON.parse(event.slice('data: '.length)).choices[0].delta.content).join('')).toBe(' one two three');
    expect(frames.length).toBeLessThan(sent.length);
  });

  it("forwards the upstream's own text of an answer the check left as it was, and re-encodes one it sanitised", async () => {
    const exact = '{"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok", "refusal": null}, "logprobs": null, "finish_reason": "stop"}]}';
    const partial = '{"id": "c2", "choices": [{"message": {"content": "ok"}}]}';
    const answers = [exact, partial];
    const upstreamUrl = await listen(
      createServer((request, response) => {
        request.resume();
        const answer = answers.shift() ?? '';
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(answer)) });
        response.end(answer);
      }),
    );
    const { origin } = await serve(`${upstreamUrl}/v1`, true);
    const ask = () => fetch(`${origin}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: body(false) }).then((response) => response.text());
    expect(await ask()).toBe(exact);
    const sanitised = await ask();
    expect(sanitised).not.toBe(partial);
    expect(JSON.parse(sanitised)).toMatchObject({ id: 'c2', object: 'chat.completion', choices: [{ index: 0, finish_reason: null, message: { role: 'assistant', content: 'ok', refusal: null } }] });
  });
});
