import { createServer, request as httpRequest, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { answerClientError, readBody } from './node-http.js';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

async function listen(handler: Parameters<typeof createServer>[1]): Promise<string> {
  server = createServer(handler);
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('readBody', () => {
  it('keeps a body up to the limit and reads a larger one to its end before refusing it', async () => {
    const url = await listen(async (request, response) => {
      const read = await readBody(request, 10);
      response.end(read.ok ? `ok ${read.body.toString()}` : read.reason);
    });
    const send = (body: string) => fetch(url, { method: 'POST', body }).then((r) => r.text());
    expect(await send('0123456789')).toBe('ok 0123456789');
    expect(await send('0123456789x')).toBe('too-large');
  });

  it('joins a body that arrives in several chunks', async () => {
    let firstChunk: () => void = () => {};
    const firstSeen = new Promise<void>((resolve) => (firstChunk = resolve));
    const url = await listen(async (request, response) => {
      // Attached in the same tick as readBody's own listener, so both hear every chunk.
      request.once('data', () => firstChunk());
      const read = await readBody(request, 10);
      response.end(read.ok ? `ok ${read.body.toString()}` : read.reason);
    });
    const client = httpRequest(url, { method: 'POST' });
    const answer = new Promise<string>((resolve, reject) => {
      client.on('error', reject);
      client.on('response', async (response) => {
        let text = '';
        for await (const part of response) text += String(part);
        resolve(text);
      });
    });
    client.write('01234');
    await firstSeen;
    client.end('56789');
    expect(await answer).toBe('ok 0123456789');
  });

  it('answers aborted when the client leaves mid-body, and cuts a body past discardBytes at once', async () => {
    const reads: Array<Promise<string>> = [];
    const url = await listen((request, response) => {
      const read = readBody(request, 10, 20).then((result) => (result.ok ? 'ok' : result.reason));
      reads.push(read);
      void read.then((reason) => response.end(reason));
    });
    /** The `index`th request's read, once the server has it. */
    const read = async (index: number) => {
      while (reads.length <= index) await new Promise((resolve) => setImmediate(resolve));
      return reads[index];
    };

    const gone = httpRequest(url, { method: 'POST', headers: { 'content-length': '15' } });
    gone.on('error', () => {});
    gone.write('0123456789');
    const first = read(0);
    while (reads.length === 0) await new Promise((resolve) => setImmediate(resolve));
    gone.destroy();
    expect(await first).toBe('aborted');

    // No length declared: it is read until it passes discardBytes, then the connection is cut.
    const flood = httpRequest(url, { method: 'POST' });
    const ending = new Promise<string>((resolve) => {
      flood.on('error', () => resolve('cut'));
      flood.on('response', (response) => resolve(`answered ${response.statusCode}`));
    });
    flood.write('x'.repeat(30));
    expect(await read(1)).toBe('too-large');
    expect(await ending).toBe('cut');
  });
});

describe('answerClientError', () => {
  /** Sends `raw` bytes on a socket of their own and reads all that comes back. */
  const rawExchange = (url: string, raw: string) =>
    new Promise<string>((resolve, reject) => {
      const { port } = new URL(url);
      const socket = connect(Number(port), '127.0.0.1', () => socket.write(raw));
      let text = '';
      socket.on('data', (part) => (text += String(part)));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });

  it('answers a request Node cannot parse with an OpenAI-shaped JSON error, not a bare 400', async () => {
    const url = await listen((_request, response) => response.end('served'));
    server?.on('clientError', answerClientError);
    const bad = await rawExchange(url, 'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nbad header: 1\r\ncontent-length: 2\r\n\r\n{}');
    const [head, body] = bad.split('\r\n\r\n');
    // Before, Node's own answer: `HTTP/1.1 400 Bad Request`, no content type, no body.
    expect(head).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(head).toContain('content-type: application/json');
    expect(JSON.parse(body as string)).toEqual({
      error: { message: 'the request is not valid HTTP (HPE_INVALID_HEADER_TOKEN)', type: 'invalid_request_error', param: null, code: 'bad_http_request' },
    });
    const huge = await rawExchange(url, `GET /health HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(huge).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(JSON.parse(huge.split('\r\n\r\n')[1] as string)).toMatchObject({ error: { code: 'bad_http_request', message: expect.stringContaining('too large') } });
    // The server still serves.
    expect(await fetch(url).then((response) => response.text())).toBe('served');
  });
});
