import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Exchange } from './exchange.js';
import { pickFault, type Fault, validateFault } from './fault.js';
import type { RecordedRequest } from './recorded-request.js';

export type { RecordedRequest };
import { globalClock } from './mock-clock.js';
import { validateOptions, type MockUpstreamOptions } from './mock-upstream-options.js';
import { errorBody } from './openai-error.js';
import { respond } from './respond.js';
import { seededRandom } from './seeded-random.js';


/**
 * A running mock upstream. See {@link mockUpstream}.
 *
 * @example
 * ```ts
 * const upstream = await mockUpstream();
 * upstream.enqueue({ kind: 'status', status: 503 });
 * // … point a client at upstream.url …
 * expect(upstream.requests).toHaveLength(1);
 * await upstream.close();
 * ```
 */
export interface MockUpstream {
  /** The base URL for clients, `http://127.0.0.1:<port>/v1`; completions are at `${url}/chat/completions`. */
  readonly url: string;
  /** A snapshot of every request received since start (or the last `reset()`), in order. */
  readonly requests: readonly RecordedRequest[];
  /** Scripts faults for the next completion requests, one each, in order; they win over random faults. */
  enqueue(...faults: Fault[]): void;
  /** Clears the recorded requests and the scripted faults, and restarts the seeded generator and ids. */
  reset(): void;
  /** Resolves once `count` requests have been recorded (without using any timer). */
  waitForRequests(count: number): Promise<void>;
  /** Stops the server, destroying open keep-alive and hung connections; never hangs. */
  close(): Promise<void>;
}

/**
 * Starts a real HTTP server on 127.0.0.1 (a free port) that speaks the
 * OpenAI chat-completions API, JSON and SSE, and misbehaves on demand:
 * scripted faults with `enqueue`, random ones from seeded `faults` rules.
 *
 * Only `POST /v1/chat/completions` takes faults; any other path answers 404.
 * Every request is recorded before anything else happens to it.
 *
 * @param options - see {@link MockUpstreamOptions}; all optional
 * @returns the running server, once it listens
 * @throws RangeError when an option is out of range (naming it)
 * @example
 * ```ts
 * const upstream = await mockUpstream({ seed: 42 });
 * upstream.enqueue({ kind: 'status', status: 503, headers: { 'retry-after': '1' } });
 * const res = await fetch(`${upstream.url}/chat/completions`, {
 *   method: 'POST',
 *   headers: { 'content-type': 'application/json' },
 *   body: JSON.stringify({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Hi' }] }),
 * });
 * res.status; // 503
 * await upstream.close();
 * ```
 */
export async function mockUpstream(options: MockUpstreamOptions = {}): Promise<MockUpstream> {
  validateOptions(options);
  const clock = options.clock ?? globalClock;
  const now = (): number => clock.now?.() ?? Date.now();
  const seed = options.seed ?? 0;
  let random = seededRandom(seed);
  let requests: RecordedRequest[] = [];
  let queue: Fault[] = [];
  let sequence = 0;
  let waiters: Array<{ count: number; resolve: () => void; reject: (error: Error) => void }> = [];
  const sockets = new Set<Socket>();

  function record(request: RecordedRequest): void {
    requests.push(request);
    waiters = waiters.filter((waiter) => (requests.length >= waiter.count ? (waiter.resolve(), false) : true));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    if (raw === undefined) return;
    const path = req.url ?? '/';
    const pathname = new URL(path, 'http://127.0.0.1').pathname;
    const method = req.method ?? 'GET';
    const isCompletion = method === 'POST' && pathname === '/v1/chat/completions';
    let fault: Fault | undefined;
    if (isCompletion) {
      sequence += 1;
      // Draw even when a scripted fault wins, so the random faults of later
      // requests do not depend on what was enqueued before them.
      const draw = random();
      fault = queue.shift() ?? pickFault(options.faults ?? [], draw);
    }
    const at = now();
    const request: RecordedRequest = Object.freeze({ method, path, headers: flatHeaders(req.headers), body: looseJson(raw), at, fault });
    record(request);
    const exchange = new Exchange(res, clock, { 'x-request-id': `req_mock_${requests.length}`, ...options.headers });
    if (!isCompletion) {
      return exchange.send(404, errorBody({ status: 404, message: `Invalid URL (${method} ${pathname})`, code: null }));
    }
    await respond({ exchange, fault, raw, request, sequence, created: Math.floor(at / 1000), options });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      // A bug here must fail the test that hit it, not crash the process.
      if (!res.headersSent) {
        const message = `mockUpstream failed: ${error instanceof Error ? error.message : String(error)}`;
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify(errorBody({ status: 500, message })));
      } else res.destroy();
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    get requests() {
      return [...requests];
    },
    enqueue(...faults) {
      // All checked before any is queued: a bad one queues none.
      faults.forEach((fault, index) => validateFault(fault, `enqueue[${index}]`));
      queue.push(...faults);
    },
    reset() {
      requests = [];
      queue = [];
      sequence = 0;
      random = seededRandom(seed);
    },
    waitForRequests(count) {
      if (requests.length >= count) return Promise.resolve();
      if (closing !== undefined) return Promise.reject(new Error('mockUpstream: closed'));
      return new Promise((resolve, reject) => waiters.push({ count, resolve, reject }));
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive, streaming and hung connections would hold close() forever.
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
        for (const waiter of waiters) waiter.reject(new Error('mockUpstream: closed'));
        waiters = [];
      });
      return closing;
    },
  };
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.once('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    // A client gone before its body was complete gets no answer and no record.
    req.once('error', () => resolve(undefined));
    req.once('close', () => resolve(undefined));
  });
}

function flatHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

function looseJson(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}
