/**
 * The budget benchmark: is what `budget` and `trackCost` cost a call flat
 * in the number of calls in flight and in the number of keys, and does
 * memory stay flat over a million distinct keys?
 *
 * 1. Reserve + settle, the store update pairs alone: CPU per pair on a
 *    memory store with 1, 64 and 512 other holds in flight on the same
 *    record, for the slotted record and, in the same run, for the record
 *    of the last release before it (one hold per call id, read from git).
 * 2. Each middleware of the full pipeline alone (`trackCost`, `trimContext`,
 *    `budget`, `retry`, `breaker`, `rateLimit`, as `pnpm bench pipeline`
 *    configures them) in a pipeline, in process: CPU per call added to the
 *    empty pipeline's at 1, 64 and 512 calls in flight (`budget` has one
 *    global limit, so all of them share one record), against the
 *    middleware's own figure at 1 in flight.
 * 3. `budget({ key: { tag } })`, `trackCost()`, and the other keyed
 *    middleware, `rateLimit({ key: { tag } })` and `breaker({ key: { tag } })`,
 *    per call over 10, 10,000 and 1,000,000 distinct keys (tenants), each on
 *    its own default memory store filled first, against the figure at 10 keys.
 *    Tenants come in turn (each last seen as many calls ago as there are
 *    keys), which the verdict uses; beside it, for information, the most
 *    keys again with tenants drawn Zipf(1), as a service's traffic by
 *    tenant comes: a few busy, a long tail, in no order a prefetcher follows.
 * 4. Memory: a child process (`--expose-gc`) runs trackCost, a keyed
 *    budget, a keyed rate limit and a keyed breaker over distinct tenants,
 *    one call each, on the default memory
 *    store (bounded at 100,000 records), and reads its RSS after a full GC
 *    at 100,000 and at 1,000,000 calls. Target: within 50 MB.
 *
 * Figures are CPU time (`process.cpuUsage()`), medians over interleaved
 * rounds; ratios are medians of per-round ratios, with their spread.
 *
 * @module
 */
import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createPipeline, type Middleware, memoryStore, type Pipeline, type Store } from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { budget, trackCost } from '@sluice/cost';
import { rateLimit } from '@sluice/ratelimit';
import { holdSlot, reserveHold, settleHold } from '../packages/cost/src/budget-bucket.js';
import { request } from './clients.js';
import { memoryCompletion, memoryTransport } from './memory-transport.js';
import { fixed, median, type Probe, probeRounds as probeRoundsOf, quick, roundSettings, table } from './lib.js';
import { recommended } from './pipeline.bench.js';

/** Name to select this benchmark: `pnpm bench budget`. */
export const name = 'budget';
/** What it compares. */
export const description =
  'each middleware of the full pipeline per call: flat in calls in flight (1/64/512); budget, trackCost, rateLimit and breaker flat in keys (10/10k/1M); memory over 1M distinct keys';

const settings = {
  ...roundSettings(),
  probeMs: quick ? 60 : 200,
  inFlight: [1, 64, 512],
  keys: quick ? [10, 1_000, 10_000] : [10, 10_000, 1_000_000],
  /** Checkpoints of the memory run; the first is also its store's bound (100,000 is memoryStore's default). */
  memoryCalls: quick ? [10_000, 30_000] : [100_000, 1_000_000],
};

/** A ratio to the 1-in-flight or 10-key figure up to this counts as flat (the rest is noise on a shared machine). */
const flatUpTo = 1.5;

/** The commit before budget records aggregated holds into slots: its reducers are the "before" figures. */
const before = '34930d918d15f62923ee0dafc71d848c5ab17777';

const completion = memoryCompletion('ok');

/** Answers at once from memory. */
const inMemory = memoryTransport(completion);
/** The same answer one event-loop turn later, so that calls overlap as they do over a network. */
const overlappingTransport = memoryTransport(completion, { overlap: true });

/** A limit no run reaches: every call is reserved for and admitted. */
const unreachable = 1e12;

/** Every probe once per round, order rotated, after one warm-up round: samples[probe][round]. */
const probeRounds = (probes: readonly Probe[]) => probeRoundsOf(probes, settings.rounds, settings.probeMs);

/** Per-round ratios of `runs` to `baseline`: median, lowest and highest. */
function ratio(runs: readonly number[], baseline: readonly number[]): { median: number; low: number; high: number } {
  const ratios = runs.map((value, index) => value / (baseline[index] as number));
  return { median: median(ratios), low: Math.min(...ratios), high: Math.max(...ratios) };
}

const spread = (r: { low: number; high: number }) => `${fixed(r.low, 2)} … ${fixed(r.high, 2)}`;
const verdict = (r: { median: number }) => (r.median <= flatUpTo ? 'flat' : 'NOT FLAT');

// ---------------------------------------------------------------- 1. reducers

/** A budget record's reserve and settle, as one implementation writes them. */
interface Reducers {
  label: string;
  /** Reserves a hold; resolves its settle. */
  reserve(store: Store, index: number): Promise<() => Promise<unknown>>;
}

const slotted: Reducers = {
  label: 'slotted (this version)',
  async reserve(store, index) {
    const now = Date.now();
    const hold = { id: `call-${index}`, usd: 0.01, slot: holdSlot(now, 900_000, undefined) };
    await store.update('k', reserveHold(hold, unreachable, false, now));
    return () => store.update('k', settleHold(hold, true, 0.005, unreachable, [0.8], Date.now()));
  },
};

interface OldBucketModule {
  reserveHold(id: string, usd: number, limitUsd: number, force: boolean): (current: unknown) => unknown;
  settleHold(id: string, usd: number, limitUsd: number, warnAt: readonly number[]): (current: unknown) => unknown;
}

/** The reducers of the commit before slots, from git, or undefined when git or the commit is not at hand. */
async function previousReducers(): Promise<Reducers | undefined> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  let source: string;
  try {
    source = execFileSync('git', ['show', `${before}:packages/cost/src/budget-bucket.ts`], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
  const usage = pathToFileURL(join(root, 'packages/cost/src/usage-tokens.ts')).href;
  const file = join(mkdtempSync(join(os.tmpdir(), 'sluice-budget-')), 'budget-bucket.ts');
  writeFileSync(file, source.replace("'./usage-tokens.js'", `'${usage}'`));
  const old = (await import(pathToFileURL(file).href)) as OldBucketModule;
  return {
    label: `one hold per call (${before.slice(0, 7)})`,
    async reserve(store, index) {
      const id = `call-${index}`;
      await store.update('k', old.reserveHold(id, 0.01, unreachable, false));
      return () => store.update('k', old.settleHold(id, 0.005, unreachable, [0.8]));
    },
  };
}

/** A probe doing one reserve + settle pair per call while `inFlight` other holds stay on the record. */
function pairProbe(reducers: Reducers, inFlight: number): Probe {
  const store = memoryStore();
  const pending: Array<() => Promise<unknown>> = [];
  let index = 0;
  return {
    async fn() {
      while (pending.length < inFlight) pending.push(await reducers.reserve(store, index++));
      pending.push(await reducers.reserve(store, index++));
      await (pending.shift() as () => Promise<unknown>)();
    },
  };
}

async function reducerPairs(): Promise<void> {
  const previous = await previousReducers();
  const implementations = previous ? [slotted, previous] : [slotted];
  const probes = implementations.flatMap((reducers) => settings.inFlight.map((count) => pairProbe(reducers, count)));
  const samples = await probeRounds(probes);
  const rows: string[][] = [['record', 'holds in flight', 'µs / reserve+settle', '× at 1 in flight (rounds)', 'verdict']];
  implementations.forEach((reducers, which) => {
    const base = samples[which * settings.inFlight.length] as number[];
    settings.inFlight.forEach((count, offset) => {
      const runs = samples[which * settings.inFlight.length + offset] as number[];
      const r = ratio(runs, base);
      rows.push([reducers.label, String(count), fixed(median(runs), 2), `${fixed(r.median, 2)} (${spread(r)})`, verdict(r)]);
    });
  });
  console.log('1. reserve + settle on one budget record (memory store, the store updates alone):\n');
  console.log(table(rows));
  if (!previous) console.log(`\n  (the previous reducers were not measured: commit ${before.slice(0, 7)} is not in this checkout)`);
  console.log('  the issue measured the previous record at 9 µs (0 in flight), 175 µs (64) and 636 µs (256) per pair');
}

// ---------------------------------------------------------------- 2. in flight

/**
 * Each middleware of the full pipeline alone, in a pipeline, in process:
 * what it adds to the empty pipeline's CPU per call at 1, 64 and 512 calls
 * in flight, against its own figure at 1 (the target is each middleware's,
 * as the keys part measures it; `pnpm bench in-flight` has the six together).
 * Everything runs in one set of rounds, order rotated, so that each
 * middleware's figure and the empty pipeline's it is taken from share a round.
 */
async function inFlight(): Promise<void> {
  const stacks = recommended;
  // Probes per concurrency: the empty pipeline, then each middleware alone.
  const probes = settings.inFlight.flatMap((concurrency): Probe[] => {
    const empty = createPipeline({ transport: overlappingTransport });
    return [
      { fn: () => empty.complete(request), concurrency },
      ...stacks.map(([, make]): Probe => {
        const alone = createPipeline({ transport: overlappingTransport }).use(make());
        return { fn: () => alone.complete(request), concurrency };
      }),
    ];
  });
  const samples = await probeRounds(probes);
  const width = stacks.length + 1;
  const sample = (which: number, stack: number) => samples[which * width + stack] as number[];
  const added = (which: number, stack: number) => sample(which, stack + 1).map((value, round) => value - (sample(which, 0)[round] as number));
  const rows: string[][] = [['middleware', 'in flight', 'empty µs/call', 'with it µs/call', 'it adds µs', 'added × at 1 (rounds)', 'verdict']];
  const verdicts: string[] = [];
  stacks.forEach(([label], stack) => {
    settings.inFlight.forEach((count, which) => {
      const r = ratio(added(which, stack), added(0, stack));
      rows.push([
        which === 0 ? label : '',
        String(count),
        fixed(median(sample(which, 0)), 1),
        fixed(median(sample(which, stack + 1)), 1),
        fixed(median(added(which, stack)), 2),
        which === 0 ? '1.00' : `${fixed(r.median, 2)} (${spread(r)})`,
        which === 0 ? '' : verdict(r),
      ]);
      if (which > 0) verdicts.push(verdict(r));
    });
  });
  console.log('\n2. each middleware of the full pipeline alone, in a pipeline, in process, calls overlapping (budget: one global limit, so every call in flight shares its record):\n');
  console.log(table(rows));
  const flat = verdicts.filter((v) => v === 'flat').length;
  console.log(`\n  ${flat} of ${verdicts.length} flat (≤ ${flatUpTo}× the middleware's own figure at 1 in flight)`);
  console.log('  the issue measured budget() alone at 3.25× the empty pipeline\'s CPU at concurrency 64 before its records held slots');
}

// ---------------------------------------------------------------- 3. keys

/** How the tenants of a keyed probe come: in turn (each last seen `keys` calls ago), or drawn Zipf(1) (a few busy, a long tail, at random). */
type KeyOrder = 'in turn' | 'zipf';

/**
 * 2^20 tenant numbers drawn from Zipf(1) over `keys` (tenant k about as
 * often as 1/k), from a fixed seed: what a service's traffic by tenant
 * looks like, beside the in-turn order (which walks the records in the
 * order they were made, and so lets the hardware prefetch them).
 * Inverse of the harmonic CDF, H(k) ≈ ln k + γ, so k ≈ e^(u·H(keys) − γ).
 */
function zipfDraws(keys: number): Uint32Array {
  const gamma = 0.5772156649;
  const total = Math.log(keys) + gamma;
  let seed = 0x9e3779b9;
  const random = () => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const draws = new Uint32Array(1 << 20);
  for (let index = 0; index < draws.length; index++) {
    draws[index] = Math.min(keys, Math.max(1, Math.floor(Math.exp(random() * total - gamma)))) - 1;
  }
  return draws;
}

/** The tenant number of each call, in `order`, as a function of the call's index. */
function tenantOf(keys: number, order: KeyOrder): (index: number) => number {
  if (order === 'in turn') return (index) => index % keys;
  const draws = zipfDraws(keys);
  return (index) => draws[index & (draws.length - 1)] as number;
}

/** A pipeline over its own default memory store, cycling through `keys` tenants, filled before it is measured. */
async function keyedProbe(middleware: Middleware, keys: number, order: KeyOrder = 'in turn'): Promise<Probe> {
  const store = memoryStore();
  const llm: Pipeline = createPipeline({ transport: inMemory, store }).use(middleware);
  const tenant = tenantOf(keys, order);
  let next = 0;
  const call = () => llm.complete(request, { tags: { tenant: `t${tenant(next++)}` } });
  // Filled as a long-running process would be: every key seen, or the store at its bound.
  for (let index = Math.min(keys, 110_000); index > 0; index--) await call();
  return { fn: call };
}

/** Two updates of a small record in a default memory store, per call, cycling through `keys` keys: the store's own share. */
async function storeProbe(keys: number, order: KeyOrder = 'in turn'): Promise<Probe> {
  const store = memoryStore();
  const tenant = tenantOf(keys, order);
  let next = 0;
  const call = async () => {
    const key = `sluice:cost:budget:tenant:t${tenant(next++)}:day:2026-12-02`;
    await store.update<{ n: number }>(key, (current) => ({ n: (current?.n ?? 0) + 1 }), 60_000);
    await store.update<{ n: number }>(key, (current) => ({ n: (current?.n ?? 0) + 1 }), 60_000);
  };
  for (let index = Math.min(keys, 110_000); index > 0; index--) await call();
  return { fn: call };
}

async function perKey(): Promise<void> {
  const empty = createPipeline({ transport: inMemory });
  const kinds = [
    { label: 'budget({ key: { tag } })', probe: (keys: number, order?: KeyOrder) => keyedProbe(budget({ key: { tag: 'tenant' }, limitUsd: unreachable, period: 'day' }), keys, order) },
    { label: 'trackCost()', probe: (keys: number, order?: KeyOrder) => keyedProbe(trackCost(), keys, order) },
    { label: 'rateLimit({ key: { tag } })', probe: (keys: number, order?: KeyOrder) => keyedProbe(rateLimit({ key: { tag: 'tenant' }, rpm: unreachable }) as unknown as Middleware, keys, order) },
    { label: 'breaker({ key: { tag } })', probe: (keys: number, order?: KeyOrder) => keyedProbe(breaker({ key: { tag: 'tenant' } }) as unknown as Middleware, keys, order) },
    { label: 'memoryStore: 2 updates alone', probe: storeProbe },
  ];
  const probes: Probe[] = [{ fn: () => empty.complete(request) }];
  for (const kind of kinds) for (const keys of settings.keys) probes.push(await kind.probe(keys));
  // The most keys again, drawn Zipf(1): measured in the same rounds, after the in-turn probes.
  const most = settings.keys[settings.keys.length - 1] as number;
  for (const kind of kinds) probes.push(await kind.probe(most, 'zipf'));
  const samples = await probeRounds(probes);
  const base = samples[0] as number[];
  const rows: string[][] = [['measured', 'keys', 'µs/call', 'adds µs', 'added × at 10 keys (rounds)', 'verdict']];
  kinds.forEach((kind, which) => {
    const alone = which === kinds.length - 1;
    const added = settings.keys.map((_, index) =>
      (samples[1 + which * settings.keys.length + index] as number[]).map((value, round) => (alone ? value : value - (base[round] as number))),
    );
    settings.keys.forEach((keys, index) => {
      const runs = samples[1 + which * settings.keys.length + index] as number[];
      const r = ratio(added[index] as number[], added[0] as number[]);
      rows.push([kind.label, keys.toLocaleString('en-US'), fixed(median(runs), 1), alone ? '' : fixed(median(added[index] as number[]), 1), `${fixed(r.median, 2)} (${spread(r)})`, verdict(r)]);
    });
  });
  console.log(`\n3. per call over distinct keys (tenants), one call after another; the empty pipeline costs ${fixed(median(base), 1)} µs/call:\n`);
  console.log(table(rows));
  console.log(
    '  each has its own memoryStore() (default bound: 100,000 records), filled before it is measured; past its bound, every' +
      '\n  call of the keyed budget creates a record and evicts one, which the "memoryStore alone" rows time without sluice',
  );
  // The same middleware over the most keys, tenants drawn Zipf(1): the verdict above stays with the in-turn order.
  const zipfRows: string[][] = [['measured', 'keys, Zipf(1)', 'µs/call', 'adds µs', 'added × at 10 keys (rounds)', 'in turn, same keys']];
  const firstZipf = 1 + kinds.length * settings.keys.length;
  kinds.forEach((kind, which) => {
    const alone = which === kinds.length - 1;
    const addedOf = (runs: number[]) => runs.map((value, round) => (alone ? value : value - (base[round] as number)));
    const runs = samples[firstZipf + which] as number[];
    const atTen = addedOf(samples[1 + which * settings.keys.length] as number[]);
    const inTurn = addedOf(samples[1 + which * settings.keys.length + settings.keys.length - 1] as number[]);
    const r = ratio(addedOf(runs), atTen);
    zipfRows.push([kind.label, most.toLocaleString('en-US'), fixed(median(runs), 1), alone ? '' : fixed(median(addedOf(runs)), 1), `${fixed(r.median, 2)} (${spread(r)})`, `${fixed(ratio(inTurn, atTen).median, 2)}`]);
  });
  console.log(`\n3b. the same over ${most.toLocaleString('en-US')} tenants drawn Zipf(1) (tenant k about as often as 1/k), as a service's traffic comes; informational:\n`);
  console.log(table(zipfRows));
}

// ---------------------------------------------------------------- 4. memory

interface MemoryPoint {
  calls: number;
  rssMb: number;
  heapMb: number;
  records: number;
}

/** The child: trackCost, a keyed budget, rate limit and breaker over distinct tenants, RSS after a full GC at each checkpoint. */
async function memoryChild(checkpoints: number[]): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the memory child with --expose-gc');
  const store = memoryStore({ maxEntries: checkpoints[0] as number });
  const llm = createPipeline({ transport: inMemory, store })
    .use(trackCost())
    .use(budget({ key: { tag: 'tenant' }, limitUsd: unreachable, period: 'day' }))
    .use(breaker({ key: { tag: 'tenant' } }))
    .use(rateLimit({ key: { tag: 'tenant' }, rpm: unreachable }));
  let calls = 0;
  for (const checkpoint of checkpoints) {
    for (; calls < checkpoint; calls++) await llm.complete(request, { tags: { tenant: `tenant-${calls}` } });
    gc();
    gc();
    const usage = process.memoryUsage();
    const point: MemoryPoint = { calls, rssMb: usage.rss / 2 ** 20, heapMb: usage.heapUsed / 2 ** 20, records: store.size };
    process.send?.(point);
  }
  await llm.close();
}

async function memory(): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['--memory-child', ...settings.memoryCalls.map(String)], {
    execArgv: [...process.execArgv, '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const points: MemoryPoint[] = [];
  child.on('message', (point: MemoryPoint) => points.push(point));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0 || points.length !== settings.memoryCalls.length) throw new Error(`the memory child exited with ${code}`);
  const [first, last] = [points[0] as MemoryPoint, points[points.length - 1] as MemoryPoint];
  const grew = last.rssMb - first.rssMb;
  console.log(
    `\n4. memory: trackCost() + budget, breaker and rateLimit keyed by { tag }, one call per distinct tenant, on a memoryStore of ${first.calls.toLocaleString('en-US')} records at most:\n`,
  );
  console.log(
    table([
      ['calls', 'rss MB (after gc)', 'heap MB', 'store records'],
      ...points.map((point) => [point.calls.toLocaleString('en-US'), fixed(point.rssMb, 1), fixed(point.heapMb, 1), point.records.toLocaleString('en-US')]),
    ]),
  );
  console.log(
    `\n  RSS grew ${fixed(grew, 1)} MB from ${first.calls.toLocaleString('en-US')} to ${last.calls.toLocaleString('en-US')} calls (target: within 50 MB): ${Math.abs(grew) <= 50 ? 'pass' : 'MISS'}`,
  );
}

// ---------------------------------------------------------------- run

/** Runs the four parts in this process (the memory part forks its child). */
export async function run(): Promise<void> {
  console.log(`load average ${os.loadavg().map((load) => load.toFixed(2)).join(' ')}; ${settings.rounds} rounds of ${settings.probeMs} ms per figure\n`);
  // `BENCH_ONLY=keys` (or `reducers`, `in-flight`, `memory`, comma-separated) runs only those parts.
  const only = process.env.BENCH_ONLY?.split(',').map((part) => part.trim());
  const parts: [string, () => Promise<void>][] = [['reducers', reducerPairs], ['in-flight', inFlight], ['keys', perKey], ['memory', memory]];
  for (const [part, runPart] of parts) if (!only || only.includes(part)) await runPart();
  console.log(`\n  flat: the median per-round ratio is at most ${flatUpTo}; load average now ${os.loadavg()[0]?.toFixed(2)}`);
}

if (process.argv[2] === '--memory-child') {
  memoryChild(process.argv.slice(3).map(Number)).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
