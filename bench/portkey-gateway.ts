/**
 * The Portkey AI gateway (`@portkey-ai/gateway`, its own Node server,
 * `build/start-server.js`) in a child process on 127.0.0.1, for the serve
 * benchmark to compare `sluice serve` with. Clients reach any
 * OpenAI-compatible base URL through it with the headers
 * `x-portkey-provider: openai` and `x-portkey-custom-host: <base URL>`.
 *
 * Two things are changed in the child, neither in the gateway's code:
 *
 * - Its HTTP server is bound to 127.0.0.1 (it listens on every interface
 *   and has no option for it).
 * - It runs on `@hono/node-server` 1.14.1, the last version it streams
 *   with: from 1.14.2 on, the server's lightweight `Response` hands the
 *   gateway the upstream fetch's immutable headers, the gateway's
 *   `updateHeaders` throws `TypeError: immutable` on every streamed chat
 *   completion, and the client gets a 500 (Portkey-AI/gateway issue 1389;
 *   its own dependency range `^1.3.3` installs the newer one). A resolve
 *   hook points the gateway's import of `@hono/node-server` at the
 *   bench's own pinned copy.
 *
 * @module
 */
import { fork } from 'node:child_process';
import { createRequire, register } from 'node:module';
import net from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The gateway running in a child process. */
export interface PortkeyProcess {
  /** Base URL, `http://127.0.0.1:<port>/v1`. */
  readonly url: string;
  readonly pid: number;
  /** The gateway's version, from its package.json. */
  readonly version: string;
  /** Stops the child (SIGTERM, then SIGKILL after 5 s). */
  close(): Promise<void>;
}

const require = createRequire(import.meta.url);
const startTimeoutMs = 60_000;

/** A free port on 127.0.0.1 (the gateway takes a port, not 0). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Forks this file as a child running the gateway on a free port of
 * 127.0.0.1, and resolves once it answers.
 *
 * @throws Error when the gateway is not installed, exits, or does not answer within 60 s
 * @example
 * ```ts
 * const portkey = await startPortkey();
 * // POST `${portkey.url}/chat/completions` with x-portkey-provider and x-portkey-custom-host
 * await portkey.close();
 * ```
 */
export async function startPortkey(): Promise<PortkeyProcess> {
  const version = (require('@portkey-ai/gateway/package.json') as { version: string }).version;
  const port = await freePort();
  const execArgv = [...process.execArgv];
  if (!execArgv.some((arg) => arg.includes('tsx'))) execArgv.push('--import', 'tsx');
  const child = fork(fileURLToPath(import.meta.url), [String(port)], {
    execArgv,
    // Production and headless: no log UI, no log stream.
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-4_000)));
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`portkey gateway exited (code ${child.exitCode}): ${stderr}`);
    const answered = await fetch(`${origin}/`).then(
      (response) => response.ok,
      () => false,
    );
    if (answered) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`portkey gateway: no answer on ${origin} within ${startTimeoutMs} ms: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url: `${origin}/v1`,
    pid: child.pid ?? -1,
    version,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** In the child: bind to loopback, pin @hono/node-server, then run the gateway's own server on `port`. */
async function serve(port: number): Promise<void> {
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    if (typeof args[0] === 'number' && (args[1] === undefined || typeof args[1] === 'function')) {
      args.splice(1, args[1] === undefined ? 1 : 0, '127.0.0.1');
    }
    return (listen as (...rest: unknown[]) => net.Server).apply(this, args);
  } as typeof listen;

  const benchUrl = import.meta.url;
  const hook = `
    export async function resolve(specifier, context, next) {
      if ((specifier === '@hono/node-server' || specifier.startsWith('@hono/node-server/')) && context.parentURL?.includes('@portkey-ai')) {
        return next(specifier, { ...context, parentURL: ${JSON.stringify(benchUrl)} });
      }
      return next(specifier, context);
    }`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
  const entry = require.resolve('@portkey-ai/gateway/build/start-server.js');
  process.argv.push(`--port=${port}`, '--headless');
  // The parent going away (a crashed benchmark) takes the gateway with it.
  process.once('disconnect', () => process.exit(0));
  await import(pathToFileURL(entry).href);
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  serve(Number(process.argv[2])).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
