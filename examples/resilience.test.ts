/**
 * The fault test of the whole resilience pipeline: 10,000 calls through
 * `retry` + `breaker` + `rateLimit`, over real HTTP, against a mock upstream
 * that answers 30% of requests with a 503 and resets the connection of 5%
 * (seeded), next to the same 10,000 calls through the empty pipeline.
 *
 * Every wait (retry backoff, the limiter's queue, the upstream's latency)
 * runs on fake time. Nothing sleeps: a driver loop lets real I/O run and
 * advances the clock to the next timer only when every request is either
 * waiting on a timer in the pipeline or parked on the upstream's latency
 * timer. So HTTP is real and the waits are the middleware's real waits,
 * only compressed.
 */
import {
  type ChatCompletion,
  type ChatCompletionRequest,
  createPipeline,
  openAICompatible,
  type Pipeline,
  SluiceError,
  type Transport,
} from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { rateLimit } from '@sluice/ratelimit';
import { retry } from '@sluice/retry';
import { type FaultRule, type MockClock, type MockUpstream, mockUpstream, seededRandom } from '@sluice/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const total = 10_000;
const concurrency = 64;
const seed = 42;
/** Upstream latency, on fake time: requests overlap as they would for real. */
const latencyMs = 50;
const tickMs = 5;
const openMs = 30_000;
const faults: FaultRule[] = [
  { probability: 0.3, fault: { kind: 'status', status: 503 } },
  { probability: 0.05, fault: { kind: 'reset' } },
];
/** What a call may fail with here; anything else (UNEXPECTED above all) is a bug. */
const expectedCodes = new Set(['SERVER_ERROR', 'CONNECTION', 'RETRY_EXHAUSTED', 'CIRCUIT_OPEN', 'LIMIT_REJECTED']);
/** Turns the driver may stay idle with no timer to advance before it calls the run stuck. */
const stuckTurns = 1_000;

const ask = (index: number): ChatCompletionRequest => ({
  model: 'deepseek-v3.2',
  messages: [{ role: 'user', content: `Question number ${index}` }],
  max_tokens: 32,
});


/**
 * Where the requests are: sent and not answered yet (`inFlight`, counted
 * by the transport), and parked on the upstream's latency timer
 * (`parked`). When every request in flight is parked, nothing but a timer
 * can make progress. `changed()` resolves at the next change of either.
 */
class Traffic {
  inFlight = 0;
  parked = 0;
  #wake: (() => void) | undefined;

  /** True when every request in flight is parked on the upstream's timer (or none is out). */
  idle(): boolean {
    return this.inFlight <= this.parked;
  }

  changed(): Promise<void> {
    return new Promise((resolve) => (this.#wake = resolve));
  }

  bump(field: 'inFlight' | 'parked', by: number): void {
    this[field] += by;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/**
 * The upstream's clock (the faked globals), counting the requests parked
 * on its latency timer. Each wait is drawn between half and one and a half
 * times the latency (seeded), so answers arrive spread out as they do from
 * a real upstream, not all 64 at the same instant. Waits are rounded to
 * `tickMs`, so the few answers due at the same tick go out together: one
 * clock advance releases several, which keeps the run fast.
 */
function parkingClock(traffic: Traffic, random: () => number): MockClock {
  const pending = new Set<unknown>();
  const release = (handle: unknown) => {
    if (pending.delete(handle)) traffic.bump('parked', -1);
  };
  return {
    setTimeout(callback, ms) {
      const handle = setTimeout(
        () => {
          release(handle);
          callback();
        },
        Math.round((ms * (0.5 + random())) / tickMs) * tickMs,
      );
      pending.add(handle);
      traffic.bump('parked', 1);
      return handle;
    },
    clearTimeout(handle) {
      release(handle);
      clearTimeout(handle as ReturnType<typeof setTimeout>);
    },
    now: () => Date.now(),
  };
}

/** The real transport, counting the requests between `send()` and their answer. */
function counting(inner: Transport, traffic: Traffic): Transport {
  return {
    name: inner.name,
    origin: inner.origin,
    async send(ctx) {
      traffic.bump('inFlight', 1);
      try {
        await inner.send(ctx);
      } finally {
        traffic.bump('inFlight', -1);
      }
    },
    close: async () => inner.close?.(),
  };
}

interface Harness {
  upstream: MockUpstream;
  llm: Pipeline;
  traffic: Traffic;
}

async function harness(): Promise<Harness> {
  const traffic = new Traffic();
  const upstream = await mockUpstream({ seed, faults, latencyMs, clock: parkingClock(traffic, seededRandom(seed + 1)) });
  const transport = openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' });
  const llm = createPipeline({ transport: counting(transport, traffic) });
  return { upstream, llm, traffic };
}

/**
 * Lets I/O run until `done()`, and moves fake time to the next timer
 * whenever nothing but timers is left to happen. While requests are on
 * the wire it sleeps until the traffic changes (no busy loop). Throws when
 * nothing can happen any more and calls are still pending: a request left
 * hanging.
 */
async function drive(done: () => boolean, traffic: Traffic, pending: () => number): Promise<number> {
  let advances = 0;
  let stuck = 0;
  while (!done()) {
    // One event-loop turn: microtasks run out, woken calls reach the transport.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!traffic.idle()) {
      stuck = 0;
      await traffic.changed();
    } else if (vi.getTimerCount() > 0) {
      stuck = 0;
      // To the next timer, then every other timer due at that instant.
      vi.advanceTimersToNextTimer();
      vi.advanceTimersByTime(0);
      advances++;
    } else if (++stuck > stuckTurns) {
      throw new Error(`${pending()} call(s) pending with no I/O and no timer left`);
    }
  }
  return advances;
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
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const percent = (rate: number) => `${(rate * 100).toFixed(1)}%`;

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
      const h = await harness();
      harnesses.push(h);
      const circuit = breaker({ failures: 10, openMs });
      h.llm
        .use(retry({ attempts: 3, random: seededRandom(seed) }))
        .use(circuit)
        .use(rateLimit({ rpm: 60_000, concurrency: 48 }));
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
      expect(without.upstreamRequests).toBe(total);
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
