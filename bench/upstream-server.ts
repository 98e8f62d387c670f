/**
 * The mock upstream, in a process of its own, so that the server's CPU time
 * never competes with the client being measured on the same event loop.
 *
 * Run directly, it prints the base URL and serves until interrupted:
 *
 * ```sh
 * npx tsx --conditions=@sluice/source bench/upstream-server.ts '{"chunks":20}'
 * ```
 *
 * Forked by {@link startUpstream}, it talks over IPC instead: `ready` with
 * the URL, then one `reset` answer (with the CPU time it spent since the
 * previous one) per `reset` asked, and it exits when the parent disconnects.
 *
 * @module
 */
import { fork } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { MockUpstreamOptions } from '@sluice/testing';

/** What the child can be configured with: the JSON-serialisable part of the mock's options. */
export type UpstreamServerOptions = Pick<MockUpstreamOptions, 'chunks' | 'latencyMs' | 'chunkDelayMs' | 'headers'> & {
  reply?: string;
};

/** A mock upstream running in a child process. */
export interface UpstreamProcess {
  /** Base URL, `http://127.0.0.1:<port>/v1`. */
  readonly url: string;
  readonly pid: number;
  /** Drops the requests the mock recorded (so memory stays flat) and returns the CPU time it used since the last reset. */
  reset(): Promise<{ cpuUs: number }>;
  /** Stops the child; kills it if it has not exited within 5 s. */
  close(): Promise<void>;
}

type FromChild = { type: 'ready'; url: string } | { type: 'reset'; cpuUs: number };

const startTimeoutMs = 30_000;
const replyTimeoutMs = 10_000;

/**
 * Forks this file as a child process running `mockUpstream(options)` on 127.0.0.1.
 *
 * @param options - reply text, stream chunks, delays
 * @throws Error when the child does not report ready within 30 s or exits first
 * @example
 * ```ts
 * const upstream = await startUpstream({ reply: 'Hello', chunks: 20 });
 * // … point clients at upstream.url …
 * await upstream.close();
 * ```
 */
export async function startUpstream(options: UpstreamServerOptions = {}): Promise<UpstreamProcess> {
  const execArgv = [...process.execArgv];
  // Run from TypeScript sources whether or not the parent was started by tsx.
  if (!execArgv.some((arg) => arg.includes('tsx'))) execArgv.push('--import', 'tsx');
  if (!execArgv.includes('--conditions=@sluice/source')) execArgv.push('--conditions=@sluice/source');
  const child = fork(fileURLToPath(import.meta.url), [JSON.stringify(options)], {
    execArgv,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });

  const nextMessage = (timeoutMs: number, what: string): Promise<FromChild> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => settle(new Error(`upstream child: no ${what} within ${timeoutMs} ms`)), timeoutMs);
      const onMessage = (message: FromChild) => settle(undefined, message);
      const onExit = (code: number | null) => settle(new Error(`upstream child exited (code ${code}) before ${what}`));
      function settle(error: Error | undefined, message?: FromChild) {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (error) reject(error);
        else resolve(message as FromChild);
      }
      child.on('message', onMessage);
      child.once('exit', onExit);
    });

  const ready = await nextMessage(startTimeoutMs, 'ready').catch((error: unknown) => {
    child.kill();
    throw error;
  });
  if (ready.type !== 'ready') throw new Error(`upstream child: expected ready, got ${ready.type}`);

  return {
    url: ready.url,
    pid: child.pid ?? -1,
    async reset() {
      const answer = nextMessage(replyTimeoutMs, 'reset answer');
      child.send({ type: 'reset' });
      const message = await answer;
      if (message.type !== 'reset') throw new Error(`upstream child: expected reset, got ${message.type}`);
      return { cpuUs: message.cpuUs };
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      if (child.connected) child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function serve(options: UpstreamServerOptions): Promise<void> {
  // Loaded here, in the child only: the parent never needs the mock.
  const { mockUpstream } = await import('@sluice/testing');
  const upstream = await mockUpstream(options);
  let since = process.cpuUsage();
  const send = process.send?.bind(process);
  if (!send) {
    process.stdout.write(`${upstream.url}\n`);
    process.once('SIGINT', () => void upstream.close().then(() => process.exit(0)));
    return;
  }
  process.on('message', (message: { type?: string }) => {
    if (message?.type !== 'reset') return;
    upstream.reset();
    const used = process.cpuUsage(since);
    since = process.cpuUsage();
    send({ type: 'reset', cpuUs: used.user + used.system } satisfies FromChild);
  });
  process.once('disconnect', () => void upstream.close().then(() => process.exit(0)));
  send({ type: 'ready', url: upstream.url } satisfies FromChild);
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  serve(JSON.parse(process.argv[2] ?? '{}') as UpstreamServerOptions).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
