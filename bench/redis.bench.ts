/**
 * The Redis benchmark: what does sharing state through `@sluice/redis`
 * cost a decision, and how does it compare with rate-limiter-flexible's
 * `RateLimiterRedis` on the same server in the same run?
 *
 * 1. Store decisions: a fixed-window counter (what `RateLimiterRedis`
 *    computes: one increment per decision, a TTL of one window) as a
 *    reducer through `redisStore().update`, over node-redis and ioredis,
 *    against `RateLimiterRedis.consume()` over ioredis, on one hot key and
 *    spread over 1,000 keys, at concurrency 64: decisions per second, and
 *    Redis commands per decision (from `INFO commandstats`). Target: at
 *    least rate-limiter-flexible's throughput at one round trip per decision.
 * 2. The middleware: a pipeline with `rateLimit` (the exact sliding window)
 *    over an in-memory transport, memory store against Redis store:
 *    decisions per second at concurrency 64 and the latency one call adds
 *    at concurrency 1 (median, against the same pipeline without a limiter).
 *
 * It starts its own redis-server on a free port, persistence off, and says
 * how to install one when there is none.
 *
 * @module
 */
import { execFileSync, spawn } from 'node:child_process';
import { createServer, Socket } from 'node:net';
import { createPipeline, memoryStore, type Store, type Transport } from '@sluice/core';
import { rateLimit } from '@sluice/ratelimit';
import { redisStore } from '@sluice/redis';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { createClient } from 'redis';
import { envNumber, fixed, measure, median, table } from './lib.js';

/** Name to select this benchmark: `pnpm bench redis`. */
export const name = 'redis';
/** What it compares. */
export const description =
  'redisStore decisions/s and round trips vs rate-limiter-flexible RateLimiterRedis; rateLimit on memory vs Redis store (decisions/s at c=64, latency added at c=1)';

const quick = process.env.BENCH_QUICK === '1';
const rounds = envNumber('BENCH_ROUNDS') ?? (quick ? 1 : 3);
const runMs = envNumber('BENCH_RUN_MS') ?? (quick ? 300 : 1_500);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const ping = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = new Socket();
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
  });

const completion = {
  id: 'c', object: 'chat.completion' as const, created: 0, model: 'gpt-4.1',
  choices: [{ index: 0, message: { role: 'assistant' as const, content: 'ok', refusal: null }, finish_reason: 'stop' as const, logprobs: null }],
  usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
};
const transport: Transport = {
  name: 'memory',
  origin: 'memory://bench',
  async send(ctx) {
    ctx.response = completion;
    ctx.usage = completion.usage;
  },
};
const request = { model: 'gpt-4.1', messages: [{ role: 'user' as const, content: 'hi' }] };

/** Median decisions/s over the rounds. */
async function rate(call: () => Promise<unknown>, concurrency: number): Promise<{ rps: number; p50Ms: number }> {
  const results = [];
  for (let round = 0; round < rounds; round++) results.push(await measure(async () => void (await call()), { concurrency, maxRequests: Infinity, maxMs: runMs }));
  return { rps: median(results.map((r) => r.rps)), p50Ms: median(results.map((r) => r.p50Ms)) };
}

export async function run(): Promise<void> {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
  } catch {
    console.log('redis-server is not installed: apt-get install -y redis-server (or brew install redis), then run pnpm bench redis');
    return;
  }
  const port = await freePort();
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  try {
    while (!(await ping(port))) await new Promise((resolve) => setTimeout(resolve, 20));
    const url = `redis://127.0.0.1:${port}`;
    const nodeRedis = createClient({ url });
    nodeRedis.on('error', () => undefined);
    await nodeRedis.connect();
    const [ioredis, ioredisForLimiter, admin] = [new Redis(url), new Redis(url), new Redis(url)];
    for (const client of [ioredis, ioredisForLimiter, admin]) client.on('error', () => undefined);
    await Promise.all([ioredis, ioredisForLimiter, admin].map((client) => client.ping()));
    // A round trip is one top-level request: a script (EVALSHA/EVAL) or a transaction (EXEC, what
    // rate-limiter-flexible sends); the commands inside them are not round trips of their own.
    const roundTrips = async () => {
      const info = (await admin.info('commandstats')) as string;
      let calls = 0;
      for (const match of info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) if (['evalsha', 'eval', 'exec'].includes(match[1] as string)) calls += Number(match[2]);
      return calls;
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

    console.log(`1. One decision (a fixed-window counter), concurrency 64, median of ${rounds} interleaved rounds × ${runMs} ms\n`);
    const rows: string[][] = [['contender', 'keys', 'decisions/s', 'round trips per decision', 'vs rate-limiter-flexible']];
    for (const keys of [1, 1_000]) {
      let i = 0;
      const key = () => `k${i++ % keys}`;
      const contenders: Array<[string, () => Promise<unknown>]> = [
        ['RateLimiterRedis.consume (ioredis)', () => limiter.consume(key())],
        ...Object.entries(stores).map(([label, store]): [string, () => Promise<unknown>] => [label, () => store.update(`bench:${key()}`, counter(Date.now()), windowMs)]),
      ];
      const measured = new Map<string, { rps: number[]; trips: number[] }>(contenders.map(([label]) => [label, { rps: [], trips: [] }]));
      for (let round = 0; round < rounds + 1; round++) {
        // Rotate who goes first, and throw the first round away (connections, JIT).
        for (let c = 0; c < contenders.length; c++) {
          const [label, call] = contenders[(c + round) % contenders.length]!;
          const before = await roundTrips();
          const result = await measure(async () => void (await call()), { concurrency: 64, maxRequests: Infinity, maxMs: runMs });
          if (round === 0) continue;
          measured.get(label)!.rps.push(result.rps);
          measured.get(label)!.trips.push(((await roundTrips()) - before) / result.requests);
        }
      }
      const baseline = median(measured.get(contenders[0]![0])!.rps);
      for (const [label, m] of measured) rows.push([label, String(keys), fixed(median(m.rps), 0), fixed(median(m.trips), 2), fixed(median(m.rps) / baseline, 2)]);
    }
    console.log(table(rows));

    console.log(`\n2. rateLimit (exact sliding window, 1e9 a second: a log of up to 1,000 entries) in a pipeline over an in-memory transport\n`);
    let storeErrors = 0;
    const limited = (store: Store | undefined) => {
      const llm = createPipeline({ transport, ...(store ? { store } : {}) });
      llm.events.on('store-error', () => storeErrors++);
      if (store) llm.use(rateLimit({ requests: { limit: 1e9, windowMs: 1_000 }, onStoreError: 'open' }));
      return () => llm.complete(request);
    };
    const memory = memoryStore();
    const contenders: Array<[string, () => Promise<unknown>]> = [
      ['no limiter', limited(undefined)],
      ['rateLimit, memory store', limited(memory)],
      ['rateLimit, redisStore (node-redis)', limited(redisStore({ client: nodeRedis, prefix: 'limit-node-redis:', timeoutMs: 5_000 }))],
      ['rateLimit, redisStore (ioredis)', limited(redisStore({ client: ioredis, prefix: 'limit-ioredis:', timeoutMs: 5_000 }))],
    ];
    const measured = [];
    for (const [label, call] of contenders) measured.push({ label, c64: await rate(call, 64), c1: await rate(call, 1) });
    const base = measured[0]!.c1.p50Ms;
    console.log(
      table([
        ['pipeline', 'calls/s c=64', 'p50 ms c=1', 'added per call, ms'],
        ...measured.map((m) => [m.label, fixed(m.c64.rps, 0), fixed(m.c1.p50Ms, 3), fixed(m.c1.p50Ms - base, 3)]),
      ]),
    );
    console.log(`store errors (a store call over keyedState's 50 ms; the calls went ahead, policy 'open'): ${storeErrors}`);
    await Promise.all([nodeRedis.close(), ioredis.quit(), ioredisForLimiter.quit(), admin.quit()]);
  } finally {
    server.kill('SIGKILL');
  }
}
