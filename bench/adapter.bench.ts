/**
 * What `toFetch` costs the openai SDK: the SDK with `fetch: toFetch(pipeline)`
 * (an empty pipeline), against the SDK alone with its own fetch and against
 * `pipeline.complete`/`stream` called directly, on the same mock upstream
 * (its own process), JSON and stream at concurrency 64. Target: the SDK
 * through the adapter keeps at least 0.90 of the SDK's own throughput.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { createPipeline, openAICompatible, toFetch } from '@sluice/core';
import { apiKey, type Client, contentChunks, emptyPipeline, openaiSdk, reply, request } from './clients.js';
import { type Contender, fixed, interleave, median, pairedRatios, summarise, table, roundSettings } from './lib.js';
import { startUpstream } from './upstream-server.js';

/** Name to select this benchmark: `pnpm bench adapter`. */
export const name = 'adapter';
/** What it compares. */
export const description = 'the openai SDK through toFetch(pipeline) against the SDK alone and pipeline.complete, JSON and stream at concurrency 64';

const settings = {
  ...roundSettings(),
  maxRequests: 100_000,
};
const concurrency = 64;

/** The openai SDK whose fetch is an empty pipeline's `toFetch`. */
function sdkThroughAdapter(baseUrl: string): Client {
  const llm = createPipeline({ transport: openAICompatible({ baseUrl, apiKey }) });
  return openaiSdk(baseUrl, { name: 'openai+toFetch', fetch: toFetch(llm), close: () => llm.close() });
}

/**
 * Runs the benchmark and prints its table and verdicts.
 *
 * @throws when a client fails a request or the upstream child does not start
 */
export async function run(): Promise<void> {
  const upstream = await startUpstream({ reply, chunks: contentChunks });
  const clients = [openaiSdk(upstream.url), sdkThroughAdapter(upstream.url), emptyPipeline(upstream.url)];
  const started = performance.now();
  try {
    for (const client of clients) {
      await client.complete(() => {});
      await client.stream(() => {});
    }
    await upstream.reset();
    const rows: string[][] = [['mode', 'client', 'req/s', '×openai', 'p50 ms', 'p99 ms', 'TTFC ms', 'cpu µs/req']];
    const verdicts: string[] = [];
    for (const stream of [false, true]) {
      const contenders: Contender[] = clients.map((client) => ({ name: client.name, call: stream ? client.stream : client.complete }));
      const results = await interleave(contenders, {
        rounds: settings.rounds,
        warmupRounds: settings.warmupRounds,
        limits: { concurrency, maxRequests: settings.maxRequests, maxMs: settings.runMs },
        afterRun: async () => (await upstream.reset()).cpuUs,
      });
      const openai = results.get('openai') ?? [];
      const label = stream ? 'stream' : 'JSON';
      for (const client of clients) {
        const runs = results.get(client.name) ?? [];
        const summary = summarise(runs);
        rows.push([
          label,
          client.name,
          fixed(summary.rps, 0),
          fixed(median(pairedRatios(runs, openai, (r) => r.rps)), 3),
          fixed(summary.p50Ms, 3),
          fixed(summary.p99Ms, 3),
          stream ? fixed(summary.ttfcMs, 3) : 'n/a',
          fixed(summary.cpuUsPerRequest, 0),
        ]);
      }
      const ratios = pairedRatios(results.get('openai+toFetch') ?? [], openai, (r) => r.rps);
      const keeps = median(ratios);
      verdicts.push(
        `${label}, c=${concurrency}: the SDK through toFetch keeps ${keeps.toFixed(3)} of the SDK's own throughput ` +
          `(rounds ${Math.min(...ratios).toFixed(2)} … ${Math.max(...ratios).toFixed(2)}; target ≥ 0.90) ${keeps >= 0.9 ? 'PASS' : 'MISS'}`,
      );
    }
    console.log(table(rows));
    console.log(`\nratios are medians of per-round pairs; other figures are medians over ${settings.rounds} rounds`);
    console.log(`\ntarget:\n${verdicts.map((line) => `  ${line}`).join('\n')}`);
    console.log(`\nadapter: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await upstream.close();
  }
}
