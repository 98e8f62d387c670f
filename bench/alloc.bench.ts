/**
 * The allocation benchmark: bytes each middleware of the full pipeline
 * allocates per call, JSON and stream, beside the empty pipeline's, in
 * process against an in-memory transport (the transport's own objects
 * are left out of every figure).
 *
 * Counted with V8's sampling heap profiler, which sees every allocation
 * (collected objects included) one sample per `BENCH_ALLOC_INTERVAL`
 * bytes (default 64): unlike a timing, the figure does not move with the
 * machine's load, so it tells a change that allocates less from noise.
 * Allocation is what a pipeline at concurrency 64 pays for twice: in
 * the young generation, and again when its objects outlive a network
 * round trip and are promoted.
 *
 * `BENCH_QUICK=1` counts 2,000 calls per stack instead of 10,000.
 *
 * @module
 */
import { Session } from 'node:inspector/promises';
import { createPipeline, type Middleware, type Pipeline } from '@sluice/core';
import { envNumber, fixed, quick, table } from './lib.js';
import { request, streamRequest } from './clients.js';
import { memoryCompletion, memoryTransport } from './memory-transport.js';
import { recommended } from './pipeline.bench.js';

/** Name to select this benchmark: `pnpm bench alloc`. */
export const name = 'alloc';
/** What it compares. */
export const description = 'bytes allocated per call by each middleware of the full pipeline and by all six, against the empty pipeline, JSON and stream';

const calls = envNumber('BENCH_CALLS') ?? (quick ? 2_000 : 10_000);
const interval = envNumber('BENCH_ALLOC_INTERVAL') ?? 64;

interface SampledNode {
  id: number;
  callFrame: { url: string };
  children: SampledNode[];
}
interface SamplingProfile {
  head: SampledNode;
  samples: Array<{ size: number; nodeId: number }>;
}

/** Bytes per call allocated by functions outside `bench/` (what the transport and this harness allocate themselves is left out). */
async function bytesPerCall(session: Session, llm: Pipeline, stream: boolean): Promise<number> {
  const call = async () => {
    if (!stream) await llm.complete(request);
    else for await (const _chunk of llm.stream(streamRequest));
  };
  // Warm up so that every function is compiled and every lazy table filled.
  for (let index = 0; index < 2_000; index++) await call();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: interval,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  } as never);
  for (let index = 0; index < calls; index++) await call();
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: SamplingProfile };
  const harness = new Set<number>();
  const visit = (node: SampledNode): void => {
    if (node.callFrame.url.includes('/bench/')) harness.add(node.id);
    for (const child of node.children) visit(child);
  };
  visit(profile.head);
  let bytes = 0;
  for (const sample of profile.samples) if (!harness.has(sample.nodeId)) bytes += sample.size;
  return bytes / calls;
}

/**
 * Runs the benchmark and prints bytes per call by stack.
 *
 * @example
 * ```ts
 * await run();
 * ```
 */
export async function run(): Promise<void> {
  const transport = memoryTransport(memoryCompletion());
  const stacks: Array<[string, Pipeline]> = [['empty', createPipeline({ transport })]];
  for (const [label, make] of recommended) stacks.push([label, createPipeline({ transport }).use(make())]);
  const all = createPipeline({ transport });
  for (const [, make] of recommended) all.use(make() as Middleware);
  stacks.push(['all six', all]);
  const session = new Session();
  session.connect();
  try {
    console.log(`alloc: node ${process.version}, ${calls} calls per stack and mode, one sample per ${interval} bytes${quick ? ' (BENCH_QUICK)' : ''}\n`);
    const rows: string[][] = [['middleware', 'json B/call', '+B vs empty', 'stream B/call', '+B vs empty']];
    let empty: [number, number] | undefined;
    for (const [label, llm] of stacks) {
      const json = await bytesPerCall(session, llm, false);
      const stream = await bytesPerCall(session, llm, true);
      empty ??= [json, stream];
      const added = (value: number, base: number) => (label === 'empty' ? '' : `${value >= base ? '+' : ''}${fixed(value - base, 0)}`);
      rows.push([label, fixed(json, 0), added(json, empty[0]), fixed(stream, 0), added(stream, empty[1])]);
    }
    console.log(table(rows));
    console.log(`\nbytes outside bench/ (the in-memory transport and this harness are not counted); the stream reads 22 chunks`);
  } finally {
    session.disconnect();
    await Promise.all(stacks.map(([, llm]) => llm.close()));
  }
}
