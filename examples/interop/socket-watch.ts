import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/*
 * A bare node:http upstream for what mockUpstream() does not report: when
 * the client closes a request's socket. It sends a stream's first chunks
 * and then holds it open, as a model still thinking would.
 */

export interface HeldStreamUpstream {
  /** Base URL (`http://127.0.0.1:<port>/v1`). */
  url: string;
  /** Completion requests received. */
  requests: number;
  /** Resolves when the socket of the `n`th request (1-based) closes. */
  socketClosed(n: number): Promise<void>;
  close(): Promise<void>;
}

const chunk = (content: string): string =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4.1', choices: [{ index: 0, delta: { role: 'assistant', content }, finish_reason: null }] })}\n\n`;

/** Starts the upstream on 127.0.0.1:0: every request gets two chunks, then silence. */
export async function heldStreamUpstream(): Promise<HeldStreamUpstream> {
  const closed: Array<Promise<void>> = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    closed.push(new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve()))));
    upstream.requests++;
    req.resume();
    req.once('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('Hello'));
      res.write(chunk(' world'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const upstream: HeldStreamUpstream = {
    url: `http://127.0.0.1:${port}/v1`,
    requests: 0,
    socketClosed: (n) => closed[n - 1] ?? Promise.reject(new Error(`no request ${n}`)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return upstream;
}
