/**
 * A small harness shared by the benchmarks: run one client at a fixed
 * concurrency for a bounded number of requests and time, interleave
 * several clients round by round, and summarise with medians.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';

/** A benchmark module, as `run.ts` loads it from `bench/*.bench.ts`. */
export interface Bench {
  /** Short name to select it on the command line (`pnpm bench core`). */
  name: string;
  /** One line saying what it compares. */
  description: string;
  run(): Promise<void>;
}

/**
 * One request of a client. Resolves once the response has been read to the
 * end; a streaming call invokes `firstChunk` when its first parsed chunk
 * reaches the caller (the harness keeps the first invocation).
 */
export type Call = (firstChunk: () => void) => Promise<void>;

/** A client under test. */
export interface Contender {
  name: string;
  call: Call;
}

/** Bounds of one run: both are hard limits, whichever comes first. */
export interface RunLimits {
  concurrency: number;
  maxRequests: number;
  maxMs: number;
}

/** What one run of one client measured. */
export interface RunResult {
  requests: number;
  elapsedMs: number;
  /** Completed requests per second. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Median time to first chunk; NaN when no call reported one. */
  ttfcMs: number;
  /** Client process CPU (user + system) per request, harness included. */
  cpuUsPerRequest: number;
  /** Share of one core the upstream process used during the run; NaN if not measured. */
  upstreamBusy: number;
}

/** Nearest-rank percentile of unsorted values (NaN when empty). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** Median of the values, NaN ignored (NaN when none is left). */
export function median(values: readonly number[]): number {
  const kept = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  if (kept.length === 0) return Number.NaN;
  const middle = kept.length >> 1;
  return kept.length % 2 === 1 ? (kept[middle] as number) : ((kept[middle - 1] as number) + (kept[middle] as number)) / 2;
}

/**
 * Runs `call` with `concurrency` workers until `maxRequests` were started
 * or `maxMs` passed, then waits for those in flight.
 *
 * @param call - the client's request
 * @param limits - concurrency and the two bounds
 * @throws the first error a call threw (the run stops issuing at once)
 * @example
 * ```ts
 * const result = await measure(async () => void (await fetch(url)).text(), { concurrency: 8, maxRequests: 1000, maxMs: 500 });
 * ```
 */
export async function measure(call: Call, limits: RunLimits): Promise<Omit<RunResult, 'upstreamBusy'>> {
  const latencies: number[] = [];
  const ttfcs: number[] = [];
  let issued = 0;
  let failure: { error: unknown } | undefined;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + limits.maxMs;

  async function worker(): Promise<void> {
    while (failure === undefined && issued < limits.maxRequests && performance.now() < deadline) {
      issued++;
      const begin = performance.now();
      let first = Number.NaN;
      try {
        await call(() => {
          if (Number.isNaN(first)) first = performance.now();
        });
      } catch (error) {
        failure ??= { error };
        return;
      }
      latencies.push(performance.now() - begin);
      if (!Number.isNaN(first)) ttfcs.push(first - begin);
    }
  }

  await Promise.all(Array.from({ length: limits.concurrency }, worker));
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  if (failure) throw failure.error;
  return {
    requests: latencies.length,
    elapsedMs,
    rps: (latencies.length / elapsedMs) * 1000,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    ttfcMs: percentile(ttfcs, 50),
    cpuUsPerRequest: (cpu.user + cpu.system) / Math.max(1, latencies.length),
  };
}

/** Options of {@link interleave}. */
export interface InterleaveOptions {
  /** Measured rounds; each runs every contender once. */
  rounds: number;
  /** Rounds run first and discarded (JIT, connection pools). */
  warmupRounds: number;
  limits: RunLimits;
  /** Called after every run; returns the upstream's CPU µs spent during it, if known. */
  afterRun?: () => Promise<number | undefined>;
}

/**
 * Runs the contenders one after another, round after round, rotating who
 * goes first each round so no client always runs on a warmer (or more
 * tired) machine than the others. Results of round `i` sit at index `i`
 * for every contender, so they can be compared in pairs.
 *
 * @param contenders - the clients, same requests
 * @param options - rounds, warm-up and run bounds
 * @throws the first error a call threw
 * @example
 * ```ts
 * const results = await interleave([a, b], { rounds: 5, warmupRounds: 1, limits });
 * ```
 */
export async function interleave(
  contenders: readonly Contender[],
  options: InterleaveOptions,
): Promise<Map<string, RunResult[]>> {
  const results = new Map<string, RunResult[]>(contenders.map((contender) => [contender.name, []]));
  const total = options.warmupRounds + options.rounds;
  for (let round = 0; round < total; round++) {
    const shift = round % contenders.length;
    const order = [...contenders.slice(shift), ...contenders.slice(0, shift)];
    for (const contender of order) {
      const result = await measure(contender.call, options.limits);
      const upstreamCpuUs = await options.afterRun?.();
      const upstreamBusy = upstreamCpuUs === undefined ? Number.NaN : upstreamCpuUs / 1000 / result.elapsedMs;
      if (round >= options.warmupRounds) results.get(contender.name)?.push({ ...result, upstreamBusy });
    }
  }
  return results;
}

/** One contender's medians over the measured rounds. */
export type Summary = Omit<RunResult, 'requests' | 'elapsedMs'> & { requests: number };

/**
 * Medians of every figure over a contender's rounds (`requests` is the total).
 *
 * @param runs - one contender's results
 * @example
 * ```ts
 * const { rps } = summarise(results.get('undici') ?? []);
 * ```
 */
export function summarise(runs: readonly RunResult[]): Summary {
  const of = (pick: (run: RunResult) => number) => median(runs.map(pick));
  return {
    requests: runs.reduce((sum, run) => sum + run.requests, 0),
    rps: of((run) => run.rps),
    p50Ms: of((run) => run.p50Ms),
    p99Ms: of((run) => run.p99Ms),
    ttfcMs: of((run) => run.ttfcMs),
    cpuUsPerRequest: of((run) => run.cpuUsPerRequest),
    upstreamBusy: of((run) => run.upstreamBusy),
  };
}

/**
 * The median, over rounds, of `pick(run) / pick(baseline run of the same round)`:
 * a ratio of two runs made seconds apart, which cancels most of the drift
 * of a shared machine that a ratio of two medians would keep.
 *
 * @param runs - the contender's results
 * @param baseline - the baseline's results, same rounds
 * @param pick - the figure to compare
 * @example
 * ```ts
 * const keeps = pairedRatio(results.get('pipeline')!, results.get('undici')!, (run) => run.rps);
 * ```
 */
export function pairedRatio(
  runs: readonly RunResult[],
  baseline: readonly RunResult[],
  pick: (run: RunResult) => number,
): number {
  return median(pairedRatios(runs, baseline, pick));
}

/**
 * Every round's `pick(run) / pick(baseline run)`, in round order: their
 * spread shows how much of a median ratio is noise.
 *
 * @param runs - the contender's results
 * @param baseline - the baseline's results, same rounds
 * @param pick - the figure to compare
 * @example
 * ```ts
 * const ratios = pairedRatios(pipeline, undici, (run) => run.rps);
 * console.log(Math.min(...ratios), Math.max(...ratios));
 * ```
 */
export function pairedRatios(
  runs: readonly RunResult[],
  baseline: readonly RunResult[],
  pick: (run: RunResult) => number,
): number[] {
  return runs.map((run, index) => pick(run) / pick(baseline[index] as RunResult));
}

/**
 * Formats rows as a plain-text table, columns padded; numbers right-aligned.
 *
 * @param rows - header row first
 * @example
 * ```ts
 * console.log(table([['client', 'req/s'], ['undici', '1234']]));
 * ```
 */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, index) => (widths[index] = Math.max(widths[index] ?? 0, cell.length)));
  const numeric = /^[-+×]?[\d.,]+(%|×)?$|^n\/a$/;
  return rows
    .map((row) =>
      row
        .map((cell, index) => (numeric.test(cell) ? cell.padStart(widths[index] ?? 0) : cell.padEnd(widths[index] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Formats a number with `digits` decimals, or `n/a` for NaN. */
export function fixed(value: number, digits: number): string {
  return Number.isNaN(value) ? 'n/a' : value.toFixed(digits);
}

/** A positive number from an environment variable (`BENCH_ROUNDS`, `BENCH_RUN_MS`), or `undefined` when unset. */
export function envNumber(variable: string): number | undefined {
  const raw = process.env[variable];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${variable} must be a positive number, got ${raw}`);
  return value;
}

/** `BENCH_QUICK=1`: fewer and shorter rounds, for a smoke run. */
export const quick = process.env.BENCH_QUICK === '1';

/**
 * The rounds every throughput benchmark runs: 7 (2 quick) of 600 ms (200
 * quick) after one warm-up, `BENCH_ROUNDS` and `BENCH_RUN_MS` overriding.
 */
export function roundSettings() {
  return {
    rounds: envNumber('BENCH_ROUNDS') ?? (quick ? 2 : 7),
    warmupRounds: 1,
    runMs: envNumber('BENCH_RUN_MS') ?? (quick ? 200 : 600),
  };
}

/** Each contender's times to first chunk from {@link alternateFirstChunks}, in ms, in call order. */
export type FirstChunkTimes = Map<string, number[]>;

/**
 * Time to first chunk at concurrency 1, one call of each contender after
 * another (the order rotated every call), so that every contender's calls
 * meet the same machine: a round of hundreds of milliseconds per client
 * lets a noisy neighbour land on one client's round and not the next, and
 * at concurrency 1 that noise is larger than the difference measured.
 *
 * @param contenders - the clients, each a stream call
 * @param calls - calls per contender that count (a tenth more run first as warm-up)
 * @param counted - told of each call that counts, as it ends: whose it was, when it started and when its first chunk came (`performance.now()`)
 * @param idleMs - a pause before each call, so that every call starts as one arriving after idle time does (caches cold); none by default
 */
export async function alternateFirstChunks(
  contenders: readonly Contender[],
  calls: number,
  counted?: (name: string, started: number, first: number) => void,
  idleMs?: number,
): Promise<FirstChunkTimes> {
  const times: FirstChunkTimes = new Map(contenders.map((contender) => [contender.name, [] as number[]]));
  const warmup = Math.ceil(calls / 10);
  for (let index = 0; index < warmup + calls; index++) {
    for (let offset = 0; offset < contenders.length; offset++) {
      const contender = contenders[(index + offset) % contenders.length] as Contender;
      if (idleMs !== undefined) await new Promise((resolve) => setTimeout(resolve, idleMs));
      const started = performance.now();
      let first = 0;
      await contender.call(() => {
        if (first === 0) first = performance.now();
      });
      if (index < warmup) continue;
      times.get(contender.name)?.push(first - started);
      counted?.(contender.name, started, first);
    }
  }
  return times;
}

/**
 * Per block of consecutive calls, the ratio of `candidate`'s median time to
 * first chunk to `baseline`'s over the same calls: the median of these is
 * the figure, their lowest and highest its spread.
 *
 * @param blocks - how many blocks to cut the calls into
 */
export function blockRatios(candidate: readonly number[], baseline: readonly number[], blocks: number): number[] {
  const size = Math.max(1, Math.floor(Math.min(candidate.length, baseline.length) / blocks));
  const ratios: number[] = [];
  for (let start = 0; start + size <= Math.min(candidate.length, baseline.length); start += size) {
    ratios.push(median(candidate.slice(start, start + size)) / median(baseline.slice(start, start + size)));
  }
  return ratios;
}

/** Something timed in process: one call (given its index), `concurrency` at a time (default 1). */
export interface Probe {
  fn: (index: number) => Promise<unknown>;
  concurrency?: number;
}

/**
 * CPU microseconds per call of a probe, its calls `concurrency` at a time,
 * for about `ms`. CPU time rather than wall time: on a shared machine
 * another process taking the core does not count against the code measured.
 */
export async function cpuPerCall(probe: Probe, ms: number): Promise<number> {
  let calls = 0;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const worker = async () => {
    while (performance.now() - started < ms) {
      for (let batch = 0; batch < 20; batch++) await probe.fn(calls++);
    }
  };
  await Promise.all(Array.from({ length: probe.concurrency ?? 1 }, worker));
  const cpu = process.cpuUsage(cpuBefore);
  return (cpu.user + cpu.system) / calls;
}

/**
 * Runs every probe for `probeMs` once per round, order rotated, after a
 * warm-up round. Returns each probe's CPU µs per call, one sample per round
 * (same index, same round), so figures can be compared within a round.
 */
export async function probeRounds(probes: readonly Probe[], rounds: number, probeMs: number): Promise<number[][]> {
  const samples = probes.map(() => [] as number[]);
  // No forced GC between probes: a full GC shrinks the young generation,
  // and the probe after it pays for the extra scavenges (2-3× on this code).
  for (let round = 0; round <= rounds; round++) {
    for (let offset = 0; offset < probes.length; offset++) {
      const index = (offset + round) % probes.length;
      const micros = await cpuPerCall(probes[index] as Probe, probeMs);
      if (round > 0) samples[index]?.push(micros);
    }
  }
  return samples;
}

/** A client as the wire benchmarks compare them: one JSON call and one streamed call. */
export interface ModeClient {
  name: string;
  complete: Call;
  stream: Call;
}

/**
 * One mode of a wire benchmark: every client's JSON or streamed call, at
 * the mode's concurrency, in {@link interleave}d rounds; the mode's wall
 * time goes to stderr under `label`.
 *
 * @param settings - rounds, warm-up rounds, run length and request cap
 * @param afterRun - returns the upstream's CPU µs during the run just ended
 */
export async function interleaveMode(
  clients: readonly ModeClient[],
  mode: { stream: boolean; concurrency: number },
  settings: { rounds: number; warmupRounds: number; runMs: number; maxRequests: number },
  afterRun: () => Promise<number | undefined>,
  label: string,
): Promise<Map<string, RunResult[]>> {
  const started = performance.now();
  const contenders: Contender[] = clients.map((client) => ({ name: client.name, call: mode.stream ? client.stream : client.complete }));
  const results = await interleave(contenders, {
    rounds: settings.rounds,
    warmupRounds: settings.warmupRounds,
    limits: { concurrency: mode.concurrency, maxRequests: settings.maxRequests, maxMs: settings.runMs },
    afterRun,
  });
  process.stderr.write(`  ${label}: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return results;
}
