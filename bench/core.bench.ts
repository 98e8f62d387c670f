/**
 * The core benchmark: what does the empty sluice pipeline cost?
 *
 * Three clients send the same request to the same mock upstream (in its
 * own process): raw undici (the floor: the same HTTP library the transport
 * uses, with nothing around it), the openai SDK 6 (what users would
 * otherwise use) and `createPipeline({ transport: openAICompatible(…) })`
 * with no middleware. Non-streaming and streaming, at concurrency 1 and 64.
 *
 * @module
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { checkClients, contentChunks, emptyPipeline, openaiSdk, rawUndici, reply } from './clients.js';
import { fixed, interleaveMode, median, pairedRatio, pairedRatios, type RunResult, summarise, table, quick, roundSettings } from './lib.js';
import { startUpstream } from './upstream-server.js';

/** Name to select this benchmark: `pnpm bench core`. */
export const name = 'core';
/** What it compares. */
export const description = 'the empty pipeline against raw undici and the openai SDK, non-stream and stream, concurrency 1 and 64';

const settings = {
  ...roundSettings(),
  maxRequests: 100_000,
};

type Mode = { stream: boolean; concurrency: number };
const modes: Mode[] = [
  { stream: false, concurrency: 1 },
  { stream: false, concurrency: 64 },
  { stream: true, concurrency: 1 },
  { stream: true, concurrency: 64 },
];

/**
 * Runs the benchmark and prints its table and verdicts.
 *
 * @throws when a client fails a request or the upstream child does not start
 * @example
 * ```ts
 * await run();
 * ```
 */
export async function run(): Promise<void> {
  const upstream = await startUpstream({ reply, chunks: contentChunks });
  const clients = [rawUndici(upstream.url), openaiSdk(upstream.url), emptyPipeline(upstream.url)];
  const started = performance.now();
  try {
    await checkClients(clients);
    await upstream.reset();
    console.log(
      `core: node ${process.version}, load average ${loadAverage()}, upstream pid ${upstream.pid} at ${upstream.url}\n` +
        `      ${settings.rounds} rounds (+${settings.warmupRounds} warm-up) of ${settings.runMs} ms per client and mode, ` +
        `order rotated each round${quick ? ' (BENCH_QUICK)' : ''}\n`,
    );
    const rows: string[][] = [
      ['mode', 'conc', 'client', 'req/s', '×undici', '×openai', 'p50 ms', 'p99 ms', 'TTFC ms', 'TTFC vs undici', 'cpu µs/req', 'upstream busy'],
    ];
    const verdicts: string[] = [];
    for (const mode of modes) {
      const label = mode.stream ? 'stream' : 'non-stream';
      const results = await interleaveMode(clients, mode, settings, async () => (await upstream.reset()).cpuUs, `${label} c=${mode.concurrency}`);
      const undici = results.get('undici') ?? [];
      const openai = results.get('openai') ?? [];
      for (const client of clients) {
        const runs = results.get(client.name) ?? [];
        const summary = summarise(runs);
        const ttfcRatio = pairedRatio(runs, undici, (run) => run.ttfcMs);
        rows.push([
          label,
          String(mode.concurrency),
          client.name,
          fixed(summary.rps, 0),
          fixed(pairedRatio(runs, undici, (run) => run.rps), 3),
          fixed(pairedRatio(runs, openai, (run) => run.rps), 3),
          fixed(summary.p50Ms, 3),
          fixed(summary.p99Ms, 3),
          mode.stream ? fixed(summary.ttfcMs, 3) : 'n/a',
          mode.stream ? signedPercent(ttfcRatio - 1) : 'n/a',
          fixed(summary.cpuUsPerRequest, 0),
          `${fixed(summary.upstreamBusy * 100, 0)}%`,
        ]);
      }
      verdicts.push(...judge(mode, results.get('pipeline') ?? [], undici));
    }
    console.log(table(rows));
    console.log(`\nratios are medians of per-round pairs (same round, seconds apart); other figures are medians over rounds`);
    console.log(`\ntargets, empty pipeline against raw undici:\n${verdicts.map((line) => `  ${line}`).join('\n')}`);
    console.log(`\ncore: ${((performance.now() - started) / 1000).toFixed(1)} s, load average now ${loadAverage()}`);
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await upstream.close();
  }
}

function judge(mode: Mode, pipeline: readonly RunResult[], undici: readonly RunResult[]): string[] {
  const label = `${mode.stream ? 'stream' : 'non-stream'}, c=${mode.concurrency}`;
  const verdicts: string[] = [];
  const spread = (ratios: number[], format: (value: number) => string) =>
    `rounds ${format(Math.min(...ratios))} … ${format(Math.max(...ratios))}`;
  if (mode.concurrency === 64) {
    const ratios = pairedRatios(pipeline, undici, (run) => run.rps);
    const keeps = median(ratios);
    verdicts.push(
      `throughput ${label}: keeps ${keeps.toFixed(3)} of undici (${spread(ratios, (value) => value.toFixed(2))}; target ≥ 0.95) ${keeps >= 0.95 ? 'PASS' : 'MISS'}`,
    );
  }
  if (mode.stream) {
    const ratios = pairedRatios(pipeline, undici, (run) => run.ttfcMs).map((ratio) => ratio - 1);
    const added = median(ratios);
    verdicts.push(
      `time to first chunk ${label}: ${signedPercent(added)} (${spread(ratios, signedPercent)}; target < +5%) ${added < 0.05 ? 'PASS' : 'MISS'}`,
    );
  }
  return verdicts;
}

/** The 1-minute load average against the core count: a busy machine makes every figure noisier. */
function loadAverage(): string {
  return `${(os.loadavg()[0] ?? 0).toFixed(1)} on ${os.cpus().length} cores`;
}

function signedPercent(value: number): string {
  return Number.isNaN(value) ? 'n/a' : `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)}%`;
}

