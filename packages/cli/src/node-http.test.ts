import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readBody } from './node-http.js';

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
