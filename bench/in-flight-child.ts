/**
 * Child process of the `in-flight` benchmark: what the full recommended
 * pipeline adds to the empty one per call, in process, at concurrency 1,
 * 64 and 512, with the collector's pauses, reported over IPC. A child of
 * its own, so that the parent can start it with the V8 flags it compares.
 *
 * Only its types may be imported (`import type`): importing it runs it.
 * Run by `in-flight.bench.ts` through `fork()`, with the parent's tsx loader.
 *
 * @module
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { createPipeline, type Middleware, type Pipeline } from '@sluice/core';
import { request } from './clients.js';
import { cpuPerCall, median } from './lib.js';
import { memoryCompletion, memoryTransport } from './memory-transport.js';
import { recommended } from './pipeline.bench.js';

/** One concurrency's figures: medians over rounds of what the six add per call. */
export interface InFlightFigure {
  concurrency: number;
  /** CPU µs per call, full pipeline minus empty pipeline. */
  addedUs: number;
  /** Collector pause µs per call, full minus empty. */
  addedGcUs: number;
  /** CPU µs per call of the empty pipeline. */
  emptyUs: number;
}

/** What a child sends its parent. */
export type InFlightMessage = { type: 'figures'; figures: InFlightFigure[] };

const concurrencies = [1, 64, 512];
const rounds = Number(process.env.BENCH_IN_FLIGHT_ROUNDS ?? 6);
const runMs = Number(process.env.BENCH_IN_FLIGHT_MS ?? 250);

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMs += entry.duration;
}).observe({ entryTypes: ['gc'] });

/** CPU µs and collector pause µs per call of `llm`, `concurrency` calls at a time, for about `ms`. */
async function perCall(llm: Pipeline, concurrency: number, ms: number): Promise<[cpuUs: number, gcUs: number]> {
  let calls = 0;
  gcMs = 0;
  const cpuUs = await cpuPerCall({ fn: () => (calls++, llm.complete(request)), concurrency }, ms);
  // The observer hears of the last pauses a turn later.
  await new Promise((resolve) => setTimeout(resolve, 5));
  return [cpuUs, (gcMs * 1000) / calls];
}

async function main(): Promise<void> {
  // Answered one event-loop turn later, so that calls overlap as over a network.
  const transport = memoryTransport(memoryCompletion(), { overlap: true });
  const full = createPipeline({ transport });
  for (const [, make] of recommended) full.use(make() as Middleware);
  const empty = createPipeline({ transport });
  for (const concurrency of concurrencies) {
    await perCall(full, concurrency, runMs);
    await perCall(empty, concurrency, runMs);
  }
  const samples = new Map<number, { added: number[]; gc: number[]; empty: number[] }>();
  for (let round = 0; round < rounds; round++) {
    for (const concurrency of concurrencies) {
      // Order alternated by round, so that neither always runs on the other's garbage.
      const [first, second] = round % 2 === 0 ? [full, empty] : [empty, full];
      const a = await perCall(first, concurrency, runMs);
      const b = await perCall(second, concurrency, runMs);
      const [withSix, without] = round % 2 === 0 ? [a, b] : [b, a];
      const entry = samples.get(concurrency) ?? { added: [], gc: [], empty: [] };
      entry.added.push(withSix[0] - without[0]);
      entry.gc.push(withSix[1] - without[1]);
      entry.empty.push(without[0]);
      samples.set(concurrency, entry);
    }
  }
  const figures = concurrencies.map((concurrency) => {
    const entry = samples.get(concurrency) as { added: number[]; gc: number[]; empty: number[] };
    return { concurrency, addedUs: median(entry.added), addedGcUs: median(entry.gc), emptyUs: median(entry.empty) };
  });
  await Promise.all([full.close(), empty.close()]);
  process.send?.({ type: 'figures', figures } satisfies InFlightMessage);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
