import { type ChatMessage, type Store, createPipeline, memoryStore, openAICompatible } from '@sluice/core';
import { type MockUpstream, mockUpstream } from '@sluice/testing';
import { checkedStore, recordEvents } from '@sluice/testing/kit';
import { afterEach, describe, expect, it } from 'vitest';
import { budget } from './budget.js';
import type { BudgetOptions } from './options.js';
import { priceTable } from './price-table.js';

// 100 output tokens of `big` cost $0.10: each call's worst case and, as the mock answers, its real cost.
const prices = priceTable({ big: { input: 0, output: 1_000, contextWindow: 10_000, maxOutput: 1_000 } });
const messages: ChatMessage[] = [{ role: 'user', content: 'Hello there' }];
const request = { model: 'big', messages, max_completion_tokens: 100 };

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const closable of open.splice(0).reverse()) await closable.close();
});

/** A store that is down: every call rejects. */
const downStore = (): Store => {
  const down = () => Promise.reject(new Error('connection refused'));
  return { get: down, set: down, update: down, delete: down };
};

async function setup(options: Omit<BudgetOptions, 'prices'>, store: Store = memoryStore()): Promise<{ llm: ReturnType<typeof createPipeline>; upstream: MockUpstream }> {
  const upstream = await mockUpstream({ reply: { content: 'Fine.', usage: { prompt_tokens: 10, completion_tokens: 100 } } });
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }), store }).use(budget({ prices, ...options }));
  open.push(upstream, llm);
  return { llm, upstream };
}

describe('budget state', () => {
  it('keeps its records under sluice:cost:, each with a TTL one period past its end, through pure reducers', async () => {
    const store = checkedStore();
    const { llm } = await setup({ limits: [{ limitUsd: 1, period: 'day' }, { key: { tag: 'tenant' }, limitUsd: 0.3, period: 'hour' }] }, store);
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => llm.complete(request, { tags: { tenant: 'acme' } })));
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(3);
    store.assertClean();
    const day = new Date().toISOString().slice(0, 10);
    expect(JSON.parse(store.raw(`sluice:cost:budget:global:day:${day}`) ?? 'null')).toMatchObject({ spentUsd: expect.closeTo(0.3, 9), holds: {} });
    expect(store.raw(`sluice:cost:budget:tenant:acme:hour:${new Date().toISOString().slice(0, 13)}`)).toBeDefined();
  });

  it("refuses a call it cannot reserve for when the store is down ('closed', the default), sending nothing", async () => {
    const { llm, upstream } = await setup({ limitUsd: 5, period: 'day' }, downStore());
    const errors = recordEvents(llm.events, ['store-error']);
    await expect(llm.complete(request)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', retryable: true, final: false });
    expect(upstream.requests).toHaveLength(0);
    expect(errors.of('store-error')).toEqual([expect.objectContaining({ name: 'cost', policy: 'closed', operation: 'update' })]);
  });

  it("sends the call unmetered under 'open', and meters it in this process under 'memory'", async () => {
    const opened = await setup({ limitUsd: 0.1, period: 'day', onStoreError: 'open' }, downStore());
    await opened.llm.complete(request);
    await opened.llm.complete(request);
    expect(opened.upstream.requests).toHaveLength(2);

    const memory = await setup({ limitUsd: 0.1, period: 'day', onStoreError: 'memory' }, downStore());
    await memory.llm.complete(request);
    await expect(memory.llm.complete(request)).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED' });
  });

  it('never lets a store failure at settlement replace the answer', async () => {
    let failing = false;
    const inner = memoryStore();
    const flaky: Store = {
      get: (key) => inner.get(key),
      set: (key, value, ttl) => inner.set(key, value, ttl),
      delete: (key) => inner.delete(key),
      update: (key, reducer, ttl) => (failing ? Promise.reject(new Error('timeout')) : inner.update(key, reducer, ttl)),
    };
    const { llm } = await setup({ limitUsd: 5, period: 'day' }, flaky);
    llm.use(async function breakStoreAfterAdmission(_ctx, next) {
      failing = true;
      await next();
    });
    await expect(llm.complete(request)).resolves.toMatchObject({ choices: [expect.anything()] });
  });

  it('names a bad key option', () => {
    expect(() => budget({ limitUsd: 1, period: 'day', key: { tag: '' } })).toThrow(expect.objectContaining({ field: 'budget.key.tag' }));
    expect(() => budget({ limits: [{ limitUsd: 1, period: 'day', key: 'tenant' as never }] })).toThrow(expect.objectContaining({ field: 'budget.limits.0.key' }));
    expect(() => budget({ limitUsd: 1, period: 'day', onStoreError: 'retry' as never })).toThrow(expect.objectContaining({ field: 'budget.onStoreError' }));
  });
});
