/**
 * What does `@sluice/cache` cost a call it cannot answer, and what does a
 * hit save?
 *
 * 0. In process, CPU µs per call at concurrency 64 (what the cache adds,
 *    free of network noise), non-stream and stream (22 chunks): the empty
 *    pipeline, the same with `cache()` on a cacheable miss (`temperature: 0`,
 *    every request new), and on a call its default `when` leaves alone
 *    (`temperature: 0.7`, bypassed). Twice: against an in-memory transport
 *    (the chunks are objects, as a middleware would make), and through
 *    core's undici transport over an in-memory dispatcher (the bytes an
 *    upstream sends, parsed and checked as real calls are: the path where
 *    the cache keeps the upstream's text of a chunk).
 * 1. A miss, at concurrency 64: the empty pipeline against the same
 *    pipeline with `cache()` in it, every request new (so every call hashes
 *    its request, misses, leads a flight, and stores its answer in the LRU),
 *    and against `cache({ rawJson: true })` over a transport made with
 *    `keepRawJson: true` (the answer stored as the upstream's own text, not
 *    serialised again; its figure includes the transport's cost of keeping
 *    that text, against the same pipeline without either; a stream is kept
 *    as the upstream's text by default already, so for streams the two
 *    differ only by that cost). Target: the cached pipeline keeps ≥ 0.95 of
 *    the empty one's throughput.
 * 2. A hit, at concurrency 1: raw undici's round trip to the mock (the
 *    floor of any call that goes upstream) against a call the cache answers,
 *    non-stream (latency) and stream (time to first chunk).
 *
 * Both contenders of a comparison run in the same rounds against the same
 * upstream (a child process), order rotated each round.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { type ChatCompletionRequest, createPipeline, openAICompatible, type Pipeline, type Transport } from '@sluice/core';
import { cache } from '@sluice/cache';
import { apiKey, contentChunks, rawUndici, reply, request, streamRequest } from './clients.js';
import { type Contender, fixed, interleave, median, pairedRatios, type RunResult, summarise, table, quick, roundSettings } from './lib.js';
import { startUpstream } from './upstream-server.js';
import { memoryCompletion, memoryDispatcher, memoryTransport } from './memory-transport.js';

/** Name to select this benchmark: `pnpm bench cache`. */
export const name = 'cache';
/** What it compares. */
export const description = 'cache overhead on a miss (c=64, target ≥ 0.95 of the pipeline without it) and a hit against raw undici';

const settings = {
  ...roundSettings(),
  maxRequests: 100_000,
};

let sequence = 0;
/** A request no call has sent before: always a miss. */
const fresh = (base: ChatCompletionRequest): ChatCompletionRequest => ({
  ...base,
  temperature: 0,
  messages: [...base.messages.slice(0, -1), { role: 'user', content: `Question ${++sequence}: why compose middleware?` }],
});

const completion = memoryCompletion();

/** Answers one event-loop turn later from memory, JSON or stream, so calls overlap as over a network. */
const transport = memoryTransport(completion, { overlap: true });
/** Core's undici transport, answered one event-loop turn later by a dispatcher in memory. */
const undiciInMemory = () => openAICompatible({ baseUrl: 'http://127.0.0.1:9/v1', apiKey, dispatcher: memoryDispatcher(completion) as never });

/** CPU µs per call of `llm`, 64 calls at a time, for about `ms`; a stream is read to its end. */
async function cpuPerCall(llm: Pipeline, stream: boolean, make: () => ChatCompletionRequest, ms: number): Promise<number> {
  let calls = 0;
  const started = performance.now();
  const before = process.cpuUsage();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (performance.now() - started < ms) {
        for (let batch = 0; batch < 20; batch++, calls++) {
          if (!stream) await llm.complete(make());
          else for await (const _chunk of llm.stream(make()));
        }
      }
    }),
  );
  const cpu = process.cpuUsage(before);
  return (cpu.user + cpu.system) / calls;
}

async function inProcess(): Promise<string> {
  const rows = [['in process, c=64', 'transport', 'contender', 'cpu µs/call', '+µs vs pipeline: median (rounds)']];
  for (const [via, make] of [['memory', () => transport], ['undici, memory', undiciInMemory]] as const) {
    for (const stream of [false, true]) await inProcessRows(rows, via, make, stream);
  }
  return table(rows);
}

/** One transport's rows of the in-process table: the pipeline, a miss and a bypassed call, rounds interleaved. */
async function inProcessRows(rows: string[][], via: string, transportOf: () => Transport, stream: boolean): Promise<void> {
  const contenders: Array<[string, Pipeline, () => ChatCompletionRequest]> = [
    ['pipeline', createPipeline({ transport: transportOf() }), () => fresh(request)],
    ['+ cache, miss (temperature 0)', createPipeline({ transport: transportOf() }).use(cache()), () => fresh(request)],
    ['+ cache, bypass (temperature 0.7)', createPipeline({ transport: transportOf() }).use(cache()), () => ({ ...fresh(request), temperature: 0.7 })],
  ];
  const samples: number[][] = contenders.map(() => []);
  for (let round = 0; round <= settings.rounds; round++) {
    for (let offset = 0; offset < contenders.length; offset++) {
      const index = (offset + round) % contenders.length;
      const [, llm, make] = contenders[index] as (typeof contenders)[number];
      const micros = await cpuPerCall(llm, stream, make, settings.runMs);
      if (round > 0) samples[index]?.push(micros);
    }
  }
  const base = samples[0] as number[];
  contenders.forEach(([label], index) => {
    const runs = samples[index] as number[];
    const added = runs.map((value, round) => value - (base[round] as number));
    rows.push([
      stream ? 'stream' : 'non-stream',
      via,
      label,
      fixed(median(runs), 1),
      index === 0 ? '' : `+${fixed(median(added), 1)} (${fixed(Math.min(...added), 1)} … ${fixed(Math.max(...added), 1)})`,
    ]);
  });
  await Promise.all(contenders.map(([, llm]) => llm.close()));
}

/** A miss row's req/s, ratio, p50, p99 and CPU per call. */
function rowFigures(runs: readonly RunResult[], ratio: number): string[] {
  const summary = summarise(runs);
  return [fixed(summary.rps, 0), fixed(ratio, 3), fixed(summary.p50Ms, 3), fixed(summary.p99Ms, 3), fixed(summary.cpuUsPerRequest, 0)];
}

function completeCall(llm: Pipeline, make: () => ChatCompletionRequest): Contender['call'] {
  return async () => {
    const reply = await llm.complete(make());
    if (reply.choices.length === 0) throw new Error('no choices');
  };
}

function streamCall(llm: Pipeline, make: () => ChatCompletionRequest): Contender['call'] {
  return async (firstChunk) => {
    let chunks = 0;
    for await (const _chunk of llm.stream(make())) {
      firstChunk();
      chunks++;
    }
    if (chunks === 0) throw new Error('no chunks');
  };
}

/**
 * Runs the benchmark and prints its tables and verdicts.
 *
 * @throws when a call fails or the upstream child does not start
 * @example
 * ```ts
 * await run();
 * ```
 */
export async function run(): Promise<void> {
  console.log(
    `cache: node ${process.version}, load average ${(os.loadavg()[0] ?? 0).toFixed(1)} on ${os.cpus().length} cores, ` +
      `${settings.rounds} rounds (+${settings.warmupRounds} warm-up) of ${settings.runMs} ms per contender${quick ? ' (BENCH_QUICK)' : ''}\n`,
  );
  console.log(`${await inProcess()}\n`);
  const upstream = await startUpstream({ reply, chunks: contentChunks });
  const transport = () => openAICompatible({ baseUrl: upstream.url, apiKey });
  const plain = createPipeline({ transport: transport() });
  const cached = createPipeline({ transport: transport() }).use(cache());
  const cachedRaw = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey, keepRawJson: true }) }).use(cache({ rawJson: true }));
  const undici = rawUndici(upstream.url);
  const limits = (concurrency: number) => ({ concurrency, maxRequests: settings.maxRequests, maxMs: settings.runMs });
  const options = { rounds: settings.rounds, warmupRounds: settings.warmupRounds };
  const afterRun = async () => (await upstream.reset()).cpuUs;
  const verdicts: string[] = [];
  try {
    const missRows: string[][] = [['miss, c=64', 'contender', 'req/s', '× no cache', 'p50 ms', 'p99 ms', 'cpu µs/req', '+cpu µs (× cpu)']];
    for (const stream of [false, true]) {
      const label = stream ? 'stream' : 'non-stream';
      const call = stream ? streamCall : completeCall;
      const base = stream ? streamRequest : request;
      const cachedNames = ['pipeline + cache', 'pipeline + cache (rawJson)'] as const;
      const results = await interleave(
        [
          { name: 'pipeline', call: call(plain, () => fresh(base)) },
          { name: cachedNames[0], call: call(cached, () => fresh(base)) },
          { name: cachedNames[1], call: call(cachedRaw, () => fresh(base)) },
        ],
        { ...options, limits: limits(64), afterRun },
      );
      const without = results.get('pipeline') ?? [];
      missRows.push([label, 'pipeline', ...rowFigures(without, 1), '']);
      for (const contender of cachedNames) {
        const runs = results.get(contender) ?? [];
        const ratios = pairedRatios(runs, without, (run) => run.rps);
        // CPU per call, paired by round too: the steadier figure on a shared machine.
        const addedCpu = median(runs.map((run, round) => run.cpuUsPerRequest - (without[round]?.cpuUsPerRequest ?? Number.NaN)));
        const cpuRatio = median(pairedRatios(runs, without, (run) => run.cpuUsPerRequest));
        const keeps = median(ratios);
        missRows.push([label, contender, ...rowFigures(runs, keeps), `+${fixed(addedCpu, 1)} (×${fixed(cpuRatio, 3)})`]);
        verdicts.push(
          `miss overhead, ${label}, ${contender.slice('pipeline + '.length)}, c=64: keeps ${keeps.toFixed(3)} of the pipeline without cache ` +
            `(rounds ${Math.min(...ratios).toFixed(2)} … ${Math.max(...ratios).toFixed(2)}; target ≥ 0.95) ${keeps >= 0.95 ? 'PASS' : 'MISS'}; ` +
            `CPU per call +${fixed(addedCpu, 1)} µs, ×${fixed(cpuRatio, 3)} (target ≤ 1.05) ${cpuRatio <= 1.05 ? 'PASS' : 'MISS'}`,
        );
      }
    }
    console.log(table(missRows));

    // Warm the cache with the one request every hit sends.
    const hit = { ...request, temperature: 0 };
    const hitStream = { ...streamRequest, temperature: 0 };
    await cached.complete(hit);
    for await (const _chunk of cached.stream(hitStream));
    const hitRows: string[][] = [['hit, c=1', 'contender', 'req/s', 'p50 ms', 'p99 ms', 'TTFC ms', 'cpu µs/req']];
    for (const stream of [false, true]) {
      const label = stream ? 'stream' : 'non-stream';
      const results = await interleave(
        [
          { name: 'undici (upstream)', call: stream ? undici.stream : undici.complete },
          { name: 'cache hit', call: stream ? streamCall(cached, () => hitStream) : completeCall(cached, () => hit) },
        ],
        { ...options, limits: limits(1), afterRun },
      );
      for (const [contender, runs] of results) {
        const summary = summarise(runs);
        hitRows.push([label, contender, fixed(summary.rps, 0), fixed(summary.p50Ms, 3), fixed(summary.p99Ms, 3), stream ? fixed(summary.ttfcMs, 3) : 'n/a', fixed(summary.cpuUsPerRequest, 0)]);
      }
      const pick = stream ? (run: { ttfcMs: number }) => run.ttfcMs : (run: { p50Ms: number }) => run.p50Ms;
      const ratio = median(pairedRatios(results.get('cache hit') ?? [], results.get('undici (upstream)') ?? [], pick));
      verdicts.push(`hit, ${label}: ${stream ? 'time to first chunk' : 'p50 latency'} is ${(ratio * 100).toFixed(1)}% of raw undici's round trip`);
    }
    console.log(`\n${table(hitRows)}`);
    console.log(`\nratios are medians of per-round pairs; other figures are medians over rounds`);
    console.log(`\n${verdicts.map((line) => `  ${line}`).join('\n')}`);
  } finally {
    await Promise.all([plain.close(), cached.close(), cachedRaw.close(), undici.close()]);
    await upstream.close();
  }
}
