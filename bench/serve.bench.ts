/**
 * The serve benchmark: what does `sluice serve` cost as a proxy, and how
 * does it compare with another gateway?
 *
 * One mock upstream in its own process; three ways to reach it, each
 * driven by the same undici client at concurrency 64, JSON and stream:
 *
 * - `direct`: undici straight to the upstream (the floor: no proxy);
 * - `sluice serve`: the real binary in its own process, with a config file
 *   whose pipeline is the default one (retry, breaker) pointed at the
 *   upstream, and a virtual key;
 * - `portkey`: the Portkey AI gateway (`@portkey-ai/gateway`) in its own
 *   process, routed to the same upstream with `x-portkey-provider: openai`
 *   and `x-portkey-custom-host` (see `portkey-gateway.ts`);
 * - `sluice serve, routed`: the same binary with the upstream given as the
 *   one deployment of `deployments` (the router in front of its retry and
 *   breaker): what routing costs a proxy, against `sluice serve` (no target).
 *
 * Targets: `sluice serve` keeps at least 0.5 of the direct throughput and
 * has at least 10× Portkey's. Beside throughput it prints CPU per request
 * in each process (proxy, client, upstream), serve's against Portkey's and
 * against raw undici's client, and the throughput those CPU costs allow on
 * this machine's cores: three single-threaded processes share them, which
 * caps any proxy's share whatever its code does.
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
const fromSource = process.execArgv.some((arg) => arg.includes('@sluice/source'));
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

/** `sluice serve --config <file> --port 0`, as a user would start it, in its own process. */
async function startServe(upstreamUrl: string, dir: string, routed = false): Promise<ServeProcess> {
  const config = join(dir, routed ? 'serve-routed.json' : 'serve.json');
  const target = routed
    ? { deployments: [{ id: 'only', baseUrl: upstreamUrl, apiKeyEnv: 'UPSTREAM_KEY', model: request.model }] }
    : { upstream: { baseUrl: upstreamUrl, apiKeyEnv: 'UPSTREAM_KEY' } };
  await writeFile(config, JSON.stringify({ ...target, keys: [{ key: virtualKey, tenant: 'bench' }] }));
  // `pnpm bench` times the build, started by plain node as `npx sluice serve` starts it; `pnpm bench:source` the TS sources.
  const command = fromSource
    ? ['--import', 'tsx', '--conditions=@sluice/source', join(repoRoot, 'packages/cli/src/bin.ts')]
    : [join(repoRoot, 'packages/cli/dist/bin.js')];
  const child: ChildProcess = spawn(process.execPath, [...command, 'serve', '--config', config, '--port', '0'], {
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
    const [serve, portkey, routedServe] = await Promise.all([startServe(upstream.url, dir), startPortkey(), startServe(upstream.url, dir, true)]);
    processes.push(serve, portkey, routedServe);
    routes.push(
      undiciRoute('direct', upstream.url, { authorization: `Bearer ${upstreamKey}` }, undefined),
      undiciRoute('sluice serve', serve.url, { authorization: `Bearer ${virtualKey}` }, serve.pid),
      undiciRoute('portkey', portkey.url, { authorization: `Bearer ${upstreamKey}`, 'x-portkey-provider': 'openai', 'x-portkey-custom-host': upstream.url }, portkey.pid),
      undiciRoute('sluice serve, routed', routedServe.url, { authorization: `Bearer ${virtualKey}` }, routedServe.pid),
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

    const rows: string[][] = [
      ['mode', 'route', 'req/s', '×direct', '×portkey', 'p50 ms', 'p99 ms', 'TTFC ms', 'proxy µs/req', 'client µs/req', 'upstream µs/req'],
    ];
    const cpuRows: string[][] = [['mode', 'serve µs/req', 'portkey µs/req', 'portkey ÷ serve', 'raw undici client µs/req', 'serve ÷ raw client']];
    const verdicts: string[] = [];
    const ceilings: string[] = [];
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
      // Per route: each measured round's CPU per request in the three processes (the warm-up round's proxy CPU left out like its throughput).
      const cpu = new Map<string, { proxy: number[]; client: number[]; upstream: number[] }>();
      for (const route of routes) {
        const runs = results.get(route.name) ?? [];
        const summary = summarise(runs);
        const perRound = {
          proxy: (proxyCpu.get(route.name) ?? []).slice(settings.warmupRounds),
          client: runs.map((run) => run.cpuUsPerRequest),
          upstream: runs.map((run) => (run.upstreamBusy * run.elapsedMs * 1000) / Math.max(run.requests, 1)),
        };
        cpu.set(route.name, perRound);
        rows.push([
          label,
          route.name,
          fixed(summary.rps, 0),
          spread(pairedRatios(runs, direct, (r) => r.rps), 3),
          spread(pairedRatios(runs, viaPortkey, (r) => r.rps), 2),
          fixed(summary.p50Ms, 2),
          fixed(summary.p99Ms, 2),
          stream ? fixed(summary.ttfcMs, 2) : 'n/a',
          route.pid === undefined ? 'n/a' : spread(perRound.proxy, 0),
          spread(perRound.client, 0),
          spread(perRound.upstream, 0),
        ]);
      }
      const serveRuns = results.get('sluice serve') ?? [];
      const serveCpu = cpu.get('sluice serve')?.proxy ?? [];
      const portkeyCpu = cpu.get('portkey')?.proxy ?? [];
      const rawClientCpu = cpu.get('direct')?.client ?? [];
      cpuRows.push([
        label,
        spread(serveCpu, 0),
        spread(portkeyCpu, 0),
        spread(serveCpu.map((serve, round) => (portkeyCpu[round] ?? Number.NaN) / serve), 1),
        spread(rawClientCpu, 0),
        spread(serveCpu.map((serve, round) => serve / (rawClientCpu[round] ?? Number.NaN)), 2),
      ]);
      verdicts.push(
        verdict(`${label}: sluice serve keeps`, pairedRatios(serveRuns, direct, (r) => r.rps), 'of the direct throughput', 0.5),
        verdict(`${label}: sluice serve has`, pairedRatios(serveRuns, viaPortkey, (r) => r.rps), "× Portkey's throughput", 10),
      );
      const cpuRatios = serveCpu.map((serve, round) => (portkeyCpu[round] ?? Number.NaN) / serve).filter(Number.isFinite);
      // No target of its own: how much CPU 10× Portkey's throughput needs depends on the client's and the upstream's (see the ceilings).
      verdicts.push(
        `${label}: sluice serve spends ${median(cpuRatios).toFixed(1)}× less CPU per request than Portkey ` +
          `(rounds ${Math.min(...cpuRatios).toFixed(1)} … ${Math.max(...cpuRatios).toFixed(1)})`,
      );
      const routedCpu = cpu.get('sluice serve, routed')?.proxy ?? [];
      const routedAdded = routedCpu.map((routed, round) => routed - (serveCpu[round] ?? Number.NaN)).filter(Number.isFinite);
      const routedRatios = routedCpu.map((routed, round) => routed / (serveCpu[round] ?? Number.NaN)).filter(Number.isFinite);
      if (routedAdded.length > 0) {
        verdicts.push(
          `${label}: sluice serve with the upstream as its one deployment spends ${median(routedAdded) >= 0 ? '+' : ''}${median(routedAdded).toFixed(0)} µs ` +
            `(×${median(routedRatios).toFixed(2)}, rounds ${Math.min(...routedRatios).toFixed(2)} … ${Math.max(...routedRatios).toFixed(2)}) of its own CPU per request over plain serve (no target)`,
        );
      }
      ceilings.push(...ceiling(label, cpu));
    }
    console.log(table(rows));
    console.log(
      `\nratios are medians of per-round pairs (same round, seconds apart), other figures medians over rounds, each with its ` +
        `range over rounds in brackets; proxy µs/req is the proxy process's own CPU (all its threads, from /proc), client ` +
        `µs/req the driving client's (the same undici client on every route; on direct it is raw undici's cost of the call), ` +
        `upstream µs/req the mock's`,
    );
    console.log(`\nCPU per request, the steadier comparison on a shared machine (per-round ratios, median [range]):\n${table(cpuRows)}`);
    console.log(`\nwhat these CPU costs allow on ${os.cpus().length} cores (client, proxy and upstream each one thread, nothing else running):\n${ceilings.map((line) => `  ${line}`).join('\n')}`);
    console.log(`\ntargets, c=${concurrency}:\n${verdicts.map((line) => `  ${line}`).join('\n')}`);
    console.log(`\nserve: ${((performance.now() - started) / 1000).toFixed(1)} s, load average now ${loadAverage()}`);
  } finally {
    await Promise.all(routes.map((route) => route.close()));
    await Promise.all(processes.map((child) => child.close()));
    await rm(dir, { recursive: true, force: true });
  }
}

/** A median with the range over rounds: `248 [231…270]`. */
function spread(values: readonly number[], digits: number): string {
  const kept = values.filter((value) => Number.isFinite(value));
  if (kept.length === 0) return 'n/a';
  return `${median(kept).toFixed(digits)} [${Math.min(...kept).toFixed(digits)}…${Math.max(...kept).toFixed(digits)}]`;
}

/**
 * The throughput each route's CPU costs allow, and what the targets would
 * need. Each of the three processes runs on one thread, so a route is
 * bound by the machine (cores ÷ the three processes' CPU per request
 * together) and by its busiest process (one core ÷ its CPU per request).
 * The figures are ceilings, from medians: the other work on a shared
 * machine only lowers them, but their ratios are what a quiet machine
 * would show.
 */
function ceiling(label: string, cpu: Map<string, { proxy: number[]; client: number[]; upstream: number[] }>): string[] {
  const cores = os.cpus().length;
  const costs = (name: string) => {
    const figures = cpu.get(name);
    const proxy = figures ? median(figures.proxy) : Number.NaN;
    return { client: figures ? median(figures.client) : Number.NaN, proxy: Number.isNaN(proxy) ? 0 : proxy, upstream: figures ? median(figures.upstream) : Number.NaN };
  };
  const bound = ({ client, proxy, upstream }: { client: number; proxy: number; upstream: number }) =>
    Math.min((cores * 1e6) / (client + proxy + upstream), 1e6 / Math.max(client, proxy, upstream));
  const direct = bound(costs('direct'));
  const serveCosts = costs('sluice serve');
  const serve = bound(serveCosts);
  const portkey = bound(costs('portkey'));
  /** The largest proxy CPU per request that still allows `rps` beside serve's client and upstream costs. */
  const proxyFor = (rps: number) => {
    const { client, upstream } = serveCosts;
    const budget = Math.min((cores * 1e6) / rps - client - upstream, 1e6 / rps);
    if (budget > 0 && 1e6 / rps >= Math.max(client, upstream)) return `${budget.toFixed(0)} µs/req`;
    return `nothing: the client and the upstream alone allow ${bound({ client, proxy: 0, upstream }).toFixed(0)} req/s`;
  };
  return [
    `${label}: ceilings direct ${direct.toFixed(0)}, serve ${serve.toFixed(0)}, portkey ${portkey.toFixed(0)} req/s: ` +
      `serve at most ${(serve / direct).toFixed(2)} of direct and ${(serve / portkey).toFixed(1)}× Portkey`,
    `${label}: 0.5 of direct needs serve at ≤ ${proxyFor(direct / 2)}; 10× Portkey needs ≤ ${proxyFor(portkey * 10)} ` +
      `(serve uses ${serveCosts.proxy.toFixed(0)})`,
  ];
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
