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
 * Beside it, the heap each JSON call holds while it waits on its upstream
 * (calls held in flight by a transport that does not answer, measured after
 * a full collection): exact run to run. The row `all six, checked` is the
 * same six each behind a plain function, so that compose checks every step
 * as it does a user's middleware (what `keepsChainRules` saves).
 *
 * `BENCH_QUICK=1` counts 2,000 calls per stack instead of 10,000, and holds 2,000 in flight instead of 10,000.
 *
 * @module
 */
import { Session } from 'node:inspector/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { type CompletionContext, createPipeline, type Middleware, type Pipeline, type Transport } from '@sluice/core';
import { envNumber, fixed, quick, table } from './lib.js';
import { execFile } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { request, streamRequest } from './clients.js';
import { memoryCompletion, memoryTransport } from './memory-transport.js';
import { recommended } from './pipeline.bench.js';

const execFileAsync = promisify(execFile);

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

/** The garbage collector, reached without a command-line flag (for the bytes held in flight). */
function collector(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** A transport that answers nothing until told to: the calls it is sent stay in flight. */
function heldTransport(): Transport & { waiting: number; answerAll(): void } {
  const completion = memoryCompletion();
  const waiting: Array<() => void> = [];
  return {
    name: 'held',
    origin: 'memory://held',
    get waiting() {
      return waiting.length;
    },
    answerAll() {
      for (const answer of waiting.splice(0)) answer();
    },
    send(ctx: CompletionContext) {
      return new Promise<void>((resolve) => {
        waiting.push(() => {
          ctx.response = completion;
          ctx.usage = completion.usage ?? undefined;
          resolve();
        });
      });
    },
  };
}

/**
 * Bytes of heap each JSON call holds while it waits on the upstream: what
 * a pipeline at concurrency 64 keeps alive across a round trip (and the
 * garbage collector copies, or promotes), `inFlight` calls at once, after
 * a full collection each side. Exact to within a few bytes, run to run.
 */
async function heldPerCall(make: (transport: Transport) => Pipeline, gc: () => void, inFlight: number): Promise<number> {
  const transport = heldTransport();
  const llm = make(transport);
  const wave = async (calls: number) => {
    const settled = Array.from({ length: calls }, () => llm.complete(request));
    while (transport.waiting < calls) await new Promise((resolve) => setTimeout(resolve, 1));
    return settled;
  };
  try {
    // Warm up: every lazy table filled, every function compiled.
    for (let round = 0; round < 3; round++) {
      const settled = await wave(1_000);
      transport.answerAll();
      await Promise.all(settled);
    }
    gc();
    gc();
    const before = process.memoryUsage().heapUsed;
    const settled = await wave(inFlight);
    gc();
    gc();
    const during = process.memoryUsage().heapUsed;
    transport.answerAll();
    await Promise.all(settled);
    return (during - before) / inFlight;
  } finally {
    await llm.close();
  }
}

/**
 * Bytes each JSON call holds while it waits on a real HTTP upstream (in its
 * own process, answering after 1.5 s), `inFlight` at once, after a full
 * collection each side, beside what raw undici holds for the same call:
 * what the young-generation collector copies, for every call in flight, at
 * each scavenge. Counts the transport too, which the in-process figures
 * leave out. Each client is measured in a fresh process (`profile.ts`'s
 * `memory` mode): measured in this one, after the in-process runs, raw
 * undici's figure moved by a third from run to run.
 */
async function heldOverHttp(inFlight: number): Promise<Array<[string, number]>> {
  const profile = fileURLToPath(new URL('./profile.ts', import.meta.url));
  const figures: Array<[string, number]> = [];
  for (const [label, client] of [
    ['raw undici', 'undici'],
    ['empty pipeline', 'pipeline'],
    ['full pipeline', 'full'],
  ] as const) {
    const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', profile, client, 'memory', String(inFlight)], { cwd: dirname(profile) });
    const held = /([\d.]+) B held per call/.exec(stdout)?.[1];
    if (held === undefined) throw new Error(`profile.ts ${client} memory printed no figure: ${stdout}`);
    figures.push([label, Number(held)]);
  }
  return figures;
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
  // Each stack is made twice: around the in-memory transport, for the bytes allocated, and around
  // a transport that holds its calls, for the bytes held in flight.
  const makers: Array<[string, (transport: Transport) => Pipeline]> = [['empty', (transport) => createPipeline({ transport })]];
  for (const [label, make] of recommended) makers.push([label, (transport) => createPipeline({ transport }).use(make())]);
  makers.push([
    'all six',
    (transport) => {
      const six = createPipeline({ transport });
      for (const [, make] of recommended) six.use(make() as Middleware);
      return six;
    },
  ]);
  // The same six, each behind a plain function of its own, so that compose checks every step as it
  // does a user's middleware: what the six save by being marked with keepsChainRules, in the same run.
  makers.push([
    'all six, checked',
    (transport) => {
      const six = createPipeline({ transport });
      for (const [, make] of recommended) {
        const middleware = make();
        six.use((ctx, next) => middleware(ctx, next));
      }
      return six;
    },
  ]);
  const transport = memoryTransport(memoryCompletion());
  const stacks = makers.map(([label, make]): [string, Pipeline] => [label, make(transport)]);
  const gc = collector();
  const inFlight = quick ? 2_000 : 10_000;
  const session = new Session();
  session.connect();
  try {
    console.log(
      `alloc: node ${process.version}, ${calls} calls per stack and mode, one sample per ${interval} bytes; ` +
        `${inFlight} JSON calls held in flight${quick ? ' (BENCH_QUICK)' : ''}\n`,
    );
    const rows: string[][] = [['middleware', 'json B/call', '+B vs empty', 'stream B/call', '+B vs empty', 'held in flight B/call', '+B vs empty']];
    let empty: [number, number, number] | undefined;
    for (const [index, [label, llm]] of stacks.entries()) {
      const json = await bytesPerCall(session, llm, false);
      const stream = await bytesPerCall(session, llm, true);
      const held = await heldPerCall((makers[index] as [string, (transport: Transport) => Pipeline])[1], gc, inFlight);
      empty ??= [json, stream, held];
      const added = (value: number, base: number) => (label === 'empty' ? '' : `${value >= base ? '+' : ''}${fixed(value - base, 0)}`);
      rows.push([label, fixed(json, 0), added(json, empty[0]), fixed(stream, 0), added(stream, empty[1]), fixed(held, 0), added(held, empty[2])]);
    }
    console.log(table(rows));
    console.log(
      `\nbytes outside bench/ (the in-memory transport and this harness are not counted); the stream reads 22 chunks;` +
        `\nheld in flight: heap per JSON call waiting on its upstream, after a full collection (what concurrency keeps alive across a round trip)`,
    );
    const overHttp = await heldOverHttp(500);
    const undici = (overHttp[0] as [string, number])[1];
    console.log('\nheld per JSON call over HTTP, 500 in flight on the mock upstream (answering after 1.5 s), transport included, each client in a fresh process:\n');
    console.log(
      table([
        ['client', 'held B/call', '× raw undici'],
        ...overHttp.map(([label, held]) => [label, fixed(held, 0), fixed(held / undici, 2)]),
      ]),
    );
  } finally {
    session.disconnect();
    await Promise.all(stacks.map(([, llm]) => llm.close()));
  }
}
