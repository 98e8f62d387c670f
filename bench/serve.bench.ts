/**
 * The serve benchmark: what does `sluice serve` cost as a proxy, and how
 * does it compare with another gateway?
 *
 * One mock upstream in its own process; three ways to reach it, each
 * driven by the same undici client at concurrency 64, JSON and stream:
 *
 * - `direct`: undici straight to the upstream (the floor: no proxy);
 * - `sluice serve`: the real binary in its own process, with a config file
 *   whose pipeline is the default one (cost tracking, retry, breaker)
 *   pointed at the upstream, and a virtual key;
 * - `portkey`: the Portkey AI gateway (`@portkey-ai/gateway`) in its own
 *   process, routed to the same upstream with `x-portkey-provider: openai`
 *   and `x-portkey-custom-host` (see `portkey-gateway.ts`).
 *
 * Targets: `sluice serve` keeps at least 0.5 of the direct throughput and
 * has at least 10× Portkey's.
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Agent } from 'undici';
import { contentChunks, reply, request, streamRequest } from './clients.js';
import { type Call, type Contender, envNumber, fixed, interleave, measure, median, pairedRatios, quick, roundSettings, summarise, table } from './lib.js';
import { startPortkey } from './portkey-gateway.js';
import { startUpstream } from './upstream-server.js';

/** Name to select this benchmark: `pnpm bench serve`. */
export const name = 'serve';
/** What it compares. */
export const description = 'sluice serve as a proxy against undici straight to the upstream and the Portkey gateway, JSON and stream at concurrency 64';

const settings = {
  ...roundSettings(),
  maxRequests: 100_000,
  // A proxy's JIT needs thousands of calls, not the few hundred of one warm-up round on a busy machine.
  warmupRequests: envNumber('BENCH_WARMUP_REQUESTS') ?? (quick ? 500 : 3_000),
  warmupMaxMs: quick ? 10_000 : 60_000,
};
const concurrency = 64;
const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const upstreamKey = 'sk-bench-upstream';
const virtualKey = 'sk-bench-virtual-key-0123456789';

/** One way to reach the upstream, as an undici client. */
interface Route {
  name: string;
  /** The process that answers the client (the proxy), whose CPU is read per run. */
  pid: number | undefined;
  complete: Call;
  stream: Call;
  close(): Promise<void>;
}

/**
 * The same undici client for every route: a pool as large as the
 * concurrency, JSON read whole, SSE parsed by hand up to `[DONE]`; only the
 * base URL and the headers differ.
 */
function undiciRoute(name: string, baseUrl: string, headers: Record<string, string>, pid: number | undefined): Route {
  const url = new URL(baseUrl);
  const path = `${url.pathname}/chat/completions`;
  const agent = new Agent({ connections: 100 });
  const send = (body: object, accept: string) =>
    agent.request({ origin: url.origin, path, method: 'POST', headers: { 'content-type': 'application/json', accept, ...headers }, body: JSON.stringify(body) });
  return {
    name,
    pid,
    async complete() {
      const response = await send(request, 'application/json');
      if (response.statusCode !== 200) throw new Error(`${name}: status ${response.statusCode}: ${await response.body.text()}`);
      const json = (await response.body.json()) as { choices?: Array<{ message?: { content?: string } }> };
      if (json.choices?.[0]?.message?.content !== reply) throw new Error(`${name}: not the upstream's completion`);
    },
    async stream(firstChunk) {
      const response = await send(streamRequest, 'text/event-stream');
      if (response.statusCode !== 200) throw new Error(`${name}: status ${response.statusCode}: ${await response.body.text()}`);
      const decoder = new TextDecoder();
      let buffer = '';
      let text = '';
      let done = false;
      for await (const bytes of response.body) {
        const events = (buffer + decoder.decode(bytes as Uint8Array, { stream: true })).split('\n\n');
        buffer = events.pop() ?? '';
        for (const event of events) {
          if (!event.startsWith('data: ')) continue;
          const data = event.slice(6);
          if (data === '[DONE]') {
            done = true;
            continue;
          }
          const chunk = JSON.parse(data) as { choices: Array<{ delta?: { content?: string | null } }> };
          firstChunk();
          text += chunk.choices[0]?.delta?.content ?? '';
        }
      }
      if (!done || text !== reply) throw new Error(`${name}: stream ended ${done ? 'with another text' : 'without [DONE]'}`);
    },
    close: () => agent.close(),
  };
}

/** A running `sluice serve`. */
interface ServeProcess {
  url: string;
  pid: number;
  close(): Promise<void>;
}

/** `sluice serve --config <file> --port 0` from source, as a user would start it, in its own process. */
async function startServe(upstreamUrl: string, dir: string): Promise<ServeProcess> {
  const config = join(dir, 'serve.json');
  await writeFile(
    config,
    JSON.stringify({
      upstream: { baseUrl: upstreamUrl, apiKeyEnv: 'UPSTREAM_KEY' },
      keys: [{ key: virtualKey, tenant: 'bench' }],
    }),
  );
  const bin = join(repoRoot, 'packages/cli/src/bin.ts');
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', '--conditions=@sluice/source', bin, 'serve', '--config', config, '--port', '0'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', UPSTREAM_KEY: upstreamKey },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-4_000)));
  const url = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`sluice serve: not listening within 30 s: ${stderr}`)), 30_000);
    child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      seen += text;
      const found = /listening on (http:\/\/\S+)/.exec(seen);
      if (found) {
        clearTimeout(timer);
        resolve(found[1] as string);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sluice serve exited (code ${code}): ${stderr}`));
    });
  });
  return {
    url,
    pid: child.pid ?? -1,
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

const ticksPerSecond = 100;

/** CPU (user + system) a process has used, in µs, from /proc; NaN where there is no /proc. */
function processCpuUs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / ticksPerSecond) * 1e6;
  } catch {
    return Number.NaN;
  }
}

/**
 * Runs the benchmark and prints its table and verdicts.
 *
 * @throws when a route fails a request, or a process does not start
 * @example
 * ```ts
 * await run();
 * ```
 */
export async function run(): Promise<void> {
  const started = performance.now();
  const dir = await mkdtemp(join(os.tmpdir(), 'sluice-bench-serve-'));
  const upstream = await startUpstream({ reply, chunks: contentChunks });
  const processes: Array<{ close(): Promise<void> }> = [upstream];
  const routes: Route[] = [];
  try {
    const [serve, portkey] = await Promise.all([startServe(upstream.url, dir), startPortkey()]);
    processes.push(serve, portkey);
    routes.push(
      undiciRoute('direct', upstream.url, { authorization: `Bearer ${upstreamKey}` }, undefined),
      undiciRoute('sluice serve', serve.url, { authorization: `Bearer ${virtualKey}` }, serve.pid),
      undiciRoute('portkey', portkey.url, { authorization: `Bearer ${upstreamKey}`, 'x-portkey-provider': 'openai', 'x-portkey-custom-host': upstream.url }, portkey.pid),
    );
    for (const route of routes) {
      await route.complete(() => {});
      await route.stream(() => {});
    }
    await upstream.reset();
    console.log(
      `serve: node ${process.version}, load average ${loadAverage()}, portkey gateway ${portkey.version}, c=${concurrency}\n` +
        `       per route and mode: ${settings.warmupRequests} warm-up requests (at most ${settings.warmupMaxMs / 1000} s), then ` +
        `${settings.rounds} rounds (+${settings.warmupRounds} warm-up) of ${settings.runMs} ms, order rotated each round${quick ? ' (BENCH_QUICK)' : ''}\n`,
    );

    const rows: string[][] = [['mode', 'route', 'req/s', '×direct', '×portkey', 'p50 ms', 'p99 ms', 'TTFC ms', 'proxy cpu µs/req', 'upstream busy']];
    const verdicts: string[] = [];
    for (const stream of [false, true]) {
      const label = stream ? 'stream' : 'JSON';
      // Which route ran each run, to charge its proxy's CPU to it: interleave runs them in a known order.
      const proxyCpu = new Map<string, number[]>(routes.map((route) => [route.name, []]));
      const counted = new Map<string, number>(routes.map((route) => [route.name, 0]));
      let current: Route | undefined;
      let cpuBefore = Number.NaN;
      const contenders: Contender[] = routes.map((route) => {
        const call = stream ? route.stream : route.complete;
        return {
          name: route.name,
          call: async (firstChunk) => {
            if (current !== route) {
              current = route;
              cpuBefore = processCpuUs(route.pid);
            }
            await call(firstChunk);
            counted.set(route.name, (counted.get(route.name) ?? 0) + 1);
          },
        };
      });
      const modeStarted = performance.now();
      for (const route of routes) {
        await measure(stream ? route.stream : route.complete, { concurrency, maxRequests: settings.warmupRequests, maxMs: settings.warmupMaxMs });
      }
      await upstream.reset();
      const results = await interleave(contenders, {
        rounds: settings.rounds,
        warmupRounds: settings.warmupRounds,
        limits: { concurrency, maxRequests: settings.maxRequests, maxMs: settings.runMs },
        afterRun: async () => {
          if (current) {
            const calls = counted.get(current.name) ?? 0;
            proxyCpu.get(current.name)?.push((processCpuUs(current.pid) - cpuBefore) / Math.max(calls, 1));
            counted.set(current.name, 0);
            current = undefined;
          }
          return (await upstream.reset()).cpuUs;
        },
      });
      process.stderr.write(`  ${label}: ${((performance.now() - modeStarted) / 1000).toFixed(1)} s\n`);
      const direct = results.get('direct') ?? [];
      const viaPortkey = results.get('portkey') ?? [];
      for (const route of routes) {
        const runs = results.get(route.name) ?? [];
        const summary = summarise(runs);
        // The first run of each route is the warm-up's: left out like its throughput.
        const cpu = median((proxyCpu.get(route.name) ?? []).slice(settings.warmupRounds));
        rows.push([
          label,
          route.name,
          fixed(summary.rps, 0),
          fixed(median(pairedRatios(runs, direct, (r) => r.rps)), 3),
          fixed(median(pairedRatios(runs, viaPortkey, (r) => r.rps)), 2),
          fixed(summary.p50Ms, 2),
          fixed(summary.p99Ms, 2),
          stream ? fixed(summary.ttfcMs, 2) : 'n/a',
          fixed(cpu, 0),
          `${fixed(summary.upstreamBusy * 100, 0)}%`,
        ]);
      }
      const serveRuns = results.get('sluice serve') ?? [];
      verdicts.push(
        verdict(`${label}: sluice serve keeps`, pairedRatios(serveRuns, direct, (r) => r.rps), 'of the direct throughput', 0.5),
        verdict(`${label}: sluice serve has`, pairedRatios(serveRuns, viaPortkey, (r) => r.rps), "× Portkey's throughput", 10),
      );
    }
    console.log(table(rows));
    console.log(
      `\nratios are medians of per-round pairs (same round, seconds apart); other figures are medians over rounds; ` +
        `proxy cpu is the proxy process's own (n/a for direct)`,
    );
    console.log(`\ntargets, c=${concurrency}:\n${verdicts.map((line) => `  ${line}`).join('\n')}`);
    console.log(`\nserve: ${((performance.now() - started) / 1000).toFixed(1)} s, load average now ${loadAverage()}`);
  } finally {
    await Promise.all(routes.map((route) => route.close()));
    await Promise.all(processes.map((child) => child.close()));
    await rm(dir, { recursive: true, force: true });
  }
}

function verdict(subject: string, ratios: number[], what: string, target: number): string {
  const value = median(ratios);
  const digits = target >= 10 ? 1 : 3;
  return (
    `${subject} ${value.toFixed(digits)} ${what} (rounds ${Math.min(...ratios).toFixed(digits)} … ${Math.max(...ratios).toFixed(digits)}; ` +
    `target ≥ ${target}) ${value >= target ? 'PASS' : 'MISS'}`
  );
}

/** The 1-minute load average against the core count: a busy machine makes every figure noisier. */
function loadAverage(): string {
  return `${(os.loadavg()[0] ?? 0).toFixed(1)} on ${os.cpus().length} cores`;
}
