/**
 * The pipeline benchmark: does the whole recommended pipeline run at the
 * speed of the wire?
 *
 * Four clients send the same request to the same mock upstream (in its own
 * process): raw undici (the floor), the empty pipeline, the full pipeline
 * in the root README's order (trackCost → trimContext → budget → retry →
 * breaker → rateLimit, limits set so nothing ever waits or is refused) and
 * the openai SDK for scale. JSON and stream, at concurrency 1, 64 and 512,
 * interleaved rounds with the order rotated each round.
 *
 * @module
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { breaker } from '@sluice/breaker';
import { trimContext } from '@sluice/context';
import {
  type ChatCompletionChunk,
  type CompletionContext,
  createPipeline,
  type Middleware,
  openAICompatible,
  type Pipeline,
  type Transport,
} from '@sluice/core';
import { budget, trackCost } from '@sluice/cost';
import { rateLimit } from '@sluice/ratelimit';
import { retry } from '@sluice/retry';
import {
  apiKey,
  type Client,
  checkClients,
  contentChunks,
  emptyPipeline,
  openaiSdk,
  pipelineClient,
  rawUndici,
  reply,
  request,
  streamRequest,
} from './clients.js';
import {
  alternateFirstChunks,
  blockRatios,
  envNumber,
  fixed,
  interleaveMode,
  median,
  pairedRatios,
  percentile,
  quick,
  roundSettings,
  type RunResult,
  summarise,
  table,
} from './lib.js';
import { startUpstream } from './upstream-server.js';
import { memoryCompletion, memoryTransport } from './memory-transport.js';

/** Name to select this benchmark: `pnpm bench pipeline`. */
export const name = 'pipeline';
/** What it compares. */
export const description =
  'the full recommended pipeline and the empty one against raw undici (and the openai SDK), JSON and stream, concurrency 1, 64 and 512';

const settings = {
  ...roundSettings(),
  // Quick mode: 6 modes × 4 clients × 3 rounds, plus the drain of each
  // run's calls in flight (512 of them), must stay near 20 s.
  runMs: envNumber('BENCH_RUN_MS') ?? (quick ? 100 : 600),
  maxRequests: 100_000,
};

type Mode = { stream: boolean; concurrency: number };
/** `BENCH_ONLY=json:64,stream:1` runs only those modes (to compare one change quickly). */
const only = process.env.BENCH_ONLY?.split(',').map((mode) => mode.trim());
const modes: Mode[] = [1, 64, 512]
  .flatMap((concurrency) => [
    { stream: false, concurrency },
    { stream: true, concurrency },
  ])
  .filter((mode) => !only || only.includes(`${mode.stream ? 'stream' : 'json'}:${mode.concurrency}`));
/** `BENCH_SKIP_OPENAI=1` leaves the openai SDK out (it only gives scale, and is the slowest). */
const skipOpenai = process.env.BENCH_SKIP_OPENAI === '1';

/** The issue's targets, each against raw undici in the same round. */
const targets = {
  fullThroughput: 0.8,
  fullCpu: 1.5,
  emptyThroughput: 0.95,
  fullTtfcAdded: 0.1,
};

/** The full pipeline's middleware, outermost first, each made afresh (limits never reached). */
export const recommended: ReadonlyArray<[string, () => Middleware]> = [
  ['trackCost', () => trackCost() as unknown as Middleware],
  ['trimContext', () => trimContext() as unknown as Middleware],
  ['budget', () => budget({ limitUsd: 1_000_000_000, period: 'day' }) as unknown as Middleware],
  ['retry', () => retry() as unknown as Middleware],
  ['breaker', () => breaker() as unknown as Middleware],
  ['rateLimit', () => rateLimit({ rpm: 1_000_000_000 }) as unknown as Middleware],
];

/**
 * The root README's full pipeline, in its order. Its limits are the README's
 * shapes with values no run reaches (`rpm: 100` would make this a benchmark
 * of waiting): every middleware decides every call and admits it.
 */
export function fullPipeline(baseUrl: string): Client {
  const llm = createPipeline({ transport: openAICompatible({ baseUrl, apiKey }) });
  for (const [, make] of recommended) llm.use(make());
  return pipelineClient('full', llm);
}

/** Answers from memory, JSON or stream, so that only the middleware are left to time. */
const inMemory = memoryTransport(memoryCompletion());

/**
 * Each middleware of the full pipeline alone around an in-memory
 * transport, and all of them: CPU per call added to the empty pipeline's,
 * medians of per-round differences (the evidence for who to make cheaper).
 */
async function perMiddleware(): Promise<void> {
  const stacks: Array<[string, Pipeline]> = [['empty', createPipeline({ transport: inMemory })]];
  for (const [label, make] of recommended) stacks.push([label, createPipeline({ transport: inMemory }).use(make())]);
  const all = createPipeline({ transport: inMemory });
  for (const [, make] of recommended) all.use(make());
  stacks.push(['all six', all]);
  const probeMs = quick ? 40 : 150;
  const rows: string[][] = [['middleware', 'json ns/call', '+ns vs empty', 'stream ns/call', '+ns vs empty']];
  const samples = stacks.map(() => ({ json: [] as number[], stream: [] as number[] }));
  let sink = 0;
  for (let round = 0; round <= settings.rounds; round++) {
    for (let offset = 0; offset < stacks.length; offset++) {
      const index = (offset + round) % stacks.length;
      const llm = (stacks[index] as [string, Pipeline])[1];
      for (const stream of [false, true]) {
        let calls = 0;
        const started = performance.now();
        const before = process.cpuUsage();
        while (performance.now() - started < probeMs) {
          for (let batch = 0; batch < 20; batch++, calls++) {
            if (!stream) await llm.complete(request);
            else for await (const chunk of llm.stream(streamRequest)) sink += chunk.choices.length;
          }
        }
        const cpu = process.cpuUsage(before);
        if (round > 0) samples[index]?.[stream ? 'stream' : 'json'].push(((cpu.user + cpu.system) * 1000) / calls);
      }
    }
  }
  const empty = samples[0] as { json: number[]; stream: number[] };
  const added = (runs: number[], base: number[]) => median(runs.map((value, index) => value - (base[index] as number)));
  stacks.forEach(([label], index) => {
    const { json, stream } = samples[index] as { json: number[]; stream: number[] };
    rows.push([
      label,
      fixed(median(json), 0),
      index === 0 ? '' : signed(added(json, empty.json)),
      fixed(median(stream), 0),
      index === 0 ? '' : signed(added(stream, empty.stream)),
    ]);
  });
  console.log(`\nin process, in-memory transport, one call after another (CPU, medians of ${settings.rounds} rounds):\n`);
  console.log(table(rows));
  if (sink < 0) console.log(sink);
}

/**
 * Runs the benchmark and prints its table and one verdict per target.
 *
 * @throws when a client fails a request or the upstream child does not start
 * @example
 * ```ts
 * await run();
 * ```
 */
export async function run(): Promise<void> {
  // `BENCH_ONLY=middleware` runs only the in-process table (to compare one middleware change quickly).
  if (only?.includes('middleware') && modes.length === 0) {
    console.log(`pipeline: node ${process.version}, load average ${loadAverage()}, in-process table only${quick ? ' (BENCH_QUICK)' : ''}`);
    await perMiddleware();
    return;
  }
  const upstream = await startUpstream({ reply, chunks: contentChunks });
  const clients = [rawUndici(upstream.url), emptyPipeline(upstream.url), fullPipeline(upstream.url)];
  if (!skipOpenai) clients.push(openaiSdk(upstream.url));
  const started = performance.now();
  try {
    await checkClients(clients);
    await upstream.reset();
    console.log(
      `pipeline: node ${process.version}, load average ${loadAverage()}, upstream pid ${upstream.pid}\n` +
        `          ${settings.rounds} rounds (+${settings.warmupRounds} warm-up) of ${settings.runMs} ms per client and mode, ` +
        `order rotated each round${quick ? ' (BENCH_QUICK)' : ''}\n` +
        `          full = trackCost → trimContext → budget → retry → breaker → rateLimit (limits never reached)\n`,
    );
    const rows: string[][] = [
      ['mode', 'conc', 'client', 'req/s', '×undici', 'rounds', 'cpu µs/req', 'cpu ×undici', 'p50 ms', 'p99 ms', 'TTFC ms', 'TTFC vs undici', 'upstream busy'],
    ];
    const verdicts: string[] = [];
    for (const mode of modes) {
      const label = modeLabel(mode);
      const results = await interleaveMode(clients, mode, settings, async () => (await upstream.reset()).cpuUs, label);
      const undici = results.get('undici') ?? [];
      for (const client of clients) {
        const runs = results.get(client.name) ?? [];
        const summary = summarise(runs);
        const rps = pairedRatios(runs, undici, (run) => run.rps);
        const cpu = pairedRatios(runs, undici, (run) => run.cpuUsPerRequest);
        const ttfc = pairedRatios(runs, undici, (run) => run.ttfcMs);
        rows.push([
          mode.stream ? 'stream' : 'json',
          String(mode.concurrency),
          client.name,
          fixed(summary.rps, 0),
          fixed(median(rps), 3),
          spread(rps, (value) => value.toFixed(2)),
          fixed(summary.cpuUsPerRequest, 0),
          fixed(median(cpu), 2),
          fixed(summary.p50Ms, 3),
          fixed(summary.p99Ms, 3),
          mode.stream ? fixed(summary.ttfcMs, 3) : 'n/a',
          mode.stream ? signedPercent(median(ttfc) - 1) : 'n/a',
          `${fixed(summary.upstreamBusy * 100, 0)}%`,
        ]);
      }
      verdicts.push(...judge(mode, results, undici));
    }
    console.log(table(rows));
    console.log(
      `\n×undici, cpu ×undici and TTFC vs undici are medians of per-round ratios (same round, seconds apart);` +
        `\n"rounds" is the lowest … highest per-round throughput ratio; other figures are medians over rounds`,
    );
    const streamAtOne = modes.some((mode) => mode.stream && mode.concurrency === 1);
    const callByCall = streamAtOne ? await firstChunkCallByCall(clients) : undefined;
    if (streamAtOne) await firstChunkParts(upstream.url);
    if (streamAtOne) await firstChunkAfterIdle(clients);
    console.log(`\ntargets, against raw undici:\n${verdicts.map((line) => `  ${line}`).join('\n')}`);
    if (callByCall) console.log(`  ${callByCall}`);
    const misses = verdicts.filter((line) => line.endsWith('MISS')).length;
    console.log(`\n  ${verdicts.length - misses} of ${verdicts.length} targets met`);
    if (modes.some((mode) => !mode.stream && mode.concurrency === 512) && process.env.BENCH_YOUNG_CHILD !== '1') await youngGeneration();
    // `BENCH_SKIP_MIDDLEWARE=1` leaves out the in-process table of each middleware's cost.
    if (process.env.BENCH_SKIP_MIDDLEWARE !== '1') await perMiddleware();
    console.log(`\npipeline: ${((performance.now() - started) / 1000).toFixed(1)} s, load average now ${loadAverage()}`);
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await upstream.close();
  }
}

/** The young generation's size, in MiB, for {@link youngGeneration}'s run. */
const youngMiB = envNumber('BENCH_YOUNG_MIB') ?? 32;

/**
 * For information, no verdict: JSON at 512 in flight again, in a process of
 * its own whose young generation may grow to {@link youngMiB} MiB a
 * semi-space (`--max-semi-space-size`). At 512 in flight a call outlives many
 * scavenges of a small young generation, so whatever it holds is copied and
 * promoted; the full pipeline holds about twice what the empty one does a
 * call, and pays for it there. The run says how much of its miss that is.
 */
async function youngGeneration(): Promise<void> {
  const { spawn } = await import('node:child_process');
  const script = process.argv[1] ?? '';
  const flag = `--max-semi-space-size=${youngMiB}`;
  console.log(`\njson c=512 again in a process run with ${flag} (for information; no verdict):\n`);
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, flag, script, 'pipeline'], {
      env: { ...process.env, BENCH_ONLY: 'json:512', BENCH_SKIP_MIDDLEWARE: '1', BENCH_SKIP_OPENAI: '1', BENCH_YOUNG_CHILD: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    child.stdout.on('data', (data: Buffer) => (text += data.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`the ${flag} run exited with ${code}`))));
  });
  const lines = output.split('\n');
  const header = lines.find((line) => line.startsWith('mode '));
  if (header) console.log(header);
  for (const line of lines) if (/^json\s+512\s/.test(line)) console.log(line);
  for (const line of lines) if (/json c=512: (keeps|[\d.]+×)/.test(line)) console.log(line.replace(/ (PASS|MISS)$/, ''));
}

/** One verdict line per target that applies to the mode. */
function judge(mode: Mode, results: Map<string, RunResult[]>, undici: readonly RunResult[]): string[] {
  const label = modeLabel(mode);
  const full = results.get('full') ?? [];
  const empty = results.get('pipeline') ?? [];
  const two = (value: number) => value.toFixed(2);
  const verdicts = [
    atLeast(`full pipeline throughput, ${label}`, pairedRatios(full, undici, (run) => run.rps), targets.fullThroughput),
    atMost(`full pipeline CPU/call, ${label}`, pairedRatios(full, undici, (run) => run.cpuUsPerRequest), targets.fullCpu, two, '×'),
    atLeast(`empty pipeline throughput, ${label}`, pairedRatios(empty, undici, (run) => run.rps), targets.emptyThroughput),
  ];
  if (mode.stream && mode.concurrency === 1) {
    const added = pairedRatios(full, undici, (run) => run.ttfcMs).map((ratio) => ratio - 1);
    verdicts.push(atMost(`full pipeline time to first chunk, ${label}`, added, targets.fullTtfcAdded, signedPercent, ''));
  }
  return verdicts;
}

/**
 * Time to first chunk at concurrency 1, a second way: calls alternate one by
 * one between raw undici and the two pipelines (`alternateFirstChunks`), so
 * that a neighbour's load falls on every client alike. It disagrees with the
 * per-round figure (a round of one client alone, as a user's process runs)
 * by more than noise explains, so both are printed and the verdict stays
 * with the per-round one.
 */
async function firstChunkCallByCall(clients: readonly Client[]): Promise<string> {
  const calls = envNumber('BENCH_TTFC_CALLS') ?? (quick ? 300 : 3_000);
  const contenders = streamContenders(clients);
  const times = await alternateFirstChunks(contenders, calls);
  const undici = times.get('undici') ?? [];
  const rows: string[][] = [['client', 'TTFC p50 ms', 'p90 ms', 'vs undici (p50)']];
  for (const { name: client } of contenders) {
    const own = times.get(client) ?? [];
    rows.push([client, fixed(median(own), 3), fixed(percentile(own, 90), 3), signedPercent(median(blockRatios(own, undici, 10)) - 1)]);
  }
  console.log(`\ntime to first chunk, stream c=1, ${calls} calls each, one client after another call by call:\n`);
  console.log(table(rows));
  const added = blockRatios(times.get('full') ?? [], undici, 10).map((ratio) => ratio - 1);
  return `full pipeline time to first chunk, stream c=1, call by call: ${signedPercent(median(added))} (${spread(added, signedPercent)}; no verdict: the per-round line above has it)`;
}

/** The clients' streamed calls, as {@link alternateFirstChunks} takes them; the openai SDK left out (it only gives scale). */
function streamContenders(clients: readonly Client[]): Array<{ name: string; call: Client['stream'] }> {
  return clients.filter((client) => client.name !== 'openai').map((client) => ({ name: client.name, call: client.stream }));
}

/**
 * Time to first chunk at concurrency 1 once more, with the process idle for
 * 2 ms before each call, as a service called a few times a second sees it:
 * the code and records each call touches are then no longer in the
 * processor's caches. Every client slows down; what each pipeline adds
 * over the empty one shows how much code sits on the way to the first
 * chunk. For information, no verdict: the target is measured back to back.
 */
async function firstChunkAfterIdle(clients: readonly Client[]): Promise<void> {
  const idleMs = 2;
  const calls = envNumber('BENCH_TTFC_IDLE_CALLS') ?? (quick ? 100 : 600);
  const contenders = streamContenders(clients);
  const times = await alternateFirstChunks(contenders, calls, undefined, idleMs);
  const undici = times.get('undici') ?? [];
  const empty = times.get('pipeline') ?? [];
  const rows: string[][] = [['client', 'TTFC p50 ms', 'vs undici (p50)', 'vs empty pipeline (p50)', 'µs over empty pipeline']];
  for (const { name: client } of contenders) {
    const own = times.get(client) ?? [];
    rows.push([
      client,
      fixed(median(own), 3),
      signedPercent(median(blockRatios(own, undici, 10)) - 1),
      signedPercent(median(blockRatios(own, empty, 10)) - 1),
      fixed((median(own) - median(empty)) * 1000, 1),
    ]);
  }
  console.log(`\ntime to first chunk after ${idleMs} ms idle, stream c=1, ${calls} calls each, call by call (for information; no verdict):\n`);
  console.log(table(rows));
}

/** When, within one streamed call, each part of its time to first chunk ended (`performance.now()`). */
interface FirstChunkMarks {
  sent: number;
  transportFirst: number;
}

/**
 * `transport` with the time its `send` was called, and the time its
 * stream's first chunk was read, written to `marks` (calls run one at a
 * time, so one record serves them all).
 */
function markedTransport(transport: Transport, marks: FirstChunkMarks): Transport {
  return {
    name: transport.name,
    origin: transport.origin,
    send(ctx: CompletionContext): Promise<void> {
      marks.sent = performance.now();
      return transport.send(ctx).then(() => {
        const source = ctx.chunks;
        if (!source) return;
        ctx.chunks = {
          [Symbol.asyncIterator]() {
            const iterator = source[Symbol.asyncIterator]();
            let first = true;
            return {
              next: () =>
                iterator.next().then((result) => {
                  if (first) {
                    first = false;
                    marks.transportFirst = performance.now();
                  }
                  return result;
                }),
              return: (value?: unknown) => iterator.return?.(value as undefined) ?? Promise.resolve({ done: true as const, value: undefined }),
            } as AsyncIterator<ChatCompletionChunk>;
          },
        };
      });
    },
    close: () => transport.close?.() ?? Promise.resolve(),
  };
}

/**
 * Where the full pipeline's time to first chunk goes, against the empty
 * pipeline's, call by call at c=1: before the transport is called (the
 * middleware's admission), from there to the transport's first chunk
 * (request, upstream, response head, first event parsed) and from that
 * chunk to the caller (the middleware's way back and their stream
 * wrappers). Both pipelines' transports are wrapped alike to take the
 * marks, so these figures are a little above the verdict's.
 */
async function firstChunkParts(baseUrl: string): Promise<void> {
  const marks: FirstChunkMarks = { sent: 0, transportFirst: 0 };
  const marked = (middleware: ReadonlyArray<() => Middleware>) => {
    const llm = createPipeline({ transport: markedTransport(openAICompatible({ baseUrl, apiKey }), marks) });
    for (const make of middleware) llm.use(make());
    return llm;
  };
  const pipelines = [pipelineClient('pipeline', marked([])), pipelineClient('full', marked(recommended.map(([, make]) => make)))];
  const calls = envNumber('BENCH_TTFC_CALLS') ?? (quick ? 300 : 3_000);
  const parts = new Map(pipelines.map((client) => [client.name, { before: [] as number[], upstream: [] as number[], after: [] as number[] }]));
  let times: Map<string, number[]>;
  try {
    const contenders = pipelines.map((client) => ({ name: client.name, call: client.stream }));
    times = await alternateFirstChunks(contenders, calls, (client, started, first) => {
      const own = parts.get(client);
      own?.before.push(marks.sent - started);
      own?.upstream.push(marks.transportFirst - marks.sent);
      own?.after.push(first - marks.transportFirst);
    });
  } finally {
    await Promise.all(pipelines.map((client) => client.close()));
  }
  const us = (values: number[]) => fixed(median(values) * 1000, 1);
  const rows: string[][] = [['client', 'before send µs', 'send → transport 1st chunk µs', '→ caller µs', 'total µs']];
  for (const [client, own] of parts) rows.push([client, us(own.before), us(own.upstream), us(own.after), us(times.get(client) ?? [])]);
  console.log(`\nwhere the time to first chunk goes, stream c=1, ${calls} calls each, alternating (medians):\n`);
  console.log(table(rows));
}

function atLeast(what: string, ratios: number[], target: number): string {
  const value = median(ratios);
  const format = (each: number) => each.toFixed(2);
  return `${what}: keeps ${fixed(value, 3)} (${spread(ratios, format)}; target ≥ ${target}) ${value >= target ? 'PASS' : 'MISS'}`;
}

function atMost(what: string, ratios: number[], target: number, format: (value: number) => string, unit: string): string {
  const value = median(ratios);
  return `${what}: ${format(value)}${unit} (${spread(ratios, format)}; target ≤ ${format(target)}${unit}) ${value <= target ? 'PASS' : 'MISS'}`;
}

function spread(ratios: number[], format: (value: number) => string): string {
  const kept = ratios.filter((value) => !Number.isNaN(value));
  if (kept.length === 0) return 'n/a';
  return `${format(Math.min(...kept))} … ${format(Math.max(...kept))}`;
}

function modeLabel(mode: Mode): string {
  return `${mode.stream ? 'stream' : 'json'} c=${mode.concurrency}`;
}

/** The 1-minute load average against the core count: a busy machine makes every figure noisier. */
function loadAverage(): string {
  return `${(os.loadavg()[0] ?? 0).toFixed(1)} on ${os.cpus().length} cores`;
}

function signedPercent(value: number): string {
  return Number.isNaN(value) ? 'n/a' : `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)}%`;
}

function signed(value: number): string {
  return Number.isNaN(value) ? 'n/a' : `${value >= 0 ? '+' : ''}${value.toFixed(0)}`;
}
