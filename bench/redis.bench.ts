/**
 * The Redis benchmark: what does sharing state through `@sluice/redis`
 * cost a decision, and how does it compare with rate-limiter-flexible's
 * `RateLimiterRedis` on the same server in the same run?
 *
 * 1. Store decisions: a fixed-window counter (what `RateLimiterRedis`
 *    computes: one increment per decision, a TTL of one window) as a
 *    reducer through `redisStore().update`, over node-redis and ioredis,
 *    against `RateLimiterRedis.consume()` over ioredis and over node-redis
 *    (each contender is also compared with it over its own client library:
 *    over node-redis it is about 2.5× as fast as over ioredis, so that is
 *    the bar for a node-redis store), on one hot key and spread over 1,000
 *    keys, at concurrency 64. Interleaved rounds (who
 *    goes first rotates, one warm-up round thrown away); for each round the
 *    ratio to rate-limiter-flexible's run of the same round, and the median
 *    and spread of those ratios. Beside throughput: CPU per decision of
 *    this process and of Redis (both share the machine), and Redis
 *    commands per decision (`INFO commandstats`: scripts and
 *    transactions, each one request and one reply). Target: at least
 *    rate-limiter-flexible's throughput, each decision waiting on one
 *    round trip.
 * 2. The middleware: a pipeline with `rateLimit` (the exact sliding window)
 *    over an in-memory transport, memory store against Redis store:
 *    decisions per second at concurrency 64 and the latency one call adds
 *    at concurrency 1 (median, against the same pipeline without a
 *    limiter), interleaved rounds.
 *
 * 3. The store's own work: the same counter over 1,000 keys through
 *    `redisStore` on a client that answers every script at once with
 *    "written" (no socket, no Redis), against `memoryStore().update` in the
 *    same run: what a decision costs in the store itself, CPU per decision.
 *
 * 4. `breaker` on Redis, streamed over HTTP (the mock upstream in its own
 *    process), concurrency 1, calls alternating: time to first chunk with
 *    the breaker on the memory store and on Redis, against the empty
 *    pipeline and raw undici, beside one Redis round trip (PING). A stream's
 *    success is written while the stream goes on to its caller, so Redis
 *    should add well under one round trip to the first chunk.
 *
 * It starts its own redis-server on a free port, persistence off, and says
 * how to install one when there is none.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { breaker } from '@sluice/breaker';
import { createPipeline, memoryStore, type Middleware, openAICompatible, type Store, type Transport } from '@sluice/core';
import { rateLimit } from '@sluice/ratelimit';
import { redisStore } from '@sluice/redis';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { createClient } from 'redis';
import { hasRedisServer, startRedis } from '../packages/redis/src/test-redis-server.js';
import { apiKey, pipelineClient, rawUndici } from './clients.js';
import {
  alternateFirstChunks,
  type Contender,
  envNumber,
  fixed,
  interleave,
  measure,
  median,
  pairedRatios,
  percentile,
  quick,
  type RunResult,
  roundSettings,
  summarise,
  table,
} from './lib.js';
import { startUpstream } from './upstream-server.js';

/** Name to select this benchmark: `pnpm bench redis`. */
export const name = 'redis';
/** What it compares. */
export const description =
  'redisStore decisions/s and round trips vs rate-limiter-flexible RateLimiterRedis; rateLimit on memory vs Redis store (decisions/s at c=64, latency added at c=1); breaker on Redis: time to first chunk';

const { rounds, warmupRounds, runMs } = roundSettings();
// Part 1 runs three times as many rounds, each a third as long: the two runs a ratio pairs are closer in
// time, so less of the shared machine's drift gets between them, and a median of more ratios moves less.
const storeRounds = envNumber('BENCH_ROUNDS') ?? rounds * 3;
const storeRunMs = envNumber('BENCH_RUN_MS') ?? Math.max(100, Math.round(runMs / 3));

const completion = {
  id: 'c', object: 'chat.completion' as const, created: 0, model: 'gpt-4.1',
  choices: [{ index: 0, message: { role: 'assistant' as const, content: 'ok', refusal: null }, finish_reason: 'stop' as const, logprobs: null }],
  usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
};
const transport: Transport = {
  name: 'memory',
  origin: 'memory://bench',
  // It answers at once: nothing outlasts an abort, and the pipeline need not race it.
  honoursAbort: true,
  async send(ctx) {
    ctx.response = completion;
    ctx.usage = completion.usage;
  },
};
const request = { model: 'gpt-4.1', messages: [{ role: 'user' as const, content: 'hi' }] };

/** A contender's runs of part 1, with what Redis did during each. */
interface StoreRun extends RunResult {
  /** Scripts and transactions Redis ran, per decision. */
  commandsPerDecision: number;
  /** Redis's CPU (user + system) per decision, µs. */
  redisCpuUs: number;
}

/**
 * A node-redis look-alike that answers every compare-and-set script "written" in the next check
 * phase, as a reply would come in: the store's own CPU, with no socket or Redis behind it.
 */
function answeringClient() {
  return {
    isReady: true,
    evalSha(_sha: string, options: { keys: string[]; arguments: string[] }) {
      const reply: unknown[] = [0, 0];
      for (let index = 0; index < options.keys.length; index++) reply.push(1, '');
      return new Promise((resolve) => setImmediate(() => resolve(reply)));
    },
    eval(_script: string, options: { keys: string[]; arguments: string[] }) {
      return this.evalSha('', options);
    },
    sendCommand: async (args: string[]) => (args[0] === 'TIME' ? [String(Math.floor(Date.now() / 1000)), '0'] : 'OK'),
  };
}

/** The spread of per-round ratios: the middle half of the rounds, `p25–p75`. */
const spread = (ratios: number[]) => `${fixed(percentile(ratios, 25), 2)}–${fixed(percentile(ratios, 75), 2)}`;

export async function run(): Promise<void> {
  if (!hasRedisServer) {
    console.log('redis-server is not installed: apt-get install -y redis-server (or brew install redis), then run pnpm bench redis');
    return;
  }
  const server = await startRedis();
  try {
    const { url } = server;
    const nodeRedis = createClient({ url });
    nodeRedis.on('error', () => undefined);
    await nodeRedis.connect();
    const [ioredis, ioredisForLimiter, admin] = [new Redis(url), new Redis(url), new Redis(url)];
    for (const client of [ioredis, ioredisForLimiter, admin]) client.on('error', () => undefined);
    await Promise.all([ioredis, ioredisForLimiter, admin].map((client) => client.ping()));
    // A command here is one top-level request: a script (EVALSHA/EVAL) or a transaction (EXEC); the
    // commands a script or a transaction runs inside are not requests of their own.
    const redisStats = async () => {
      const [commandstats, cpu] = (await Promise.all([admin.info('commandstats'), admin.info('cpu')])) as [string, string];
      let commands = 0;
      for (const match of commandstats.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) if (['evalsha', 'eval', 'exec'].includes(match[1] as string)) commands += Number(match[2]);
      const seconds = (field: string) => Number(new RegExp(`${field}:([\\d.]+)`).exec(cpu)?.[1] ?? Number.NaN);
      return { commands, cpuUs: (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6 };
    };

    const windowMs = 60_000;
    const counter = (now: number) => (current: { start: number; count: number } | undefined) =>
      current && current.start + windowMs > now ? { start: current.start, count: current.count + 1 } : { start: now, count: 1 };
    // Each store its own keys: one that finds its records changed by the other would pay a conflict per decision.
    const stores = {
      'redisStore (node-redis)': redisStore({ client: nodeRedis, prefix: 'node-redis:', timeoutMs: 5_000 }),
      'redisStore (ioredis)': redisStore({ client: ioredis, prefix: 'ioredis:', timeoutMs: 5_000 }),
    };
    const limiter = new RateLimiterRedis({ storeClient: ioredisForLimiter, points: 1e12, duration: 60, keyPrefix: 'rlf' });
    // The same limiter over node-redis too (its own connection), so each client library also meets it on its own ground.
    const nodeRedisForLimiter = createClient({ url });
    nodeRedisForLimiter.on('error', () => undefined);
    await nodeRedisForLimiter.connect();
    const limiterOnNodeRedis = new RateLimiterRedis({ storeClient: nodeRedisForLimiter, useRedisPackage: true, points: 1e12, duration: 60, keyPrefix: 'rlf-node-redis' });

    console.log(
      `1. One decision (a fixed-window counter), concurrency 64, ${storeRounds} interleaved rounds × ${storeRunMs} ms after ${warmupRounds} warm-up;` +
        ` ratios are medians of per-round ratios to rate-limiter-flexible's run of the same round, spread the middle half of the rounds (p25–p75)\n`,
    );
    const rows: string[][] = [
      ['contender', 'keys', 'decisions/s', 'vs RLF', 'spread', 'vs RLF, same client', 'client CPU µs', 'Redis CPU µs', 'CPU vs RLF', 'spread', 'commands'],
    ];
    const baselineLabel = 'RateLimiterRedis.consume (ioredis)';
    const nodeRedisBaselineLabel = 'RateLimiterRedis.consume (node-redis)';
    /** rate-limiter-flexible's run over the client library a contender uses. */
    const sameClient = (label: string) => (label.includes('node-redis') ? nodeRedisBaselineLabel : baselineLabel);
    for (const keys of [1, 1_000]) {
      let i = 0;
      const key = () => `k${i++ % keys}`;
      const contenders: Array<[string, () => Promise<unknown>]> = [
        [baselineLabel, () => limiter.consume(key())],
        [nodeRedisBaselineLabel, () => limiterOnNodeRedis.consume(key())],
        ...Object.entries(stores).map(([label, store]): [string, () => Promise<unknown>] => [label, () => store.update(`bench:${key()}`, counter(Date.now()), windowMs)]),
      ];
      const measured = new Map<string, StoreRun[]>(contenders.map(([label]) => [label, []]));
      for (let round = 0; round < warmupRounds + storeRounds; round++) {
        // Rotate who goes first, so no contender always runs on a warmer (or busier) machine.
        for (let c = 0; c < contenders.length; c++) {
          const [label, call] = contenders[(c + round) % contenders.length]!;
          const before = await redisStats();
          const result = await measure(async () => void (await call()), { concurrency: 64, maxRequests: Infinity, maxMs: storeRunMs });
          const after = await redisStats();
          if (round < warmupRounds) continue;
          measured.get(label)!.push({
            ...result,
            upstreamBusy: Number.NaN,
            commandsPerDecision: (after.commands - before.commands) / result.requests,
            redisCpuUs: (after.cpuUs - before.cpuUs) / result.requests,
          });
        }
      }
      const baseline = measured.get(baselineLabel)!;
      for (const [label, runs] of measured) {
        const ratios = pairedRatios(runs, baseline, (run) => run.rps);
        const isBaseline = label.startsWith('RateLimiterRedis');
        const sameClientRatios = pairedRatios(runs, measured.get(sameClient(label))!, (run) => run.rps);
        // What a decision costs the machine, both processes: steadier than throughput on a shared machine.
        const cpuRatios = pairedRatios(runs, baseline, (run) => run.cpuUsPerRequest + (run as StoreRun).redisCpuUs);
        rows.push([
          label,
          String(keys),
          fixed(summarise(runs).rps, 0),
          label === baselineLabel ? '1.00' : fixed(median(ratios), 2),
          label === baselineLabel ? '' : spread(ratios),
          isBaseline ? '' : `${fixed(median(sameClientRatios), 2)} (${spread(sameClientRatios)})`,
          fixed(median(runs.map((run) => run.cpuUsPerRequest)), 1),
          fixed(median(runs.map((run) => run.redisCpuUs)), 1),
          label === baselineLabel ? '1.00' : fixed(median(cpuRatios), 2),
          label === baselineLabel ? '' : spread(cpuRatios),
          fixed(median(runs.map((run) => run.commandsPerDecision)), 3),
        ]);
      }
    }
    console.log(table(rows));
    console.log(
      '\nPer decision: CPU of this process and of Redis, µs, and Redis commands (scripts and transactions).' +
        ' Every decision waits on one round trip on the fast path (a conflict with another process costs one more);' +
        ' redisStore sends the decisions that are ready in the same event-loop turn as script calls of up to 16 keys, hence under one command per decision.',
    );

    console.log(`\n2. rateLimit (exact sliding window, 1e9 a second: a log at its cap of 32 entries) in a pipeline over an in-memory transport\n`);
    let storeErrors = 0;
    const limited = (store: Store | undefined) => {
      const llm = createPipeline({ transport, ...(store ? { store } : {}) });
      llm.events.on('store-error', () => storeErrors++);
      if (store) llm.use(rateLimit({ requests: { limit: 1e9, windowMs: 1_000 }, onStoreError: 'open' }));
      return () => llm.complete(request);
    };
    const memory = memoryStore();
    const pipelines: Array<[string, () => Promise<unknown>]> = [
      ['no limiter', limited(undefined)],
      ['rateLimit, memory store', limited(memory)],
      ['rateLimit, redisStore (node-redis)', limited(redisStore({ client: nodeRedis, prefix: 'limit-node-redis:', timeoutMs: 5_000 }))],
      ['rateLimit, redisStore (ioredis)', limited(redisStore({ client: ioredis, prefix: 'limit-ioredis:', timeoutMs: 5_000 }))],
    ];
    const contenders = (): Contender[] => pipelines.map(([label, call]) => ({ name: label, call: async () => void (await call()) }));
    const at64 = await interleave(contenders(), { rounds, warmupRounds, limits: { concurrency: 64, maxRequests: Infinity, maxMs: runMs } });
    const at1 = await interleave(contenders(), { rounds, warmupRounds, limits: { concurrency: 1, maxRequests: Infinity, maxMs: runMs } });
    const memoryRuns = at64.get('rateLimit, memory store')!;
    const bare = at1.get('no limiter')!;
    console.log(
      table([
        ['pipeline', 'calls/s c=64', 'vs memory store', 'CPU µs/call c=64', 'p50 ms c=1', 'added per call, ms'],
        ...pipelines.map(([label]) => {
          const fast = at64.get(label)!;
          const single = at1.get(label)!;
          // The latency a limiter adds, paired by round like the ratios.
          const added = single.map((run, index) => run.p50Ms - (bare[index] as RunResult).p50Ms);
          return [
            label,
            fixed(summarise(fast).rps, 0),
            fixed(median(pairedRatios(fast, memoryRuns, (run) => run.rps)), 2),
            // This process's CPU per call: what a decision costs the client, steadier than throughput on a shared machine.
            fixed(median(fast.map((run) => run.cpuUsPerRequest)), 1),
            fixed(summarise(single).p50Ms, 3),
            fixed(median(added), 3),
          ];
        }),
      ]),
    );
    console.log(`store errors (a store call over keyedState's 50 ms; the calls went ahead, policy 'open'): ${storeErrors}`);

    console.log(`\n3. The store's own work: the counter over 1,000 keys, concurrency 64, on a client that answers at once (no socket, no Redis)\n`);
    const own: Array<[string, Store]> = [
      ['memoryStore', memoryStore()],
      ['redisStore, answering client', redisStore({ client: answeringClient(), prefix: 'own:', timeoutMs: 5_000 })],
    ];
    let next = 0;
    const ownRuns = await interleave(
      own.map(([label, store]) => ({ name: label, call: async () => void (await store.update(`bench:k${next++ % 1_000}`, counter(Date.now()), windowMs)) })),
      { rounds, warmupRounds, limits: { concurrency: 64, maxRequests: Infinity, maxMs: runMs } },
    );
    const memoryOwn = ownRuns.get('memoryStore')!;
    console.log(
      table([
        ['store', 'decisions/s', 'CPU µs a decision', 'CPU vs memoryStore'],
        ...own.map(([label]) => {
          const runs = ownRuns.get(label)!;
          return [
            label,
            fixed(summarise(runs).rps, 0),
            fixed(median(runs.map((run) => run.cpuUsPerRequest)), 2),
            fixed(median(pairedRatios(runs, memoryOwn, (run) => run.cpuUsPerRequest)), 2),
          ];
        }),
      ]),
    );
    await breakerFirstChunk(nodeRedis);
    await Promise.all([nodeRedis.close(), nodeRedisForLimiter.close(), ioredis.quit(), ioredisForLimiter.quit(), admin.quit()]);
  } finally {
    await server.stop();
  }
}

/** Part 4: where a breaker on Redis leaves the time to first chunk (see the module's notes). */
async function breakerFirstChunk(client: ReturnType<typeof createClient>): Promise<void> {
  const calls = envNumber('BENCH_TTFC_CALLS') ?? (quick ? 200 : 2_000);
  console.log(`\n4. breaker on Redis: time to first chunk, stream c=1 over HTTP, ${calls} calls each, alternating (medians)\n`);
  const upstream = await startUpstream();
  const viaPipeline = (label: string, middleware?: Middleware) => {
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey }) });
    if (middleware) llm.use(middleware);
    return pipelineClient(label, llm);
  };
  const clients = [
    rawUndici(upstream.url),
    viaPipeline('empty pipeline'),
    viaPipeline('breaker, memory store', breaker() as unknown as Middleware),
    viaPipeline('breaker, redisStore (node-redis)', breaker({ store: redisStore({ client, prefix: 'breaker-ttfc:', timeoutMs: 5_000 }) }) as unknown as Middleware),
  ];
  try {
    const times = await alternateFirstChunks(
      clients.map((each) => ({ name: each.name, call: each.stream })),
      calls,
    );
    const roundTrips: number[] = [];
    for (let index = 0; index < calls; index++) {
      const started = performance.now();
      await client.ping();
      roundTrips.push(performance.now() - started);
    }
    const empty = times.get('empty pipeline') ?? [];
    const us = (ms: number) => fixed(ms * 1000, 1);
    const rows = [['client', 'first chunk µs', 'added to the empty pipeline µs (median of call pairs)']];
    for (const each of clients) {
      const own = times.get(each.name) ?? [];
      rows.push([each.name, us(median(own)), each.name === 'empty pipeline' ? '' : us(median(own.map((value, index) => value - (empty[index] ?? Number.NaN))))]);
    }
    rows.push(['one Redis round trip (PING)', us(median(roundTrips)), '']);
    console.log(table(rows));
    const memory = times.get('breaker, memory store') ?? [];
    const redis = times.get('breaker, redisStore (node-redis)') ?? [];
    const added = median(redis.map((value, index) => value - (memory[index] ?? Number.NaN)));
    const trip = median(roundTrips);
    console.log(
      `\nRedis over the memory store: ${signedUs(added)} µs to the first chunk, ${fixed(added / trip, 2)} of a round trip ` +
        `(target: under half a round trip, the write off the first chunk's way) ${added < trip / 2 ? 'PASS' : 'MISS'}`,
    );
  } finally {
    for (const each of clients) await each.close();
    await upstream.close();
  }
}

function signedUs(ms: number): string {
  return `${ms >= 0 ? '+' : ''}${fixed(ms * 1000, 1)}`;
}
