/**
 * The proof of "correct by default": calls, half of them streams, through
 * the whole recommended pipeline (trackCost → trimContext → budget → retry
 * → breaker → rateLimit) over real HTTP, against a mock upstream whose
 * answers are often wrong in the ways real ones are: 503s, resets before
 * and during the body, streams cut short, SSE error events, bodies that
 * are not JSON, JSON that is not a completion (`choices: [null]`,
 * `choices: [{}]`, a `delta` where the `message` belongs and the other way
 * round, `delta: null`, `choices` that is not an array) and usage that is
 * not a count (`"abc"`, `-5`, `null`). Some streams are abandoned with
 * `break` after their second chunk.
 *
 * At the end, nothing is held: no call pending, no concurrency slot, no
 * token reservation, no budget hold; the ledger's total is the sum of the
 * `cost` events to the last bit, and no NaN reached any counter. Every
 * wait runs on fake time, driven by `fault-driver.ts`.
 */
import {
  type ChatCompletion,
  type ChatCompletionRequest,
  createPipeline,
  openAICompatible,
  type Pipeline,
  SluiceError,
  type Middleware,
} from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { trimContext } from '@sluice/context';
import { budget, type Ledger, spendLedger, trackCost } from '@sluice/cost';
import { rateLimit } from '@sluice/ratelimit';
import { retry } from '@sluice/retry';
import { type Fault, type FaultRule, type MockUpstream, mockUpstream, seededRandom } from '@sluice/testing';
import { type CheckedStore, checkedStore, closeTestPipelines, drain, recordEvents, testPipeline } from '@sluice/testing/kit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { counting, drive, latencyMs, parkingClock, percent, seconds, Traffic } from './fault-driver.js';

const total = 3_000;
const concurrency = 64;
const slots = 48;
const seed = 7;
const openMs = 30_000;
const maxTokens = 32;
const model = 'deepseek-v3.2';
/** A Monday 08:00 UTC: the run stays inside one hour of the ledger and one day of the budget. */
const start = Date.UTC(2026, 2, 2, 8, 0);
const day = '2026-03-02';
/**
 * Tokens per hour rather than per minute, so the whole run stays inside
 * one window: the limiter's record must then hold exactly the tokens the
 * run used, and a reservation never given back would show as a surplus.
 */
const tokens = { limit: 5_000_000, windowMs: 3_600_000 };
/** Reached a little past half way through the run, so the budget refuses the rest. */
const limitUsd = 0.014;

type Chunks = Array<Record<string, unknown>>;
/** The normal chunks with the one at `index` replaced (index clamped to the last content chunk). */
const replacing = (index: number, make: (chunk: Record<string, unknown>) => object) => (chunks: Chunks) =>
  chunks.map((chunk, i) => (i === Math.min(index, chunks.length - 3) ? make(chunk) : chunk));
const raw = (body: (completion: Record<string, unknown>) => object, chunks: (chunks: Chunks) => ReadonlyArray<object>): Fault => ({
  kind: 'raw',
  body,
  chunks,
});

const faults: FaultRule[] = [
  { probability: 0.12, fault: { kind: 'status', status: 503 } },
  { probability: 0.03, fault: { kind: 'reset' } },
  { probability: 0.03, fault: { kind: 'reset', at: 'mid-stream', afterChunks: 2 } },
  { probability: 0.03, fault: { kind: 'cut', afterChunks: 2 } },
  { probability: 0.02, fault: { kind: 'sse-error', afterChunks: 0 } },
  { probability: 0.02, fault: { kind: 'sse-error', afterChunks: 1, style: 'data' } },
  { probability: 0.02, fault: { kind: 'malformed', afterChunks: 1 } },
  // Valid JSON, not a valid answer: the first chunk (retry may still act), or a later one (it may not).
  {
    probability: 0.02,
    fault: raw((c) => ({ ...c, choices: [null] }), replacing(0, (c) => ({ ...c, choices: [null] }))),
  },
  {
    probability: 0.02,
    fault: raw((c) => ({ ...c, choices: [{}] }), replacing(1, (c) => ({ ...c, choices: [{}] }))),
  },
  {
    probability: 0.02,
    fault: raw(
      (c) => ({ ...c, choices: [{ index: 0, delta: { content: 'a delta' }, finish_reason: 'stop' }] }),
      replacing(1, (c) => ({ ...c, choices: [{ index: 0, delta: null, finish_reason: null }] })),
    ),
  },
  {
    probability: 0.02,
    fault: raw(
      (c) => ({ ...c, choices: [{ index: 0, message: null, finish_reason: 'stop' }] }),
      replacing(2, (c) => ({ ...c, choices: [{ index: 0, message: { role: 'assistant', content: 'a message' }, finish_reason: null }] })),
    ),
  },
  {
    probability: 0.02,
    fault: raw((c) => ({ ...c, choices: { 0: 'not an array' } }), replacing(3, (c) => ({ ...c, choices: 'none' }))),
  },
  // Usage that is not a count, in the body or the stream's usage chunk.
  { probability: 0.02, fault: { kind: 'usage', usage: { prompt_tokens: 'abc', completion_tokens: 7, total_tokens: 'abc' } } },
  { probability: 0.02, fault: { kind: 'usage', usage: { prompt_tokens: -5, completion_tokens: 7, total_tokens: 2 } } },
  { probability: 0.02, fault: { kind: 'usage', usage: null } },
  { probability: 0.02, fault: { kind: 'usage', usage: { prompt_tokens: 12, completion_tokens: null, total_tokens: 12 } } },
  { probability: 0.02, fault: { kind: 'usage', usage: 'lots' } },
];

/** What a call may fail with here; anything else (UNEXPECTED above all) is a bug. */
const expectedCodes = new Set([
  'SERVER_ERROR',
  'CONNECTION',
  'STREAM_CUT',
  'MALFORMED_RESPONSE',
  'RETRY_EXHAUSTED',
  'CIRCUIT_OPEN',
  'BUDGET_EXCEEDED',
]);

const ask = (index: number): ChatCompletionRequest => ({
  model,
  messages: [
    { role: 'system', content: 'Answer in one line.' },
    { role: 'user', content: `Question number ${index}` },
  ],
  max_tokens: maxTokens,
});
/** Every eighth stream is abandoned with `break` once its second chunk arrived. */
const abandons = (index: number) => index % 16 === 3;

type Result =
  | { kind: 'completion'; value: ChatCompletion }
  | { kind: 'stream'; text: string; chunks: number }
  | { kind: 'abandoned'; chunks: number }
  | { kind: 'error'; error: unknown };

/**
 * What the limiter must have booked, attempt by attempt, by its own rule:
 * the usage's `total_tokens` when the upstream reported a usable one, else
 * the prompt it reserved for plus the streamed text at four characters a
 * token. Innermost, so it sees exactly the attempts the limiter admitted.
 */
interface Meter {
  attempts: number;
  usedTokens: number;
}

function metering(meter: Meter): Middleware {
  return async function metering(ctx, next) {
    meter.attempts++;
    const prompt = (ctx.state.ratelimit?.reservedTokens ?? Number.NaN) - maxTokens;
    try {
      await next();
    } catch (error) {
      meter.usedTokens += prompt;
      throw error;
    }
    if (!ctx.stream) {
      meter.usedTokens += ctx.usage ? ctx.usage.total_tokens : prompt;
      return;
    }
    // Registered after next(): bound to this attempt's response, as the limiter's own listener is.
    ctx.onSettled((settlement) => {
      meter.usedTokens += settlement.usage ? settlement.usage.total_tokens : prompt + Math.ceil(settlement.streamedText.length / 4);
    });
  };
}

/** Where a value holds a number that is not finite (NaN above all), or undefined. */
function nonFinite(value: unknown, path = ''): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : `${path || 'value'} is ${value}`;
  if (typeof value !== 'object' || value === null || value instanceof Error) return undefined;
  for (const [key, child] of Object.entries(value)) {
    const found = nonFinite(child, `${path}.${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

interface Harness {
  upstream: MockUpstream;
  llm: Pipeline;
  traffic: Traffic;
  store: CheckedStore;
  meter: Meter;
  ledger: Ledger;
}

/** The recommended pipeline, outermost first, against a mock upstream with the faults above. */
async function harness(): Promise<Harness> {
  const traffic = new Traffic();
  const meter: Meter = { attempts: 0, usedTokens: 0 };
  const upstream = await mockUpstream({ seed, faults, latencyMs, clock: parkingClock(traffic, seededRandom(seed + 1)) });
  // Every reducer of every stateful middleware runs twice on copies: impure or non-JSON state fails the run.
  const store = checkedStore();
  const ledger = spendLedger();
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }), store })
    .use(trackCost({ ledger }))
    .use(trimContext())
    .use(budget({ limitUsd, period: 'day', key: 'global' }))
    .use(retry({ attempts: 3, random: seededRandom(seed) }))
    .use(breaker({ failures: 10, openMs }))
    .use(rateLimit({ tokens, concurrency: slots, id: 'fault' }))
    .use(metering(meter))
    .use(counting(traffic));
  return { upstream, llm, traffic, store, meter, ledger };
}

/** Runs `calls` through `work`, `concurrency` at a time, driving fake time until every one settled. */
async function load(h: Harness, calls: number, work: (index: number) => Promise<Result>) {
  const results = new Array<Result>(calls);
  let next = 0;
  let started = 0;
  let settled = 0;
  const worker = async () => {
    while (next < calls) {
      const index = next++;
      started++;
      try {
        results[index] = await work(index);
      } catch (error: unknown) {
        results[index] = { kind: 'error', error };
      } finally {
        settled++;
      }
    }
  };
  const virtualStart = Date.now();
  const wallStart = performance.now();
  const cpu0 = process.cpuUsage();
  const workers = Promise.all(Array.from({ length: Math.min(concurrency, calls) }, worker));
  const advances = await drive(() => settled === calls, h.traffic, () => started - settled);
  await workers;
  const cpu = process.cpuUsage(cpu0);
  return { results, started, settled, advances, virtualMs: Date.now() - virtualStart, wallMs: performance.now() - wallStart, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** One call: even indices complete, odd ones stream (read to the end, or abandoned with `break`). */
async function call(llm: Pipeline, index: number): Promise<Result> {
  if (index % 2 === 0) return { kind: 'completion', value: await llm.complete(ask(index)) };
  let text = '';
  let chunks = 0;
  let abandoned = false;
  for await (const chunk of llm.stream(ask(index))) {
    chunks++;
    text += chunk.choices[0]?.delta.content ?? '';
    if (abandons(index) && chunks === 2) {
      abandoned = true;
      break;
    }
  }
  return abandoned ? { kind: 'abandoned', chunks } : { kind: 'stream', text, chunks };
}

function tally(results: readonly Result[]): Record<string, number> {
  const codes: Record<string, number> = {};
  for (const result of results) {
    const code =
      result.kind !== 'error' ? result.kind : SluiceError.is(result.error) ? result.error.code : `untyped ${String(result.error)}`;
    codes[code] = (codes[code] ?? 0) + 1;
  }
  return codes;
}

interface WindowRecord {
  tokens: { total: number; flat: number[] };
}
interface BudgetRecord {
  spentUsd: number;
  holds: number[];
}

describe('a stream the upstream accepted and broke at its first chunk, inside retry', () => {
  afterEach(closeTestPipelines);

  it('is charged to the budget as trackCost records it: its prompt', async () => {
    const { llm, upstream, clock, store, events } = await testPipeline({
      middleware: [trackCost(), trimContext(), budget({ limitUsd: 1, period: 'day' }), retry({ attempts: 2 })],
    });
    // Not retried: a malformed answer is the upstream's fault but not worth the same request again.
    upstream.enqueue({ kind: 'raw', chunks: [{ choices: [null] }] });
    const { error } = await clock.run(drain(llm.stream(ask(1))));
    expect(error).toMatchObject({ code: 'MALFORMED_RESPONSE' });
    const cost = events.of('cost')[0];
    expect(cost).toMatchObject({ estimated: true });
    expect(cost?.usd).toBeGreaterThan(0);
    const periodId = new Date(clock.now()).toISOString().slice(0, 10);
    const spend = JSON.parse((store as CheckedStore).raw(`sluice:cost:budget:global:day:${periodId}`) ?? 'null') as BudgetRecord;
    expect(spend.holds).toEqual([]);
    expect(spend.spentUsd).toBe(cost?.usd);
  });
});

describe('the whole pipeline under malformed answers and non-numeric usage', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  const harnesses: Harness[] = [];

  beforeEach(() => {
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: start });
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
    'settles every call, holds no slot, reservation or budget, and keeps the ledger exact',
    async () => {
      const h = await harness();
      harnesses.push(h);
      const { ledger } = h;
      const limiterKey = 'sluice:ratelimit:fault:global';
      const budgetKey = (periodId: string) => `sluice:cost:budget:global:day:${periodId}`;
      const events = recordEvents(h.llm.events, [
        'cost', 'cost-anomaly', 'budget-warning', 'budget-reject', 'retry', 'circuit-open', 'limit-wait',
        'store-error', 'listener-error',
      ]);

      const run = await load(h, total, (index) => call(h.llm, index));

      const report = await ledger.report();
      const costs = events.of('cost');
      let costSum = 0;
      for (const event of costs) costSum += event.usd;
      const window = JSON.parse(h.store.raw(limiterKey) ?? 'null') as WindowRecord | null;
      const spend = JSON.parse(h.store.raw(budgetKey(day)) ?? 'null') as BudgetRecord | null;
      const kinds = tally(run.results);
      console.log(
        [
          `correct-by-default fault test: ${total} calls (half streams, 1 in 8 of them abandoned), concurrency ${concurrency}, ` +
            `seed ${seed}, ${percent(faults.reduce((sum, rule) => sum + rule.probability, 0))} of answers faulty`,
          `  outcomes: ${JSON.stringify(kinds)}`,
          `  upstream requests: ${h.upstream.requests.length} (limiter admitted ${h.meter.attempts}); ` +
            `events: ${['retry', 'circuit-open', 'limit-wait', 'budget-warning', 'budget-reject', 'cost', 'cost-anomaly']
              .map((name) => `${name} ${events.of(name as 'cost').length}`)
              .join(', ')}`,
          `  ledger: $${report.usd} over ${report.requests} calls (${costs.filter((event) => event.estimated).length} estimated); ` +
            `cost events sum to $${costSum}`,
          `  budget: $${spend?.spentUsd} spent of $${limitUsd}, holds ${JSON.stringify(spend?.holds)}`,
          `  limiter window: ${window?.tokens.total} tokens booked, ${h.meter.usedTokens} used`,
          `  fake time ${seconds(run.virtualMs)} (${run.advances} clock advances), wall ${seconds(run.wallMs)}, cpu ${seconds(run.cpuMs)}`,
        ].join('\n'),
      );

      // No call pending; each a result or a typed error with a known code.
      expect(run.started).toBe(total);
      expect(run.settled).toBe(total);
      for (const [index, result] of run.results.entries()) {
        if (result.kind === 'completion') expect(result.value.choices[0]?.message.content).toMatch(/^Echo: Question number/);
        else if (result.kind === 'stream') expect(result.chunks).toBeGreaterThan(0);
        else if (result.kind === 'abandoned') expect(abandons(index)).toBe(true);
        else {
          expect(SluiceError.is(result.error)).toBe(true);
          expect(expectedCodes).toContain((result.error as SluiceError).code);
          const cause = (result.error as SluiceError).cause;
          if (SluiceError.is(cause)) expect(cause.code).not.toBe('UNEXPECTED');
        }
      }
      // The faults were really met: streams abandoned, malformed answers refused, the budget reached.
      expect(kinds['abandoned']).toBeGreaterThan(0);
      expect(kinds['MALFORMED_RESPONSE']).toBeGreaterThan(0);
      expect(kinds['BUDGET_EXCEEDED']).toBeGreaterThan(0);
      expect(events.of('limit-wait').some((event) => event.limit === 'concurrency')).toBe(true);
      expect(events.of('budget-reject').length).toBe(kinds['BUDGET_EXCEEDED']);
      expect(unhandled).toEqual([]);
      expect(events.of('store-error')).toEqual([]);
      expect(events.of('listener-error')).toEqual([]);
      h.store.assertClean();

      // The limiter holds no token reservation: its window holds what was used, to the token.
      expect(window).not.toBeNull();
      expect(window?.tokens.total).toBe(h.meter.usedTokens);
      expect((window?.tokens.flat ?? []).reduce((sum, value, i) => (i % 2 === 1 ? sum + value : sum), 0)).toBe(h.meter.usedTokens);
      // The budget holds nothing, never went past its limit, and spent what the ledger recorded.
      expect(spend?.holds).toEqual([]);
      expect(spend?.spentUsd).toBeLessThanOrEqual(limitUsd + 1e-9);
      expect(spend?.spentUsd).toBeCloseTo(report.usd, 12);
      // The ledger is exact: the cost events, summed in the order they were recorded, and nothing else.
      expect(report.requests).toBe(costs.length);
      expect(report.usd).toBe(costSum);
      for (const value of [report, window, spend, ...costs, ...events.of('cost-anomaly'), ...events.of('budget-warning'), ...events.of('budget-reject')]) {
        expect(nonFinite(value)).toBeUndefined();
      }

      // The next day (a new budget period, the circuit long since due to probe),
      // the anomaly alert still works: its baselines are numbers, not NaN.
      vi.setSystemTime(start + 86_400_000);
      h.meter.usedTokens = 0;
      h.upstream.enqueue({ kind: 'ok', reply: { usage: { prompt_tokens: 2_000, completion_tokens: 10 } } });
      const alert = await load(h, 1, () => h.llm.complete(ask(-1)).then((value) => ({ kind: 'completion' as const, value })));
      expect(alert.results[0]?.kind).toBe('completion');
      const anomaly = events.of('cost-anomaly').find((event) => event.metric === 'tokens-per-request' && event.value === 2_010);
      expect(anomaly?.ratio).toBeGreaterThan(5);
      expect(nonFinite(anomaly)).toBeUndefined();

      // No concurrency slot is held: all the slots admit at once, and one more waits for a slot.
      const waitsForSlot = () =>
        new Promise<void>((resolve) => h.llm.events.on('limit-wait', (event) => event.limit === 'concurrency' && resolve()));
      const received = h.upstream.requests.length;
      h.upstream.enqueue(...Array.from({ length: slots + 1 }, (): Fault => ({ kind: 'ok' })));
      const probes: Array<Promise<string>> = [];
      const probe = (index: number) =>
        probes.push(h.llm.complete(ask(index)).then(() => 'answered', (error: unknown) => `failed: ${String(error)}`));
      // Whichever comes first: every slot's request at the upstream, a wait for a slot, or an answer.
      const firstOf = (requests: number) =>
        Promise.race([
          h.upstream.waitForRequests(received + requests).then(() => 'all admitted'),
          waitsForSlot().then(() => 'one waited'),
          ...probes,
        ]);
      for (let i = 0; i < slots; i++) probe(-2 - i);
      expect(await firstOf(slots)).toBe('all admitted');
      probe(-100);
      expect(await firstOf(slots + 1)).toBe('one waited');
      let done = 0;
      for (const settled of probes) void settled.then(() => done++);
      await drive(() => done === probes.length, h.traffic, () => probes.length - done);
      expect(await Promise.all(probes)).toEqual(Array.from({ length: slots + 1 }, () => 'answered'));

      // And again nothing is held, in the new day's budget and the limiter's window.
      expect(JSON.parse(h.store.raw(budgetKey('2026-03-03')) ?? 'null')).toMatchObject({ holds: [] });
      expect((JSON.parse(h.store.raw(limiterKey) ?? 'null') as WindowRecord).tokens.total).toBe(h.meter.usedTokens);
      expect(unhandled).toEqual([]);
      h.store.assertClean();
    },
    // About 15 s of CPU (40–60 s of wall time on a busy 2-core machine); the margin is for a busier one.
    300_000,
  );
});
