import { type ChatCompletion, type ChatMessage, type Transport, type Usage, createPipeline, memoryStore } from '@sluice/core';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { type BudgetBucket, releaseHold, reserveHold, settleHold } from './budget-bucket.js';
import { budget } from './budget.js';
import { costOfUsage } from './cost-of-usage.js';
import { spendLedger } from './ledger.js';
import { priceTable } from './price-table.js';
import { trackCost } from './track-cost.js';
import { usageTokens } from './usage-tokens.js';

const messages: ChatMessage[] = [{ role: 'user', content: 'Tell me about sluice gates in one paragraph.' }];

// Prompts are free and 100 output tokens of `big` cost $0.10: a call's worst case.
const prices = priceTable({ big: { input: 0, output: 1_000, contextWindow: 10_000, maxOutput: 1_000 } });
const request = { model: 'big', messages, max_completion_tokens: 100 };
const garbage = ['abc', Number.NaN, -5, Number.POSITIVE_INFINITY, null, undefined, {}, '12'];

/** A transport of our own that reports whatever usage it is given, as a buggy upstream or relay might. */
function reporting(usage: Record<string, unknown>): Transport {
  return {
    name: 'reporting',
    origin: 'test://reporting',
    async send(ctx) {
      const response = {
        id: 'chatcmpl-test', object: 'chat.completion', created: 0, model: ctx.request.model,
        choices: [{ index: 0, message: { role: 'assistant', content: 'A short answer.' }, finish_reason: 'stop' }],
        usage,
      };
      ctx.response = response as unknown as ChatCompletion;
      ctx.usage = usage as unknown as Usage;
    },
  };
}

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const closable of open.splice(0)) await closable.close();
});

function setup(usage: Record<string, unknown>, limitUsd: number) {
  const store = memoryStore();
  const ledger = spendLedger();
  const costs = trackCost({ prices, ledger, anomaly: { warmupRequests: 1, warmupMinutes: 1 } });
  const llm = createPipeline({ transport: reporting(usage), store })
    .use(costs)
    .use(budget({ prices, limitUsd, period: 'day' }));
  open.push(llm);
  return { llm, ledger, store };
}

async function holdsLeft(store: ReturnType<typeof memoryStore>): Promise<number> {
  const day = new Date().toISOString().slice(0, 10);
  const bucket = await store.get<BudgetBucket>(`sluice:cost:budget:global:day:${day}`);
  if (!bucket) throw new Error('no budget record in the store');
  expect(Number.isFinite(bucket.spentUsd)).toBe(true);
  return bucket.holds.length / 3;
}

describe('usageTokens', () => {
  it('passes counts through and makes every unusable count undefined or 0', () => {
    expect(usageTokens({ prompt_tokens: 10, completion_tokens: 5, total_tokens: 15, prompt_tokens_details: { cached_tokens: 4 } }))
      .toEqual({ prompt: 10, completion: 5, cached: 4, reasoning: 0, total: 15 });
    for (const value of garbage) {
      const tokens = usageTokens({ prompt_tokens: value, completion_tokens: value, total_tokens: value, prompt_tokens_details: { cached_tokens: value } } as unknown as Usage);
      expect(tokens, String(value)).toEqual({ prompt: undefined, completion: undefined, cached: 0, reasoning: 0, total: undefined });
    }
  });

  it('never lets costOfUsage return anything but finite, non-negative numbers, whatever the usage holds', () => {
    const entry = prices.lookup('gpt-4.1')!.entry;
    const field = fc.oneof(fc.anything(), fc.double(), fc.integer());
    fc.assert(
      fc.property(field, field, field, field, field, (prompt, completion, total, cached, reasoning) => {
        const usage = {
          prompt_tokens: prompt, completion_tokens: completion, total_tokens: total,
          prompt_tokens_details: { cached_tokens: cached }, completion_tokens_details: { reasoning_tokens: reasoning },
        } as unknown as Usage;
        const { usd, buckets } = costOfUsage(usage, entry);
        for (const value of [usd, buckets.uncachedInput.tokens, buckets.cachedInput.tokens, buckets.output.tokens, buckets.output.usd]) {
          expect(Number.isFinite(value) && value >= 0).toBe(true);
        }
      }),
    );
  });
});

describe('unusable usage in the budget and the ledger', () => {
  it.each([['"abc"', 'abc'], ['NaN', Number.NaN], ['missing', undefined]])(
    'a $0.25 budget still holds its limit when prompt_tokens is %s, and releases every reservation',
    async (_name, prompt) => {
      const { llm, ledger, store } = setup({ prompt_tokens: prompt, completion_tokens: 100, total_tokens: 100 }, 0.25);
      await llm.complete(request);
      await llm.complete(request);
      expect(await holdsLeft(store)).toBe(0);
      // $0.20 spent: a third worst case of $0.10 does not fit.
      await expect(llm.complete(request)).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED' });
      const report = await ledger.report();
      expect(report.usd).toBeCloseTo(0.2, 12);
      expect(report.rows[0]).toMatchObject({ requests: 2, estimatedRequests: 2, outputTokens: 200 });
      expect(Number.isFinite(report.rows[0]!.uncachedInputTokens)).toBe(true);
    },
  );

  it('counts the answer itself when completion_tokens is NaN, so released holds leave room for more calls', async () => {
    const { llm, ledger, store } = setup({ prompt_tokens: Number.NaN, completion_tokens: Number.NaN, total_tokens: 'x' }, 0.25);
    // Each call reserves $0.10 but really costs the few tokens of "A short answer.".
    for (let i = 0; i < 10; i++) await llm.complete(request);
    expect(await holdsLeft(store)).toBe(0);
    const report = await ledger.report();
    expect(report.requests).toBe(10);
    expect(report.usd).toBeGreaterThan(0);
    expect(report.usd).toBeLessThan(0.1); // ten worst cases would be $1
  });

  it('keeps a bucket\'s figures numbers when a hold settles with NaN or the stored state is corrupt', () => {
    const now = 1_000_000;
    const hold = (id: string, usd: number) => ({ id, usd, slot: now + 60_000 });
    let bucket = reserveHold(hold('a', 0.1), 5, false, now)(undefined);
    bucket = settleHold(hold('a', 0.1), true, Number.NaN, 5, [0.8], now)(bucket);
    expect(bucket).toEqual({ v: 3, spentUsd: 0.1, holds: [], warned: {} }); // charged its reservation
    expect(reserveHold(hold('b', Number.NaN), 5, true, now)(bucket).holds).toEqual([]);
    const corrupt = { v: 2, spentUsd: null, holds: { [now + 1]: [null, 1], [now + 2]: [0.5, 'x'] }, warned: { 0.8: 7 } } as unknown as BudgetBucket;
    expect(releaseHold(hold('c', 0.1), now)(corrupt)).toEqual({ v: 3, spentUsd: 0, holds: [], warned: {} });
    const corruptFlat = { v: 3, spentUsd: 0.2, holds: [now + 1, null, 1, now + 2, 0.5, 'x', 'y', 0.5, 1, now + 3, 0.25], warned: {} } as unknown as BudgetBucket;
    expect(releaseHold(hold('d', 0.1), now)(corruptFlat)).toEqual({ v: 3, spentUsd: 0.2, holds: [], warned: {} });
    expect(reserveHold(hold('d', 6), 5, false, now)(corrupt).admitted).toBeUndefined(); // the limit still refuses
  });

  it('keeps ledger totals exact numbers whatever a custom caller records', async () => {
    const ledger = spendLedger();
    const buckets = { uncachedInput: { tokens: Number.NaN, usd: 0 }, cachedInput: { tokens: 'x', usd: 0 }, output: { tokens: 10, usd: 0, reasoningTokens: 0 } };
    await ledger.record({ id: '1', at: Date.now(), model: 'm', tags: {}, usd: Number.NaN, buckets, estimated: false, priced: true } as never);
    await ledger.record({ id: '2', at: Number.NaN, model: 'm', tags: {}, usd: 0.5, buckets, estimated: false, priced: true } as never);
    const report = await ledger.report();
    expect(report.usd).toBe(0.5);
    expect(report.rows[0]).toMatchObject({ requests: 2, uncachedInputTokens: 0, cachedInputTokens: 0, outputTokens: 20 });
  });
});
