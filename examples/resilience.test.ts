/**
 * The fault test of the whole resilience pipeline: 10,000 calls through
 * `retry` + `breaker` + `rateLimit`, over real HTTP, against a mock upstream
 * that answers 30% of requests with a 503 and resets the connection of 5%
 * (seeded), next to the same 10,000 calls through the empty pipeline.
 * Every wait runs on fake time, driven by `fault-driver.ts`.
 */
import {
  type ChatCompletion,
  type ChatCompletionRequest,
  createPipeline,
  type Middleware,
  openAICompatible,
  type Pipeline,
  SluiceError,
} from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { rateLimit } from '@sluice/ratelimit';
import { retry } from '@sluice/retry';
import { type FaultRule, type MockUpstream, mockUpstream, seededRandom } from '@sluice/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { counting, drive, latencyMs, parkingClock, percent, seconds, Traffic } from './fault-driver.js';

const total = 10_000;
const concurrency = 64;
const seed = 42;
const openMs = 30_000;
const faults: FaultRule[] = [
  { probability: 0.3, fault: { kind: 'status', status: 503 } },
  { probability: 0.05, fault: { kind: 'reset' } },
];
/** What a call may fail with here; anything else (UNEXPECTED above all) is a bug. */
const expectedCodes = new Set(['SERVER_ERROR', 'CONNECTION', 'RETRY_EXHAUSTED', 'CIRCUIT_OPEN', 'LIMIT_REJECTED']);

const ask = (index: number): ChatCompletionRequest => ({
  model: 'deepseek-v3.2',
  messages: [{ role: 'user', content: `Question number ${index}` }],
  max_tokens: 32,
});


interface Harness {
  upstream: MockUpstream;
  llm: Pipeline;
  traffic: Traffic;
}

/** A pipeline of `middleware` (outermost first) against a fresh mock upstream, counting its traffic innermost. */
async function harness(middleware: readonly Middleware[] = []): Promise<Harness> {
  const traffic = new Traffic();
  const upstream = await mockUpstream({ seed, faults, latencyMs, clock: parkingClock(traffic, seededRandom(seed + 1)) });
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }) });
  for (const step of [...middleware, counting(traffic)]) llm.use(step);
  return { upstream, llm, traffic };
}

type Result = { ok: true; value: ChatCompletion } | { ok: false; error: unknown };

interface LoadReport {
  results: Result[];
  started: number;
  settled: number;
  upstreamRequests: number;
  virtualMs: number;
  wallMs: number;
  /** CPU time of this process (client and mock upstream) during the run. */
  cpuMs: number;
  advances: number;
}

/** Sends the 10,000 calls, 64 at a time, and drives fake time until all settled. */
async function load(h: Harness): Promise<LoadReport> {
  const results = new Array<Result>(total);
  let next = 0;
  let started = 0;
  let settled = 0;
  const worker = async () => {
    while (next < total) {
      const index = next++;
      started++;
      try {
        results[index] = { ok: true, value: await h.llm.complete(ask(index)) };
      } catch (error: unknown) {
        results[index] = { ok: false, error };
      } finally {
        settled++;
      }
    }
  };
  const virtualStart = Date.now();
  const wallStart = performance.now();
  const cpu0 = process.cpuUsage();
  const workers = Promise.all(Array.from({ length: concurrency }, worker));
  const advances = await drive(() => settled === total, h.traffic, () => started - settled);
  await workers;
  const cpu = process.cpuUsage(cpu0);
  return {
    results,
    started,
    settled,
    upstreamRequests: h.upstream.requests.length,
    virtualMs: Date.now() - virtualStart,
    wallMs: performance.now() - wallStart,
    cpuMs: (cpu.user + cpu.system) / 1000,
    advances,
  };
}

const successRate = (report: LoadReport) => report.results.filter((result) => result.ok).length / total;

function tally(report: LoadReport): Record<string, number> {
  const codes: Record<string, number> = {};
  for (const result of report.results) {
    const code = result.ok ? 'ok' : SluiceError.is(result.error) ? result.error.code : `untyped ${String(result.error)}`;
    codes[code] = (codes[code] ?? 0) + 1;
  }
  return codes;
}

describe('the resilience pipeline under seeded faults (30% 503, 5% resets)', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  const harnesses: Harness[] = [];

  beforeEach(() => {
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });

  afterEach(async () => {
    vi.useRealTimers();
    process.off('unhandledRejection', onUnhandled);
    for (const h of harnesses.splice(0)) {
      await h.llm.close();
      await h.upstream.close();
    }
  });

  it(
    'settles 10,000 calls as completions or typed errors, none pending, above the rate without it',
    async () => {
      const wallStart = performance.now();

      // Without the middleware: the same upstream, the same seed.
      const bare = await harness();
      harnesses.push(bare);
      const without = await load(bare);

      // With it, in the design's order: retry outermost, the limiter innermost.
      const circuit = breaker({ failures: 10, openMs });
      const h = await harness([retry({ attempts: 3, random: seededRandom(seed) }), circuit, rateLimit({ rpm: 60_000, concurrency: 48 })]);
      harnesses.push(h);
      const seen: Record<string, number> = {};
      const names = ['retry', 'retry-stop', 'circuit-open', 'circuit-close', 'limit-wait'] as const;
      for (const name of names) h.llm.events.on(name, () => void (seen[name] = (seen[name] ?? 0) + 1));
      const withIt = await load(h);

      const wallMs = performance.now() - wallStart;
      console.log(
        [
          `fault test: ${total} calls, concurrency ${concurrency}, seed ${seed}, upstream 30% 503 + 5% resets, ` +
            `${latencyMs / 2}–${latencyMs * 1.5} ms latency (fake time)`,
          `  success without middleware: ${percent(successRate(without))}  ${JSON.stringify(tally(without))}`,
          `  success with retry + breaker + rateLimit: ${percent(successRate(withIt))}  ${JSON.stringify(tally(withIt))}`,
          `  upstream requests: ${without.upstreamRequests} without, ${withIt.upstreamRequests} with ` +
            `(×${(withIt.upstreamRequests / total).toFixed(3)})`,
          `  events: ${JSON.stringify(seen)}`,
          `  circuit at the end: ${JSON.stringify(await circuit.state(`${h.upstream.url}|deepseek-v3.2`))}`,
          `  fake time: ${seconds(without.virtualMs)} without, ${seconds(withIt.virtualMs)} with ` +
            `(${without.advances + withIt.advances} clock advances); ` +
            `wall ${seconds(without.wallMs)} + ${seconds(withIt.wallMs)}, ` +
            `cpu ${seconds(without.cpuMs)} + ${seconds(withIt.cpuMs)}, ${seconds(wallMs)} in all`,
        ].join('\n'),
      );

      for (const report of [without, withIt]) {
        // No call left pending: every one started and settled.
        expect(report.started).toBe(total);
        expect(report.settled).toBe(total);
        // Every result is a completion or a typed error with a known code.
        for (const result of report.results) {
          if (result.ok) {
            expect(result.value.choices[0]?.message.content).toMatch(/^Echo: Question number/);
          } else {
            expect(SluiceError.is(result.error)).toBe(true);
            expect(expectedCodes).toContain((result.error as SluiceError).code);
          }
        }
      }
      // Without the middleware, never more than one request a call. A request can fail as CONNECTION
      // before the upstream records it (sent on a keep-alive socket the server is just closing after a
      // reset: a race a loaded machine widens), so only those may be missing.
      expect(without.upstreamRequests).toBeLessThanOrEqual(total);
      expect(without.upstreamRequests).toBeGreaterThanOrEqual(total - (tally(without).CONNECTION ?? 0));
      expect(successRate(withIt)).toBeGreaterThan(successRate(without));
      // The retry budget bounds the extra load: its first 10 tokens, 0.2 a call, 10 a second.
      const budget = 10 + total * 0.2 + 10 * Math.ceil(withIt.virtualMs / 1000);
      expect(withIt.upstreamRequests - total).toBeLessThanOrEqual(budget);
      expect(unhandled).toEqual([]);

      // Whatever the run did to the circuit, it is not held open: once its
      // open time is over, one good answer closes it.
      const key = `${h.upstream.url}|deepseek-v3.2`;
      vi.advanceTimersByTime(openMs);
      h.upstream.enqueue({ kind: 'ok' });
      let probed: Result | undefined;
      void h.llm.complete(ask(-1)).then(
        (value) => (probed = { ok: true, value }),
        (error: unknown) => (probed = { ok: false, error }),
      );
      await drive(() => probed !== undefined, h.traffic, () => 1);
      expect(probed?.ok).toBe(true);
      expect(await circuit.state(key)).toMatchObject({ state: 'closed', failures: 0 });
      expect(unhandled).toEqual([]);
    },
    // It takes about 20 s of CPU (mostly the 22,000 HTTP exchanges); the
    // margin is for a machine busy with other work.
    600_000,
  );
});
