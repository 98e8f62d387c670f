/**
 * The resilience benchmark: what do `retry`, `breaker` and `rateLimit`
 * cost a call that needs none of them?
 *
 * 1. In process, no network: a transport that answers from memory, so only
 *    the pipeline is left to time. The empty pipeline, each middleware
 *    alone, and the three together (CPU ns per call, added to the empty
 *    pipeline's), non-stream and stream one call after another, and
 *    non-stream 64 calls at a time; the limiter's decisions per second on
 *    one key, spread over 1,000, and on one key whose calls come 1 ms
 *    apart on the pipeline's clock (a full log: every booking merges two
 *    entries); and memory per key of the limiter's
 *    and the breaker's state, 100,000 keys each, measured after a full GC.
 * 2. Over the network (the mock upstream in its own process, as in
 *    `core`): the empty pipeline against the full resilience pipeline at
 *    concurrency 64, non-stream and stream, interleaved rounds, and the
 *    ratio of their throughputs. Target: at least 0.95.
 *
 * Every limit is set high enough that nothing ever waits: this measures the
 * bookkeeping on the happy path, not the limits themselves.
 *
 * @module
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  type ChatCompletionChunk,
  createPipeline,
  memoryStore,
  openAICompatible,
  type Pipeline,
  type Transport,
} from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { rateLimit } from '@sluice/ratelimit';
import { retry } from '@sluice/retry';
import { apiKey, type Client, consumed, contentChunks, emptyPipeline, pipelineClient, reply, request, streamRequest } from './clients.js';
import { type Contender, fixed, interleave, median, pairedRatio, pairedRatios, type Probe, probeRounds as probeRoundsOf, summarise, table, quick, roundSettings } from './lib.js';
import { startUpstream } from './upstream-server.js';
import { memoryCompletion, memoryTransport } from './memory-transport.js';

/** Name to select this benchmark: `pnpm bench resilience`. */
export const name = 'resilience';
/** What it compares. */
export const description =
  'retry + breaker + rateLimit on the happy path: ns per middleware, limiter decisions/s, memory per key, throughput vs the empty pipeline at c=64';

const settings = {
  ...roundSettings(),
  probeMs: quick ? 60 : 200,
  keys: quick ? 20_000 : 100_000,
  concurrency: 64,
};

/** Limits no benchmark run reaches: the limiter decides every call, and admits it. */
const neverWaits = { rpm: 1_000_000_000, tpm: 1_000_000_000_000, concurrency: 10_000 };

const completion = memoryCompletion();

/** Answers at once from memory, JSON or stream: no network, no parsing. */
const inMemory = memoryTransport(completion);

/** The same answer one event-loop turn later, so that calls overlap as they do over a network. */
const overlappingTransport = memoryTransport(completion, { overlap: true });

let sink = 0;

/** Reads a stream to its end, looking at every chunk. */
async function drain(stream: AsyncIterable<ChatCompletionChunk>): Promise<void> {
  for await (const chunk of stream) sink += chunk.choices[0]?.delta?.content?.length ?? 0;
}

type Stack = 'empty' | 'retry' | 'breaker' | 'rateLimit' | 'all three';

/** A pipeline with the given middleware, in the design's order (retry, breaker, rateLimit). */
function resilient(transport: Transport, stack: Stack): Pipeline {
  const llm = createPipeline({ transport });
  if (stack === 'retry' || stack === 'all three') llm.use(retry());
  if (stack === 'breaker' || stack === 'all three') llm.use(breaker());
  if (stack === 'rateLimit' || stack === 'all three') llm.use(rateLimit(neverWaits));
  return llm;
}

/** A probe: one call, and how many run at once. */
/** Every probe once per round, order rotated, after a warm-up round: samples[probe][round]. */
const probeRounds = (probes: readonly Probe[]) => probeRoundsOf(probes, settings.rounds, settings.probeMs);

/** Median over rounds of `runs[i] - baseline[i]`. */
function pairedDifference(runs: readonly number[], baseline: readonly number[]): number {
  return median(runs.map((value, index) => value - (baseline[index] as number)));
}

async function middlewareOverhead(): Promise<void> {
  const stacks: Stack[] = ['empty', 'retry', 'breaker', 'rateLimit', 'all three'];
  const pipelines = stacks.map((stack) => resilient(inMemory, stack));
  const overlapping = stacks.map((stack) => resilient(overlappingTransport, stack));
  const modes = ['non-stream', `stream (${contentChunks + 2} chunks)`, `non-stream, ${settings.concurrency} at once`];
  const probes: Probe[] = [
    ...pipelines.map((llm) => ({ fn: () => llm.complete(request) })),
    ...pipelines.map((llm) => ({ fn: () => drain(llm.stream(streamRequest)) })),
    ...overlapping.map((llm) => ({ fn: () => llm.complete(request), concurrency: settings.concurrency })),
  ];
  const samples = await probeRounds(probes);
  const rows: string[][] = [['pipeline', 'mode', 'ns/call', '+ns vs empty', 'calls/s (one core)']];
  for (const [which, mode] of modes.entries()) {
    const offset = which * stacks.length;
    const empty = samples[offset] as number[];
    stacks.forEach((stack, index) => {
      const runs = samples[offset + index] as number[];
      rows.push([
        stack === 'empty' ? 'empty' : `+ ${stack}`,
        mode,
        fixed(median(runs) * 1000, 0),
        stack === 'empty' ? '' : `+${fixed(pairedDifference(runs, empty) * 1000, 0)}`,
        fixed(1e6 / median(runs), 0),
      ]);
    });
  }
  console.log('in process, in-memory transport (CPU time, medians of rounds):\n');
  console.log(table(rows));
  console.log(
    `\n  retry: retry() defaults; breaker: breaker() defaults; rateLimit: rpm + tpm + concurrency, never reached.` +
      `\n  One call after another, except "${settings.concurrency} at once", whose transport answers one event-loop` +
      `\n  turn later so that the calls overlap. +ns is the median of per-round differences with the empty pipeline.`,
  );
}

async function limiterDecisions(): Promise<void> {
  const variants = [
    { label: 'rateLimit, 1 key', keys: 1 },
    { label: 'rateLimit, 1,000 keys (tag)', keys: 1_000 },
    // Calls a millisecond apart fill the key's log (32 entries a window), so every booking merges two entries.
    { label: 'rateLimit, 1 key, calls 1 ms apart', keys: 1, msApart: true },
  ];
  const empty = createPipeline({ transport: inMemory });
  const probes = [
    { fn: () => empty.complete(request) },
    ...variants.map((variant) => {
      // Time moves 1 ms a call on this clock, however fast the calls come.
      let now = Date.now();
      const clock = variant.msApart
        ? { now: () => now, setTimeout: (callback: () => void, ms: number) => setTimeout(callback, ms), clearTimeout: (handle: unknown) => clearTimeout(handle as ReturnType<typeof setTimeout>) }
        : undefined;
      const llm = createPipeline({ transport: inMemory, clock }).use(rateLimit({ ...neverWaits, key: { tag: 'tenant' } }));
      return {
        fn: (index: number) => {
          now++;
          return llm.complete(request, { tags: { tenant: `t${index % variant.keys}` } });
        },
      };
    }),
  ];
  const samples = await probeRounds(probes);
  const base = samples[0] as number[];
  console.log('\nlimiter decisions (admit a call, then settle it: correct its tokens, free its slot):\n');
  console.log(
    table([
      ['limiter', 'pipeline calls/s', 'limiter µs/decision', 'decisions/s (limiter alone)'],
      ...variants.map((variant, index) => {
        const runs = samples[index + 1] as number[];
        const alone = pairedDifference(runs, base);
        return [variant.label, fixed(1e6 / median(runs), 0), fixed(alone, 2), fixed(1e6 / alone, 0)];
      }),
    ]),
  );
  console.log(`\n  "limiter alone": CPU per call with the limiter, less the empty pipeline's in the same round`);
}

/** `gc()`, exposed at run time when node was not started with --expose-gc. */
function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Heap growth per key once `fill` has created `keys` keys and a full GC has run. */
async function bytesPerKey(fill: (index: number) => Promise<unknown>, keys: number, gc: () => void): Promise<number> {
  await fill(-1); // the first call allocates what every key shares
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let index = 0; index < keys; index++) await fill(index);
  gc();
  gc();
  return (process.memoryUsage().heapUsed - before) / keys;
}

async function memoryPerKey(): Promise<void> {
  const gc = collector();
  const rows: string[][] = [['state', 'keys', 'store entries', 'bytes/key']];
  const cases = [
    {
      label: 'rateLimit (rpm + tpm + concurrency), key: { tag }',
      build: () => rateLimit({ ...neverWaits, key: { tag: 'tenant' } }),
    },
    { label: 'breaker(), key: (ctx) => ctx.tags.tenant', build: () => breaker({ key: (ctx) => ctx.tags.tenant ?? 'none' }) },
  ];
  for (const each of cases) {
    const store = memoryStore();
    const llm = createPipeline({ transport: inMemory, store }).use(each.build());
    const tenants = Array.from({ length: settings.keys }, (_, index) => `tenant-${index}`);
    const bytes = await bytesPerKey(
      (index) => llm.complete(request, { tags: { tenant: index < 0 ? 'warm-up' : (tenants[index] as string) } }),
      settings.keys,
      gc,
    );
    rows.push([each.label, String(settings.keys), String(store.size - 1), fixed(bytes, 0)]);
    // Keep the pipeline and its store reachable until measured.
    if (store.size < 0) console.log(llm);
  }
  console.log(`\nmemory per key (heap growth after a full GC, over ${settings.keys.toLocaleString('en-US')} keys):\n`);
  console.log(table(rows));
  console.log(`\n  the tenant names themselves are allocated before the measure; the store key strings, entries and values are counted`);
}

/** The full resilience pipeline as a bench client, over the network. */
function resilientClient(baseUrl: string): Client {
  return pipelineClient('resilient', resilient(openAICompatible({ baseUrl, apiKey }), 'all three'));
}

async function networkThroughput(): Promise<void> {
  const upstream = await startUpstream({ reply, chunks: contentChunks });
  const clients = [emptyPipeline(upstream.url), resilientClient(upstream.url)];
  const rows: string[][] = [
    ['mode', 'conc', 'client', 'req/s', '×empty', 'p50 ms', 'p99 ms', 'cpu µs/req', '+cpu µs vs empty', 'upstream busy'],
  ];
  const verdicts: string[] = [];
  try {
    for (const client of clients) {
      await client.complete(() => {});
      const before = consumed();
      await client.stream(() => {});
      if (client.name === 'pipeline' && consumed() === before) throw new Error('the empty pipeline read no stream content');
    }
    await upstream.reset();
    for (const stream of [false, true]) {
      const results = await interleave(
        clients.map((client): Contender => ({ name: client.name, call: stream ? client.stream : client.complete })),
        {
          rounds: settings.rounds,
          warmupRounds: settings.warmupRounds,
          limits: { concurrency: settings.concurrency, maxRequests: 100_000, maxMs: settings.runMs },
          afterRun: async () => (await upstream.reset()).cpuUs,
        },
      );
      const empty = results.get('pipeline') ?? [];
      const emptySummary = summarise(empty);
      const label = stream ? 'stream' : 'non-stream';
      for (const client of clients) {
        const runs = results.get(client.name) ?? [];
        const summary = summarise(runs);
        rows.push([
          label,
          String(settings.concurrency),
          client.name === 'pipeline' ? 'empty pipeline' : 'retry + breaker + rateLimit',
          fixed(summary.rps, 0),
          fixed(pairedRatio(runs, empty, (run) => run.rps), 3),
          fixed(summary.p50Ms, 3),
          fixed(summary.p99Ms, 3),
          fixed(summary.cpuUsPerRequest, 0),
          client.name === 'pipeline' ? '' : `+${fixed(summary.cpuUsPerRequest - emptySummary.cpuUsPerRequest, 0)}`,
          `${fixed(summary.upstreamBusy * 100, 0)}%`,
        ]);
      }
      const ratios = pairedRatios(results.get('resilient') ?? [], empty, (run) => run.rps);
      const keeps = median(ratios);
      verdicts.push(
        `${label}, c=${settings.concurrency}: keeps ${fixed(keeps, 3)} of the empty pipeline ` +
          `(rounds ${fixed(Math.min(...ratios), 2)} … ${fixed(Math.max(...ratios), 2)}; target ≥ 0.95) ${keeps >= 0.95 ? 'PASS' : 'MISS'}`,
      );
    }
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await upstream.close();
  }
  console.log(
    `\nover the network: upstream pid ${upstream.pid}, ${settings.rounds} rounds (+${settings.warmupRounds} warm-up) ` +
      `of ${settings.runMs} ms per client and mode, order rotated each round${quick ? ' (BENCH_QUICK)' : ''}\n`,
  );
  console.log(table(rows));
  console.log(`\n×empty is the median of per-round pairs (same round, seconds apart); other figures are medians over rounds`);
  console.log(`\ntarget, full resilience pipeline against the empty one:\n${verdicts.map((line) => `  ${line}`).join('\n')}`);
}

/**
 * Runs the four parts and prints their tables and the verdict.
 *
 * @throws when a call fails or the upstream child does not start
 * @example
 * ```ts
 * await run();
 * ```
 */
export async function run(): Promise<void> {
  const started = performance.now();
  console.log(`resilience: node ${process.version}, load average ${loadAverage()}\n`);
  await middlewareOverhead();
  await limiterDecisions();
  await memoryPerKey();
  await networkThroughput();
  console.log(`\nresilience: ${((performance.now() - started) / 1000).toFixed(1)} s, load average now ${loadAverage()}`);
  if (sink < 0) console.log(sink);
}

/** The 1-minute load average against the core count: a busy machine makes every figure noisier. */
function loadAverage(): string {
  return `${(os.loadavg()[0] ?? 0).toFixed(1)} on ${os.cpus().length} cores`;
}

