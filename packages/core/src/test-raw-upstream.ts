import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach } from 'vitest';

/*
 * A bare node:http server for the bytes mockUpstream() cannot send: a
 * valid-JSON but malformed chunk followed by more chunks, a drip of single
 * bytes, a chunked body with no content-length.
 */

export interface RawUpstream {
  /** Base URL for openAICompatible (`http://127.0.0.1:<port>/v1`). */
  url: string;
  /** Resolves when the client closes the connection of the `n`th request (1-based). */
  socketClosed(n: number): Promise<void>;
  close(): Promise<void>;
}

const open: RawUpstream[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((server) => server.close()));
});

/** Starts a server on 127.0.0.1:0 answering every request with `handle`; closed after the test. */
export async function rawUpstream(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  const closed: Array<Promise<void>> = [];
  const server = createServer((req, res) => {
    const socket = req.socket;
    closed.push(new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve()))));
    req.resume();
    req.once('end', () => handle(req, res));
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const upstream: RawUpstream = {
    url: `http://127.0.0.1:${port}/v1`,
    socketClosed: (n) => closed[n - 1] ?? Promise.reject(new Error(`no request ${n}`)),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
  open.push(upstream);
  return upstream;
}

/** A `chat.completion.chunk` with one choice carrying `delta` (or whatever `choice` says). */
export const chunk = (choice: Record<string, unknown> = { index: 0, delta: { content: 'x' } }, extra: object = {}): string =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [choice], ...extra })}\n\n`;

/** Writes SSE headers and `events`, then ends (or holds the response open when `hold`). */
export function sse(res: ServerResponse, events: readonly string[], hold = false): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (const event of events) res.write(event);
  if (!hold) res.end();
}
