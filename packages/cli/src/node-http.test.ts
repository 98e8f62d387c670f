import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readBody, sendResponse } from './node-http.js';

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
});

describe('sendResponse', () => {
  it('writes status, headers and every chunk', async () => {
    const url = await listen((_request, response) => {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (const part of ['a', 'b', 'c']) controller.enqueue(new TextEncoder().encode(part));
          controller.close();
        },
      });
      void sendResponse(new Response(body, { status: 201, headers: { 'x-one': '1' } }), response);
    });
    const answer = await fetch(url);
    expect({ status: answer.status, header: answer.headers.get('x-one'), text: await answer.text() }).toEqual({ status: 201, header: '1', text: 'abc' });
  });

  it('cancels the body when the client goes away mid-stream', async () => {
    let cancelled!: () => void;
    const cancel = new Promise<void>((resolve) => (cancelled = resolve));
    let first!: () => void;
    const firstPulled = new Promise<void>((resolve) => (first = resolve));
    const url = await listen((_request, response) => {
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.enqueue(new Uint8Array(1024));
          first();
          // Never ends: only the client leaving stops it.
          return new Promise(() => {});
        },
        cancel: () => cancelled(),
      });
      void sendResponse(new Response(body), response);
    });
    const client = httpRequest(url);
    client.on('error', () => {});
    client.on('response', () => void firstPulled.then(() => client.destroy()));
    client.end();
    await cancel;
    expect(client.destroyed).toBe(true);
  });
});
