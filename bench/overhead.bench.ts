/**
 * Where the empty pipeline's cost goes, for whoever works on core.
 *
 * 1. Over the network (same child-process upstream as `core`), at
 *    concurrency 1: raw undici, the transport alone
 *    (`openAICompatible().send(ctx)` on a hand-made context) and the whole
 *    empty pipeline. CPU per request and time to first chunk split the
 *    overhead between `open-ai-compatible.ts` and `pipeline.ts`.
 * 2. In process, no network: the pipeline around an in-memory transport,
 *    and the mechanisms it is built from, each timed alone.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { type ChatCompletionChunk, createPipeline, systemClock, type Transport } from '@sluice/core';
import { chatCompletionRequestSchema, parseOptions } from '@sluice/core/kit';
import { bareTransport, type Client, contentChunks, emptyPipeline, rawUndici, reply, request, streamRequest } from './clients.js';
import { fixed, interleave, median, summarise, table } from './lib.js';
import { startUpstream } from './upstream-server.js';
import { memoryCompletion } from './memory-transport.js';

/** Name to select this benchmark: `pnpm bench overhead`. */
export const name = 'overhead';
/** What it compares. */
export const description = 'where the empty pipeline spends its time: transport vs pipeline, and each mechanism alone';

const quick = process.env.BENCH_QUICK === '1';
const rounds = quick ? 2 : 5;
const runMs = quick ? 200 : 500;
const probeMs = quick ? 60 : 150;

const completion = memoryCompletion();
const chunks: ChatCompletionChunk[] = Array.from({ length: contentChunks + 4 }, (_, index) => ({
  id: 'chatcmpl-memory',
  object: 'chat.completion.chunk',
  created: 0,
  model: 'gpt-4.1',
  choices: [{ index: 0, delta: { content: `word${index} ` }, finish_reason: null }],
}));
async function* memoryChunks(): AsyncGenerator<ChatCompletionChunk> {
  for (const chunk of chunks) yield chunk;
}
async function* passThrough<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  for await (const item of source) yield item;
}

/** A transport that answers from memory, so only the pipeline is left to time. */
const memoryTransport: Transport = {
  name: 'memory',
  origin: 'memory://',
  // It answers at once: nothing outlasts an abort, and the pipeline need not race it.
  honoursAbort: true,
  async send(ctx) {
    if (ctx.stream) ctx.chunks = memoryChunks();
    else {
      ctx.response = completion;
      ctx.usage = completion.usage ?? undefined;
    }
  },
};

let sink = 0;
const noop = () => {};
const inMemory = createPipeline({ transport: memoryTransport });
const inMemoryUnvalidated = createPipeline({ transport: memoryTransport, validateRequests: false });

/** Each probe: what it times, and where that cost sits in packages/core/src. */
const probes: Array<{ label: string; where: string; fn: () => unknown }> = [
  { label: 'pipeline.complete, in-memory transport', where: 'pipeline.ts Pipeline.run', fn: () => inMemory.complete(request) },
  {
    label: '  same, validateRequests: false',
    where: 'pipeline.ts parseRequest',
    fn: () => inMemoryUnvalidated.complete(request),
  },
  {
    label: '  same, the request spread from another with a field added',
    where: 'pipeline.ts parseRequest (plainCopy)',
    fn: () => inMemory.complete({ ...request, temperature: 0 }),
  },
  {
    label: 'request schema parse (zod)',
    where: 'pipeline.ts parseRequest',
    fn: () => parseOptions(chatCompletionRequestSchema, request, 'request'),
  },
  {
    label: 'AbortController, its signal, one listener',
    where: 'pipeline.ts createContext; open-ai-compatible.ts Attempt',
    fn: () => {
      const controller = new AbortController();
      controller.signal.addEventListener('abort', noop, { once: true });
      controller.signal.removeEventListener('abort', noop);
    },
  },
  {
    label: 'clock.setTimeout + clearTimeout',
    where: 'open-ai-compatible.ts Attempt.arm, readEvents idle timer',
    fn: () => systemClock.clearTimeout(systemClock.setTimeout(noop, 60_000)),
  },
  {
    label: `pipeline.stream, in-memory transport, ${chunks.length} chunks`,
    where: 'pipeline.ts stream, settlement.ts settleWhenDone ×2',
    fn: async () => {
      for await (const chunk of inMemory.stream(streamRequest)) sink += chunk.choices.length;
    },
  },
  {
    label: `  the same ${chunks.length} chunks, iterated directly`,
    where: '(baseline)',
    fn: async () => {
      for await (const chunk of memoryChunks()) sink += chunk.choices.length;
    },
  },
  {
    label: `  through one more async generator layer`,
    where: 'each of settleWhenDone ×2, stream(), readEvents',
    fn: async () => {
      for await (const chunk of passThrough(memoryChunks())) sink += chunk.choices.length;
    },
  },
];

/** CPU time (µs, all threads, so GC included) per call of `fn`, run back to back for `ms`. */
async function perCall(fn: () => unknown, ms: number): Promise<number> {
  let calls = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  while (performance.now() - started < ms) {
    for (let index = 0; index < 100; index++) await fn();
    calls += 100;
  }
  const cpu = process.cpuUsage(cpuBefore);
  return (cpu.user + cpu.system) / calls;
}

async function networkSplit(): Promise<string[][]> {
  const upstream = await startUpstream({ reply, chunks: contentChunks });
  const clients: Client[] = [rawUndici(upstream.url), bareTransport(upstream.url), emptyPipeline(upstream.url)];
  const rows: string[][] = [['mode', 'client', 'cpu µs/req', '+ vs previous', 'p50 ms', 'TTFC ms']];
  try {
    for (const stream of [false, true]) {
      const results = await interleave(
        clients.map((client) => ({ name: client.name, call: stream ? client.stream : client.complete })),
        {
          rounds,
          warmupRounds: 1,
          limits: { concurrency: 1, maxRequests: 100_000, maxMs: runMs },
          afterRun: async () => (await upstream.reset()).cpuUs,
        },
      );
      let previous = Number.NaN;
      for (const client of clients) {
        const summary = summarise(results.get(client.name) ?? []);
        rows.push([
          stream ? 'stream' : 'non-stream',
          client.name,
          fixed(summary.cpuUsPerRequest, 0),
          Number.isNaN(previous) ? '' : `+${fixed(summary.cpuUsPerRequest - previous, 0)}`,
          fixed(summary.p50Ms, 3),
          stream ? fixed(summary.ttfcMs, 3) : 'n/a',
        ]);
        previous = summary.cpuUsPerRequest;
      }
    }
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await upstream.close();
  }
  return rows;
}

/**
 * Runs both parts and prints their tables.
 *
 * @throws when a client fails or the upstream child does not start
 * @example
 * ```ts
 * await run();
 * ```
 */
export async function run(): Promise<void> {
  const started = performance.now();
  const network = await networkSplit();
  console.log('over the network, concurrency 1 (cpu: client process, harness included):\n');
  console.log(table(network));

  const samples = probes.map(() => [] as number[]);
  for (let round = 0; round <= rounds; round++) {
    for (const [index, probe] of probes.entries()) {
      const micros = await perCall(probe.fn, probeMs);
      if (round > 0) samples[index]?.push(micros);
    }
  }
  console.log('\nin process, no network (CPU µs per call, GC included, median of rounds):\n');
  console.log(
    table([
      ['probe', 'cpu µs/call', 'where in packages/core/src'],
      ...probes.map((probe, index) => [probe.label, fixed(median(samples[index] ?? []), 2), probe.where]),
    ]),
  );
  console.log(`\noverhead: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (sink < 0) console.log(sink);
}
