/**
 * The whole stack under faults, as users run it: does every call settle,
 * once, and give back what it held? Not a speed figure but a check, in
 * `bench/` because it runs on real time and real sockets for seconds
 * (the test suite runs on fake time).
 *
 * trackCost → cache → trimContext → budget → router (three deployments,
 * least-busy, hedging, a fallback model; each deployment with retry,
 * breaker and rateLimit) over three mock upstreams that fail in seeded
 * ways (503s, resets and malformed bodies mid-stream, 429s with
 * Retry-After, slow answers, hangs, cut streams). 3,000 calls (quick: 500)
 * at concurrency 100, half streamed; seeded at random: aborts at a random
 * time, 150 ms deadlines, a `break` after the first chunk, five `next()`s
 * asked at once on `run()`'s chunks, and repeated `temperature: 0`
 * prompts for the cache. It prints the outcomes by code and checks:
 * every call settled exactly once, no unhandled rejection or uncaught
 * exception, no listener error, the budget's holds all given back, the
 * ledger's total finite, and `close()` done within its grace period.
 *
 * It found three defects no unit test had: equal `rateLimit`s in each
 * deployment sharing one window (one provider's 429 paused them all), the
 * ledger losing an hour's report when its store restarted, and a wall
 * clock's step back holding circuits, windows and cooldowns for the step.
 * `BENCH_SOAK_CALLS` and `BENCH_SOAK_SEED` override the call count and seed.
 */
import { createPipeline, type ChatCompletionRequest, memoryStore, openAICompatible, type SluiceError } from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { cache, lruStorage } from '@sluice/cache';
import { trimContext } from '@sluice/context';
import { budget, trackCost } from '@sluice/cost';
import { rateLimit } from '@sluice/ratelimit';
import { retry } from '@sluice/retry';
import { router } from '@sluice/router';
import { type MockUpstream, mockUpstream, seededRandom } from '@sluice/testing';
import { envNumber, quick, table } from './lib.js';

export const name = 'soak';
export const description =
  'the whole stack (cost, cache, trim, budget, a hedged router over retry + breaker + rateLimit) under seeded faults, aborts, deadlines and read-ahead: every call settles once and gives back what it held';

export async function run(): Promise<void> {
  const calls = envNumber('BENCH_SOAK_CALLS') ?? (quick ? 500 : 3_000);
  const seed = envNumber('BENCH_SOAK_SEED') ?? 7;
  const random = seededRandom(seed);
  let unhandled = 0;
  let uncaught = 0;
  const onUnhandled = () => void unhandled++;
  const onUncaught = () => void uncaught++;
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUncaught);

  const upstreams: MockUpstream[] = [
    await mockUpstream({
      seed: 1,
      chunkDelayMs: 2,
      faults: [
        { probability: 0.1, fault: { kind: 'status', status: 503 } },
        { probability: 0.05, fault: { kind: 'reset', at: 'mid-stream', afterChunks: 3 } },
        { probability: 0.05, fault: { kind: 'malformed', afterChunks: 2 } },
      ],
    }),
    await mockUpstream({
      seed: 2,
      chunkDelayMs: 1,
      faults: [
        { probability: 0.2, fault: { kind: 'delay', latencyMs: 200 } },
        { probability: 0.05, fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } },
      ],
    }),
    await mockUpstream({ seed: 3, faults: [{ probability: 0.03, fault: { kind: 'hang' } }, { probability: 0.05, fault: { kind: 'cut', afterChunks: 2 } }] }),
  ];
  const [a, b, c] = upstreams as [MockUpstream, MockUpstream, MockUpstream];
  const transport = (upstream: MockUpstream) =>
    openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-soak', firstByteTimeoutMs: 1_000, attemptTimeoutMs: 2_000, idleTimeoutMs: 1_000 });
  const store = memoryStore();
  const costs = trackCost({ unknownModel: 'free' });
  const routed = router({
    deployments: [
      { id: 'a', model: 'gpt-4.1', transport: transport(a) },
      { id: 'b', model: 'gpt-4.1', transport: transport(b) },
      { id: 'c', model: 'gpt-4.1-mini', transport: transport(c) },
    ],
    middleware: () => [retry({ attempts: 3, random }), breaker({ failures: 20, openMs: 500 }), rateLimit({ rpm: 1_000_000, concurrency: 30 })],
    fallbacks: { 'gpt-4.1': ['gpt-4.1-mini'] },
    hedge: { delayMs: 150, ratio: 0.2 },
    strategy: 'least-busy',
  });
  const llm = createPipeline({ transport: routed.transport, store })
    .use(costs)
    .use(cache({ storage: lruStorage({ maxEntries: 200 }) }))
    .use(trimContext({ maxTokens: 3_000 }))
    .use(budget({ limitUsd: 1_000_000, period: 'day', name: 'soak' }))
    .use(routed);
  let listenerErrors = 0;
  llm.events.on('listener-error', () => void listenerErrors++);

  let settled = 0;
  let twice = 0;
  const codes = new Map<string, number>();
  const count = (code: string) => codes.set(code, (codes.get(code) ?? 0) + 1);
  const one = async (index: number): Promise<void> => {
    const stream = random() < 0.5;
    const repeated = random() < 0.3;
    const request: ChatCompletionRequest = {
      model: 'gpt-4.1',
      messages: [{ role: 'user', content: `question ${repeated ? index % 20 : index} ${'word '.repeat(Math.floor(random() * 50))}` }],
      ...(repeated ? { temperature: 0 } : {}),
    };
    const controller = new AbortController();
    const options = { signal: controller.signal, ...(random() < 0.1 ? { timeoutMs: 150 } : {}) };
    if (random() < 0.1) setTimeout(() => controller.abort(new Error('the user left')), Math.floor(random() * 300));
    let done = false;
    const end = (code: string) => {
      if (done) twice++;
      done = true;
      settled++;
      count(code);
    };
    try {
      if (!stream) {
        await llm.complete(request, options);
      } else {
        const how = random();
        if (how < 0.1) {
          const ctx = await llm.run({ ...request, stream: true }, options);
          const reader = (ctx.chunks as AsyncIterable<unknown>)[Symbol.asyncIterator]();
          const read = await Promise.all(Array.from({ length: 5 }, () => reader.next()));
          if (!read.at(-1)?.done) await reader.return?.();
        } else {
          let chunks = 0;
          for await (const _chunk of llm.stream(request, options)) if (++chunks === 1 && how < 0.2) break;
        }
      }
      end('ok');
    } catch (error) {
      end((error as SluiceError).code ?? String(error));
    }
  };

  const started = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 100 }, async () => {
    while (next < calls) await one(next++);
  }));
  const elapsedMs = performance.now() - started;
  const report = await costs.ledger.report();
  const held = (await store.get<{ holds?: unknown[] }>(`sluice:cost:soak:global:day:${new Date().toISOString().slice(0, 10)}`))?.holds;
  const closing = performance.now();
  await llm.close({ graceMs: 2_000 });
  const closeMs = performance.now() - closing;
  for (const upstream of upstreams) await upstream.close();
  process.off('unhandledRejection', onUnhandled);
  process.off('uncaughtException', onUncaught);

  console.log(`${calls} calls at concurrency 100, seed ${seed}, in ${(elapsedMs / 1000).toFixed(1)} s (${Math.round((calls / elapsedMs) * 1000)} calls/s)\n`);
  console.log(table([['outcome', 'calls'], ...[...codes].sort((x, y) => y[1] - x[1]).map(([code, n]) => [code, String(n)])]));
  console.log(`\nupstream requests: a ${a.requests.length}, b ${b.requests.length}, c ${c.requests.length}; ledger: ${report.requests} calls, $${report.usd.toFixed(6)}\n`);
  const checks: Array<[string, boolean]> = [
    [`every call settled exactly once (${settled} of ${calls}, ${twice} twice)`, settled === calls && twice === 0],
    [`no unhandled rejection or uncaught exception (${unhandled}, ${uncaught})`, unhandled === 0 && uncaught === 0],
    [`no listener error (${listenerErrors})`, listenerErrors === 0],
    [`the budget's holds all given back (${held === undefined ? 'no record' : `${held.length} left`})`, held !== undefined && held.length === 0],
    [`the ledger's total is finite ($${report.usd})`, Number.isFinite(report.usd)],
    [`close() within its grace period (${Math.round(closeMs)} ms)`, closeMs < 2_500],
  ];
  for (const [what, ok] of checks) console.log(`  ${what}: ${ok ? 'PASS' : 'FAIL'}`);
  console.log(`\n  ${checks.filter(([, ok]) => ok).length} of ${checks.length} checks passed`);
}
