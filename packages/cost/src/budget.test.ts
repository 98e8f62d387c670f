import { type ChatMessage, type Middleware, type Pipeline, createPipeline, memoryStore, openAICompatible } from '@sluice/core';
import { type MockUpstream, mockUpstream } from '@sluice/testing';
import { drain, manualClock, recordEvents } from '@sluice/testing/kit';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { budget } from './budget.js';
import type { BudgetOptions } from './options.js';
import { priceTable } from './price-table.js';
import { trackCost } from './track-cost.js';

const messages: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Tell me about sluice gates in one paragraph.' },
];

// Prompts are free here, so a call's worst case is exactly its output cap:
// 100 tokens of `big` cost $0.10, of `small` $0.01.
const prices = priceTable({
  big: { input: 0, output: 1_000, contextWindow: 10_000, maxOutput: 1_000 },
  small: { input: 0, output: 100, contextWindow: 10_000, maxOutput: 1_000 },
});
const request = { model: 'big', messages, max_completion_tokens: 100 };

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const closable of open.splice(0).reverse()) await closable.close();
});

interface Setup {
  budget: Omit<BudgetOptions, 'prices'>;
  /** Output tokens the mock reports for every answer (default 100: the whole cap). */
  completionTokens?: number;
  clock?: ReturnType<typeof manualClock>;
  before?: Middleware;
}

async function setup(options: Setup): Promise<{ llm: Pipeline; upstream: MockUpstream; costs: ReturnType<typeof trackCost> }> {
  const upstream = await mockUpstream({
    reply: { content: 'A short answer.', usage: { prompt_tokens: 50, completion_tokens: options.completionTokens ?? 100 } },
  });
  const costs = trackCost({ prices, anomaly: false });
  const llm = createPipeline({
    transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }),
    ...(options.clock ? { clock: options.clock } : {}),
  }).use(costs);
  if (options.before) llm.use(options.before);
  llm.use(budget({ prices, ...options.budget }));
  open.push(upstream, llm);
  return { llm, upstream, costs };
}

const settle = <T>(promises: Array<Promise<T>>) => Promise.allSettled(promises);
const rejected = (results: PromiseSettledResult<unknown>[]) => results.filter((result) => result.status === 'rejected');

describe('budget', () => {
  it('never lets 100 concurrent calls spend past the limit', async () => {
    const { llm, upstream, costs } = await setup({ budget: { limitUsd: 5, period: 'day' } });
    const results = await settle(Array.from({ length: 100 }, () => llm.complete(request)));
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(50);
    for (const result of rejected(results)) expect(result.reason).toMatchObject({ code: 'BUDGET_EXCEEDED', retryable: false });
    expect(upstream.requests).toHaveLength(50);
    const spent = (await costs.ledger.report()).usd;
    expect(spent).toBeCloseTo(5, 9);
    expect(spent).toBeLessThanOrEqual(5 + 1e-9);
  });

  it('settles each call to its real cost, so cheaper answers make room for more calls', async () => {
    // Answers use 20 of their 100 output tokens: $0.02 spent of $0.10 reserved.
    const { llm, costs } = await setup({ budget: { limitUsd: 1, period: 'day' }, completionTokens: 20 });
    const results = await llm.batch(Array.from({ length: 100 }, () => request), { concurrency: 2 });
    const ok = results.filter((result) => result.ok).length;
    // Settled at the worst case, only 10 would have fitted; at $0.02 each, at least 40 do.
    expect(ok).toBeGreaterThanOrEqual(40);
    const spent = (await costs.ledger.report()).usd;
    expect(spent).toBeCloseTo(ok * 0.02, 9);
    expect(spent).toBeLessThanOrEqual(1 + 1e-9);
  });

  it('never overspends, whatever the limit, concurrency and answer lengths', async () => {
    const upstream = await mockUpstream({
      reply: (body) => ({ content: 'ok', usage: { prompt_tokens: 5, completion_tokens: Number(body.max_completion_tokens) } }),
    });
    open.push(upstream);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 40 }),
        fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 40 }),
        async (limitCents, concurrency, caps) => {
          const costs = trackCost({ prices, anomaly: false });
          const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }) })
            .use(costs)
            .use(budget({ prices, limitUsd: limitCents / 100, period: 'hour' }));
          await llm.batch(caps.map((cap) => ({ ...request, max_completion_tokens: cap })), { concurrency });
          const spent = (await costs.ledger.report()).usd;
          await llm.close();
          expect(spent).toBeLessThanOrEqual(limitCents / 100 + 1e-9);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('refuses with the key, limit, spend, reservations and period in the error, as a final error', async () => {
    const clock = manualClock(Date.UTC(2026, 10, 25, 9, 30));
    const { llm } = await setup({ budget: { key: { tag: 'tenant' }, limitUsd: 0.25, period: 'day' }, clock });
    const exceededRecorder = recordEvents(llm.events, ['budget-reject']);
    await llm.complete(request, { tags: { tenant: 'acme' } });
    await llm.complete(request, { tags: { tenant: 'acme' } });
    await expect(llm.complete(request, { tags: { tenant: 'acme' } })).rejects.toMatchObject({
      name: 'BudgetExceededError',
      code: 'BUDGET_EXCEEDED',
      retryable: false,
      final: true,
      key: 'tenant:acme',
      period: 'day',
      limitUsd: 0.25,
      spentUsd: expect.closeTo(0.2, 9),
      reservedUsd: 0,
      requestedUsd: expect.closeTo(0.1, 9),
      resetsAt: Date.UTC(2026, 10, 26),
    });
    expect(exceededRecorder.of('budget-reject')).toEqual([expect.objectContaining({ action: 'reject', model: 'big', key: 'tenant:acme' })]);
  });

  it('keeps one limit per value of a tag; calls without the tag share the `missing` key', async () => {
    const { llm } = await setup({ budget: { key: { tag: 'tenant', missing: 'untagged' }, limitUsd: 0.1, period: 'day' } });
    await llm.complete(request, { tags: { tenant: 'acme' } });
    await llm.complete(request, { tags: { tenant: 'globex' } });
    await expect(llm.complete(request, { tags: { tenant: 'acme' } })).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED' });
    await llm.complete(request);
    await expect(llm.complete(request)).rejects.toMatchObject({ key: 'tenant:untagged' });
  });

  it('keeps one limit per model with the shared key vocabulary, or per key a function gives', async () => {
    const perModel = await setup({ budget: { key: 'model', limitUsd: 0.1, period: 'day' } });
    await perModel.llm.complete(request);
    await perModel.llm.complete({ ...request, model: 'small' });
    await expect(perModel.llm.complete(request)).rejects.toMatchObject({ key: 'model:big' });
    const custom = await setup({ budget: { key: (ctx) => `team-${ctx.tags.team ?? 'none'}`, limitUsd: 0.1, period: 'day' } });
    await custom.llm.complete(request, { tags: { team: 'a' } });
    await expect(custom.llm.complete(request, { tags: { team: 'a' } })).rejects.toMatchObject({ key: 'team-a' });
  });

  it('enforces several limits at once, and releases what it reserved in the others when one refuses', async () => {
    const { llm, costs } = await setup({
      budget: { limits: [{ limitUsd: 0.5, period: 'day' }, { key: { tag: 'tenant' }, limitUsd: 0.3, period: 'hour' }] },
    });
    for (let i = 0; i < 3; i++) await llm.complete(request, { tags: { tenant: 'acme' } });
    await expect(llm.complete(request, { tags: { tenant: 'acme' } })).rejects.toMatchObject({ key: 'tenant:acme', period: 'hour' });
    // The refused call's global hold was released: globex still gets the last $0.20.
    await llm.complete(request, { tags: { tenant: 'globex' } });
    await llm.complete(request, { tags: { tenant: 'globex' } });
    await expect(llm.complete(request, { tags: { tenant: 'globex' } })).rejects.toMatchObject({ key: 'global', period: 'day' });
    expect((await costs.ledger.report()).usd).toBeCloseTo(0.5, 9);
  });

  it('downgrades to a cheaper model that fits, rewriting the request', async () => {
    const { llm, upstream } = await setup({ budget: { limitUsd: 0.15, period: 'day', onExceed: { downgradeTo: 'small' } } });
    const exceededRecorder = recordEvents(llm.events, ['budget-reject']);
    const costsRecorder = recordEvents(llm.events, ['cost']);
    await llm.complete(request);
    const ctx = await llm.run(request);
    expect(upstream.requests.map((sent) => (sent.body as { model: string }).model)).toEqual(['big', 'small']);
    expect(ctx.state.budget).toMatchObject({ model: 'small', downgradedFrom: 'big', reservedUsd: expect.closeTo(0.01, 9) });
    expect(exceededRecorder.of('budget-reject')).toEqual([expect.objectContaining({ action: 'downgrade', model: 'big', downgradedTo: 'small' })]);
    expect(costsRecorder.of('cost').map((cost) => cost.model)).toEqual(['big', 'small']);
    expect(costsRecorder.of('cost')[1]?.usd).toBeCloseTo(0.01, 9);
  });

  it('refuses when even the cheaper model does not fit', async () => {
    const { llm } = await setup({ budget: { limitUsd: 0.1, period: 'day', onExceed: { downgradeTo: ['small'] } } });
    await llm.complete(request);
    await expect(llm.complete(request)).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED', requestedUsd: expect.closeTo(0.01, 9) });
  });

  it("sends the call anyway under 'warn', with an event", async () => {
    const { llm, upstream } = await setup({ budget: { limitUsd: 0.1, period: 'day', onExceed: 'warn' } });
    const exceededRecorder = recordEvents(llm.events, ['budget-reject']);
    await llm.complete(request);
    await llm.complete(request);
    expect(upstream.requests).toHaveLength(2);
    expect(exceededRecorder.of('budget-reject')).toEqual([expect.objectContaining({ action: 'warn', spentUsd: expect.closeTo(0.1, 9) })]);
  });

  it('warns once per threshold per period, on the clock, in UTC', async () => {
    const clock = manualClock(Date.UTC(2026, 10, 25, 23, 0));
    const { llm } = await setup({ budget: { limitUsd: 1, period: 'day', warnAt: [0.5, 0.8] }, clock });
    const warningsRecorder = recordEvents(llm.events, ['budget-warning']);
    for (let i = 0; i < 10; i++) await llm.complete(request);
    expect(warningsRecorder.of('budget-warning').map((warning) => [warning.threshold, warning.periodId])).toEqual([[0.5, '2026-11-25'], [0.8, '2026-11-25']]);
    expect(warningsRecorder.of('budget-warning')[0]).toMatchObject({ key: 'global', period: 'day', limitUsd: 1, spentUsd: expect.closeTo(0.5, 9) });
    await expect(llm.complete(request)).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED' });
    clock.advance(3_600_000);
    for (let i = 0; i < 5; i++) await llm.complete(request);
    expect(warningsRecorder.of('budget-warning').map((warning) => [warning.threshold, warning.periodId])).toEqual([
      [0.5, '2026-11-25'],
      [0.8, '2026-11-25'],
      [0.5, '2026-11-26'],
    ]);
  });

  it('releases the reservation of a call that failed without usage', async () => {
    const { llm, upstream } = await setup({ budget: { limitUsd: 0.1, period: 'day' } });
    upstream.enqueue({ kind: 'status', status: 503 });
    await expect(llm.complete(request)).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    await llm.complete(request);
  });

  it('holds a stream\'s reservation until it is read, then settles it to what was streamed', async () => {
    const { llm, upstream } = await setup({ budget: { limitUsd: 0.15, period: 'day' } });
    upstream.enqueue({ kind: 'cut', afterChunks: 2 });
    const ctx = await llm.run({ ...request, stream: true });
    await expect(llm.complete(request)).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED', reservedUsd: expect.closeTo(0.1, 9) });
    const { error } = await drain(ctx.chunks!);
    expect(error).toMatchObject({ code: 'STREAM_CUT' });
    await llm.complete(request);
  });

  it('shares spend between pipelines through a shared store', async () => {
    const store = memoryStore();
    const upstream = await mockUpstream({ reply: { content: 'ok', usage: { prompt_tokens: 5, completion_tokens: 100 } } });
    const pipelines = [0, 1].map(() =>
      createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }) }).use(budget({ prices, limitUsd: 0.2, period: 'month', store })),
    );
    open.push(upstream, ...pipelines);
    await pipelines[0]!.complete(request);
    await pipelines[1]!.complete(request);
    await expect(pipelines[0]!.complete(request)).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED', period: 'month' });
  });

  it('prices the prompt count an earlier middleware made (trimContext) instead of counting again', async () => {
    const countedHuge: Middleware = async (ctx, next) => {
      ctx.state.tokens = { count: 9_000, approximate: false, messages: ctx.request.messages, model: ctx.request.model };
      await next();
    };
    const upstream = await mockUpstream();
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }) })
      .use(countedHuge)
      .use(budget({ limitUsd: 0.01, period: 'day' }));
    open.push(upstream, llm);
    // gpt-4.1: 9,000 prompt tokens × $2 + 10 × $8 per million = $0.01808 > $0.01.
    await expect(llm.complete({ model: 'gpt-4.1', messages, max_tokens: 10 })).rejects.toMatchObject({ requestedUsd: expect.closeTo(0.01808, 9) });
    expect(upstream.requests).toHaveLength(0);
  });

  it('refuses a model with no price before sending it, by default', async () => {
    const { llm, upstream } = await setup({ budget: { limitUsd: 1, period: 'day' } });
    await expect(llm.complete({ ...request, model: 'my-finetune' })).rejects.toMatchObject({ code: 'UNKNOWN_MODEL' });
    expect(upstream.requests).toHaveLength(0);
  });

  it('names the bad option', () => {
    expect(() => budget({ period: 'day' })).toThrow(expect.objectContaining({ field: 'budget.limitUsd' }));
    expect(() => budget({ limitUsd: 1, period: 'week' as never })).toThrow(expect.objectContaining({ field: 'budget.period' }));
    expect(() => budget({ limitUsd: 1, period: 'day', limits: [{ limitUsd: 1, period: 'day' }] })).toThrow(expect.objectContaining({ field: 'budget.limits' }));
    expect(() => budget({ limits: [{ limitUsd: 1, period: 'day' }, { limitUsd: 2, period: 'day', key: 'global' }] })).toThrow(
      expect.objectContaining({ field: 'budget.limits.1' }),
    );
    expect(() => budget({ limitUsd: 1, period: 'day', onExceed: { downgradeTo: 'gpt-9' } })).toThrow(
      expect.objectContaining({ field: 'budget.onExceed.downgradeTo' }),
    );
    expect(() => budget({ limitUsd: -1, period: 'day' })).toThrow(expect.objectContaining({ field: 'budget.limitUsd' }));
  });
});
