/**
 * The router benchmark.
 *
 * 1. Overhead: the same pipeline (retry + breaker) with and without the
 *    router in front of it (one deployment, so every call takes the same
 *    path). In process, CPU µs per call at concurrency 64 against an
 *    in-memory transport, non-stream and stream (22 chunks): what the
 *    router adds, free of network noise;
 *    then over the network at concurrency 64, non-stream and stream,
 *    interleaved rounds, the ratio of their throughputs. Target: the
 *    router keeps at least 0.95 (under 5% overhead).
 * 2. Weighted shares: 10,000 calls over three healthy deployments
 *    weighted 1:2:7, each deployment's share against its weight (±3%).
 * 3. Chaos: 10,000 calls over three deployments, one down (connection
 *    refused), one answering 503 to 30% of requests, one slow; success
 *    rate, p50/p99 latency and upstream requests with the router, against
 *    the same calls spread round robin over the same three without it.
 *    Every call must settle, and no rejection may go unhandled.
 *
 * `BENCH_QUICK=1` runs 2,000 calls instead of 10,000 and shorter rounds;
 * `BENCH_ROUTER_PARTS=chaos` (or `overhead`, `weighted`, comma-separated)
 * runs only those parts.
 *
 * @module
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { type ChatCompletionRequest, createPipeline, type Middleware, openAICompatible, type Pipeline, type Transport } from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { retry } from '@sluice/retry';
import { router } from '@sluice/router';
import { mockUpstream } from '@sluice/testing';
import { apiKey, type Client, contentChunks, pipelineClient, reply } from './clients.js';
import { envNumber, fixed, interleave, median, pairedRatios, percentile, summarise, table, quick, roundSettings } from './lib.js';
import { startUpstream } from './upstream-server.js';
import { memoryCompletion, memoryTransport } from './memory-transport.js';

/** Name to select this benchmark: `pnpm bench router`. */
export const name = 'router';
/** What it compares. */
export const description =
  'router overhead vs the same pipeline without it at c=64 (target ≥ 0.95), weighted shares over 10,000 calls, a chaos run with and without the router';

const settings = {
  ...roundSettings(),
  concurrency: 64,
  calls: envNumber('BENCH_CALLS') ?? (quick ? 2_000 : 10_000),
};

/** The inner middleware both sides run: what a deployment would have anyway. */
const resilience = (): Middleware[] => [retry({ attempts: 2, backoff: { baseMs: 5, maxMs: 20 } }), breaker({ failures: 5, openMs: 2_000 })];

function plain(baseUrl: string): Pipeline {
  const llm = createPipeline({ transport: openAICompatible({ baseUrl, apiKey }) });
  for (const middleware of resilience()) llm.use(middleware);
  return llm;
}

function routed(transport: Transport): Pipeline {
  const route = router({ deployments: [{ id: 'only', model: 'gpt-4.1', transport }], middleware: resilience });
  return createPipeline({ transport: route.transport }).use(route);
}

const completion = memoryCompletion();

/** Answers one event-loop turn later from memory, so calls overlap as over a network. */
const inMemory = memoryTransport(completion, { overlap: true });

/** CPU µs per call of `llm`, `concurrency` calls at a time, for about `ms`; a stream is read to its end. */
async function cpuPerCall(llm: Pipeline, stream: boolean, ms: number): Promise<number> {
  let calls = 0;
  const started = performance.now();
  const before = process.cpuUsage();
  const request = ask(0);
  await Promise.all(
    Array.from({ length: settings.concurrency }, async () => {
      while (performance.now() - started < ms) {
        for (let batch = 0; batch < 20; batch++, calls++) {
          if (!stream) await llm.complete(request);
          else for await (const _chunk of llm.stream(request));
        }
      }
    }),
  );
  const cpu = process.cpuUsage(before);
  return (cpu.user + cpu.system) / calls;
}

/** What the router adds in process, CPU µs per call (median of per-round differences), by mode. */
type Added = { json: number; stream: number };

async function inProcess(): Promise<Added> {
  const added: Added = { json: Number.NaN, stream: Number.NaN };
  const rows = [['mode', 'pipeline', 'cpu µs/call', '+µs vs without: median (rounds)', '× cpu']];
  const transport = inMemory;
  for (const stream of [false, true]) {
    const without = createPipeline({ transport });
    for (const middleware of resilience()) without.use(middleware);
    const contenders = [without, routed(transport)];
    const samples: number[][] = [[], []];
    for (let round = 0; round <= settings.rounds; round++) {
      for (let offset = 0; offset < contenders.length; offset++) {
        const index = (offset + round) % contenders.length;
        const micros = await cpuPerCall(contenders[index] as Pipeline, stream, settings.runMs);
        if (round > 0) samples[index]?.push(micros);
      }
    }
    const [base, withRouter] = samples as [number[], number[]];
    const differences = withRouter.map((value, index) => value - (base[index] as number));
    const ratio = median(withRouter.map((value, index) => value / (base[index] as number)));
    const mode = stream ? 'stream' : 'non-stream';
    added[stream ? 'stream' : 'json'] = median(differences);
    rows.push([mode, 'retry + breaker', fixed(median(base), 1), '', '']);
    rows.push([mode, 'router → retry + breaker', fixed(median(withRouter), 1), `+${fixed(median(differences), 1)} (${fixed(Math.min(...differences), 1)} … ${fixed(Math.max(...differences), 1)})`, fixed(ratio, 3)]);
    await Promise.all(contenders.map((llm) => llm.close()));
  }
  console.log(`in process, in-memory transport, c=${settings.concurrency} (CPU µs per call, medians of ${settings.rounds} rounds):\n`);
  console.log(table(rows));
  console.log(`\n  the router's cost is about one more pipeline pass (its inner pipeline) and its own bookkeeping\n`);
  return added;
}

/**
 * Over the network, with what the router adds in process beside it as a
 * share of what a call costs over the network without it: steady where the
 * interleaved network rounds move by more than the 5% they judge, but
 * measured on hot caches, so a floor of the real cost rather than a verdict.
 */
async function overhead(added: Added): Promise<void> {
  const upstream = await startUpstream({ reply, chunks: contentChunks });
  const clients: Client[] = [
    pipelineClient('without', plain(upstream.url)),
    pipelineClient('router', routed(openAICompatible({ baseUrl: upstream.url, apiKey }))),
  ];
  const rows: string[][] = [['mode', 'conc', 'client', 'req/s', '×without', 'p50 ms', 'p99 ms', 'cpu µs/req', '+cpu µs (× cpu)']];
  const verdicts: string[] = [];
  try {
    for (const client of clients) {
      await client.complete(() => {});
      await client.stream(() => {});
    }
    await upstream.reset();
    for (const stream of [false, true]) {
      const results = await interleave(
        clients.map((client) => ({ name: client.name, call: stream ? client.stream : client.complete })),
        {
          rounds: settings.rounds,
          warmupRounds: settings.warmupRounds,
          limits: { concurrency: settings.concurrency, maxRequests: 100_000, maxMs: settings.runMs },
          afterRun: async () => (await upstream.reset()).cpuUs,
        },
      );
      const without = results.get('without') ?? [];
      const routedRuns = results.get('router') ?? [];
      // CPU per call, paired by round: the steadier figure on a shared machine.
      const addedCpu = median(routedRuns.map((run, round) => run.cpuUsPerRequest - (without[round]?.cpuUsPerRequest ?? Number.NaN)));
      const cpuRatio = median(pairedRatios(routedRuns, without, (run) => run.cpuUsPerRequest));
      const label = stream ? 'stream' : 'non-stream';
      for (const client of clients) {
        const runs = results.get(client.name) ?? [];
        const summary = summarise(runs);
        rows.push([
          label,
          String(settings.concurrency),
          client.name === 'router' ? 'router → retry + breaker' : 'retry + breaker',
          fixed(summary.rps, 0),
          fixed(median(pairedRatios(runs, without, (run) => run.rps)), 3),
          fixed(summary.p50Ms, 3),
          fixed(summary.p99Ms, 3),
          fixed(summary.cpuUsPerRequest, 0),
          client.name === 'router' ? `+${fixed(addedCpu, 1)} (×${fixed(cpuRatio, 3)})` : '',
        ]);
      }
      const ratios = pairedRatios(results.get('router') ?? [], without, (run) => run.rps);
      const keeps = median(ratios);
      const share = (stream ? added.stream : added.json) / summarise(without).cpuUsPerRequest;
      verdicts.push(
        `${label}, c=${settings.concurrency}: keeps ${fixed(keeps, 3)} of the pipeline without it ` +
          `(rounds ${fixed(Math.min(...ratios), 2)} … ${fixed(Math.max(...ratios), 2)}; target ≥ 0.95) ${keeps >= 0.95 ? 'PASS' : 'MISS'}; ` +
          `CPU per call +${fixed(addedCpu, 1)} µs, ×${fixed(cpuRatio, 3)} (target ≤ 1.05) ${cpuRatio <= 1.05 ? 'PASS' : 'MISS'}; ` +
          `for scale: the +${fixed(stream ? added.stream : added.json, 1)} µs it adds in process is ${fixed(share * 100, 1)}% of a call's ` +
          `${fixed(summarise(without).cpuUsPerRequest, 0)} µs over the network (hot caches: a floor, not a verdict)`,
      );
    }
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await upstream.close();
  }
  console.log(`overhead over the network (upstream in its own process, ${settings.rounds} rounds of ${settings.runMs} ms):\n`);
  console.log(table(rows));
  console.log(`\n×without is the median of per-round pairs; other figures are medians over rounds`);
  console.log(`\ntarget, router against the same pipeline without it:\n${verdicts.map((line) => `  ${line}`).join('\n')}`);
}

const ask = (index: number): ChatCompletionRequest => ({ model: 'gpt-4.1', messages: [{ role: 'user', content: `call ${index}` }], max_tokens: 32 });

async function weightedShares(): Promise<void> {
  const mocks = await Promise.all([mockUpstream(), mockUpstream(), mockUpstream()]);
  const weights = [1, 2, 7];
  const route = router({
    deployments: mocks.map((mock, index) => ({
      id: `w${weights[index]}`,
      model: 'gpt-4.1',
      weight: weights[index] as number,
      transport: openAICompatible({ baseUrl: mock.url, apiKey }),
    })),
  });
  const llm = createPipeline({ transport: route.transport }).use(route);
  try {
    const results = await llm.batch(Array.from({ length: settings.calls }, (_, index) => ask(index)), { concurrency: settings.concurrency });
    const failed = results.filter((result) => !result.ok).length;
    const rows: string[][] = [['deployment', 'weight', 'expected', 'requests', 'share', 'off by']];
    let worst = 0;
    mocks.forEach((mock, index) => {
      const expected = (weights[index] as number) / 10;
      const share = mock.requests.length / settings.calls;
      worst = Math.max(worst, Math.abs(share - expected) / expected);
      rows.push([`w${weights[index]}`, String(weights[index]), fixed(expected, 3), String(mock.requests.length), fixed(share, 4), `${fixed((Math.abs(share - expected) / expected) * 100, 2)}%`]);
    });
    console.log(`\nweighted routing, ${settings.calls.toLocaleString('en-US')} calls at c=${settings.concurrency} (${failed} failed):\n`);
    console.log(table(rows));
    console.log(`\n  worst share off its weight by ${fixed(worst * 100, 2)}% (target ±3%) ${worst <= 0.03 && failed === 0 ? 'PASS' : 'MISS'}`);
  } finally {
    await llm.close();
    await Promise.all(mocks.map((mock) => mock.close()));
  }
}

interface ChaosResult {
  ok: number;
  /** Failed calls by error code. */
  codes: Map<string, number>;
  latencies: number[];
  requests: number[];
  elapsedMs: number;
}

/** Runs every call, `concurrency` at a time, each with a 10 s deadline; counts successes and latencies. */
async function drive(call: (index: number) => Promise<unknown>): Promise<Pick<ChaosResult, 'ok' | 'latencies' | 'elapsedMs' | 'codes'>> {
  const codes = new Map<string, number>();
  let next = 0;
  let ok = 0;
  let settled = 0;
  const latencies: number[] = [];
  const started = performance.now();
  const worker = async () => {
    while (next < settings.calls) {
      const index = next++;
      const at = performance.now();
      try {
        await call(index);
        ok++;
      } catch (error) {
        // Failures are what this run counts, not what stops it.
        const code = (error as { code?: string }).code ?? 'unknown';
        codes.set(code, (codes.get(code) ?? 0) + 1);
      } finally {
        settled++;
        latencies.push(performance.now() - at);
      }
    }
  };
  await Promise.all(Array.from({ length: settings.concurrency }, worker));
  if (settled !== settings.calls) throw new Error(`chaos: ${settings.calls - settled} calls never settled`);
  return { ok, latencies, codes, elapsedMs: performance.now() - started };
}

async function chaos(): Promise<void> {
  let unhandled = 0;
  const onUnhandled = () => void unhandled++;
  process.on('unhandledRejection', onUnhandled);
  const rows: string[][] = [['run', 'success', 'p50 ms', 'p99 ms', '30% 503 reqs', 'slow reqs', 'upstream reqs', 'wall s', 'failures']];
  try {
    for (const withRouter of [false, true]) {
      // A port that refuses: start a mock and close it.
      const gone = await mockUpstream();
      const downUrl = gone.url;
      await gone.close();
      const flaky = await mockUpstream({ seed: 7, faults: [{ probability: 0.3, fault: { kind: 'status', status: 503 } }] });
      const slow = await mockUpstream({ latencyMs: 400 });
      const urls = [downUrl, flaky.url, slow.url];
      let call: (index: number) => Promise<unknown>;
      let close: () => Promise<void>;
      if (withRouter) {
        const route = router({
          deployments: urls.map((baseUrl, index) => ({ id: ['down', 'flaky', 'slow'][index] as string, model: 'gpt-4.1', transport: openAICompatible({ baseUrl, apiKey }) })),
          middleware: resilience,
          strategy: 'least-busy',
          hedge: { percentile: 0.9, delayMs: 200, minMs: 20, ratio: 0.1 },
        });
        const llm = createPipeline({ transport: route.transport }).use(route);
        call = (index) => llm.complete(ask(index), { timeoutMs: 10_000 });
        close = () => llm.close();
      } else {
        // Without a router, a client spreads its calls round robin over the same three.
        const pipelines = urls.map((url) => plain(url));
        call = (index) => (pipelines[index % 3] as Pipeline).complete(ask(index), { timeoutMs: 10_000 });
        close = async () => void (await Promise.all(pipelines.map((llm) => llm.close())));
      }
      const result = await drive(call);
      await close();
      const requests = [0, flaky.requests.length, slow.requests.length];
      rows.push([
        withRouter ? 'router (least-busy, hedged)' : 'round robin, no router',
        `${fixed((result.ok / settings.calls) * 100, 2)}%`,
        fixed(percentile(result.latencies, 50), 1),
        fixed(percentile(result.latencies, 99), 1),
        String(requests[1]),
        String(requests[2]),
        String(requests[1]! + requests[2]!),
        fixed(result.elapsedMs / 1000, 1),
        [...result.codes].map(([code, count]) => `${code} ${count}`).join(', ') || 'none',
      ]);
      await Promise.all([flaky.close(), slow.close()]);
    }
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  console.log(`\nchaos, ${settings.calls.toLocaleString('en-US')} calls at c=${settings.concurrency}: one deployment down, one 30% 503, one 400 ms slow; retry(2) + breaker(5) on each:\n`);
  console.log(table(rows));
  console.log(`\n  every call settled; unhandled rejections: ${unhandled} ${unhandled === 0 ? 'PASS' : 'MISS'}`);
  console.log(`  (requests to the refusing deployment never reach a server, so they are not counted)`);
}

/**
 * Runs the three parts and prints their tables and verdicts.
 *
 * @throws when a call of the overhead run fails or the upstream child does not start
 * @example
 * ```ts
 * await run();
 * ```
 */
export async function run(): Promise<void> {
  const started = performance.now();
  console.log(`router: node ${process.version}, load average ${(os.loadavg()[0] ?? 0).toFixed(1)} on ${os.cpus().length} cores\n`);
  // BENCH_ROUTER_PARTS=chaos (or a comma-separated list) runs only those parts.
  const parts = process.env.BENCH_ROUTER_PARTS?.split(',') ?? ['overhead', 'weighted', 'chaos'];
  if (parts.includes('overhead')) {
    await overhead(await inProcess());
  }
  if (parts.includes('weighted')) await weightedShares();
  if (parts.includes('chaos')) await chaos();
  console.log(`\nrouter: ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
