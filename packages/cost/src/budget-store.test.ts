import { type ChatCompletion, type ChatMessage, type Middleware, type Store, type Transport, createPipeline, memoryStore, openAICompatible } from '@sluice/core';
import { type MockUpstream, mockUpstream } from '@sluice/testing';
import { checkedStore, manualClock, recordEvents } from '@sluice/testing/kit';
import { afterEach, describe, expect, it } from 'vitest';
import { type BudgetBucket, slotsOf } from './budget-bucket.js';
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
  it('keeps its records under sluice:cost:, each with a TTL past its period, through pure reducers', async () => {
    const store = checkedStore();
    const { llm } = await setup({ limits: [{ limitUsd: 1, period: 'day' }, { key: { tag: 'tenant' }, limitUsd: 0.3, period: 'hour' }] }, store);
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => llm.complete(request, { tags: { tenant: 'acme' } })));
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(3);
    store.assertClean();
    const day = new Date().toISOString().slice(0, 10);
    expect(JSON.parse(store.raw(`sluice:cost:budget:global:day:${day}`) ?? 'null')).toMatchObject({ spentUsd: expect.closeTo(0.3, 9), holds: [] });
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

  it('keeps one record of a bounded size with 1,000 calls in flight, and holds nothing once they settle', async () => {
    const store = checkedStore();
    const answer: ChatCompletion = {
      id: 'c', object: 'chat.completion', created: 0, model: 'big',
      choices: [{ index: 0, message: { role: 'assistant', content: 'ok', refusal: null }, finish_reason: 'stop', logprobs: null }],
      usage: { prompt_tokens: 0, completion_tokens: 10, total_tokens: 10 },
    };
    const memory: Transport = {
      name: 'memory',
      origin: 'memory://test',
      async send(ctx) {
        ctx.response = answer;
        ctx.usage = answer.usage ?? undefined;
      },
    };
    let open = (): void => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    let waiting = 0;
    const held: Middleware = async function heldInFlight(_ctx, next) {
      waiting++;
      await gate;
      await next();
    };
    const llm = createPipeline({ transport: memory, store }).use(budget({ prices, limitUsd: 1_000, period: 'day' })).use(held);
    const calls = Array.from({ length: 1_000 }, () => llm.complete(request));
    while (waiting < 1_000) await new Promise<void>((resolve) => setImmediate(resolve));
    const key = `sluice:cost:budget:global:day:${new Date().toISOString().slice(0, 10)}`;
    const inFlight = JSON.parse(store.raw(key) ?? 'null') as BudgetBucket;
    expect(slotsOf(inFlight).reduce((sum, [, , count]) => sum + count, 0)).toBe(1_000);
    expect(slotsOf(inFlight).length).toBeLessThanOrEqual(2);
    expect(store.raw(key)!.length).toBeLessThan(300);
    open();
    await Promise.all(calls);
    expect(JSON.parse(store.raw(key) ?? 'null')).toMatchObject({ holds: [], spentUsd: expect.closeTo(10, 9) });
    store.assertClean();
    await llm.close();
  });

  it('releases the holds of a process that crashed mid-call after holdMs, not at the end of the period', async () => {
    const clock = manualClock(Date.UTC(2026, 10, 25, 9));
    const store = memoryStore({ clock });
    const upstream = await mockUpstream({ reply: { content: 'Fine.', usage: { prompt_tokens: 10, completion_tokens: 100 } } });
    open.push(upstream);
    const instance = () =>
      createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }), store, clock }).use(
        budget({ prices, limitUsd: 0.15, period: 'day', holdMs: 120_000 }),
      );
    const crashed = instance();
    // Admitted, then stuck for good, as a call of a process that died is: it never settles.
    crashed.use(async function neverReturns() {
      await new Promise(() => {});
    });
    void crashed.complete(request);
    const alive = instance();
    open.push(alive);
    await new Promise<void>((resolve) => setImmediate(resolve));
    await expect(alive.complete(request)).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED', reservedUsd: expect.closeTo(0.1, 9) });
    clock.advance(120_000 + 10_000);
    await expect(alive.complete(request)).resolves.toMatchObject({ choices: [expect.anything()] });
  });

  it('reads a record an earlier version wrote in a shared store (a hold per call id) without NaN, and lets its holds expire', async () => {
    const clock = manualClock(Date.UTC(2026, 10, 25, 9));
    const store = memoryStore({ clock });
    await store.set('sluice:cost:budget:global:day:2026-11-25', { spentUsd: 0.05, holds: { 'old-call': 0.1, broken: null }, warned: {} });
    const upstream = await mockUpstream({ reply: { content: 'Fine.', usage: { prompt_tokens: 10, completion_tokens: 100 } } });
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }), store, clock }).use(
      budget({ prices, limitUsd: 0.2, period: 'day', holdMs: 60_000 }),
    );
    open.push(upstream, llm);
    await expect(llm.complete(request)).rejects.toMatchObject({ spentUsd: 0.05, reservedUsd: expect.closeTo(0.1, 9) });
    clock.advance(120_000);
    await llm.complete(request);
    expect(await store.get('sluice:cost:budget:global:day:2026-11-25')).toMatchObject({ v: 3, spentUsd: expect.closeTo(0.15, 9), holds: [] });
  });

  it('names a bad key option', () => {
    expect(() => budget({ limitUsd: 1, period: 'day', key: { tag: '' } })).toThrow(expect.objectContaining({ field: 'budget.key.tag' }));
    expect(() => budget({ limits: [{ limitUsd: 1, period: 'day', key: 'tenant' as never }] })).toThrow(expect.objectContaining({ field: 'budget.limits.0.key' }));
    expect(() => budget({ limitUsd: 1, period: 'day', onStoreError: 'retry' as never })).toThrow(expect.objectContaining({ field: 'budget.onStoreError' }));
    expect(() => budget({ limitUsd: 1, period: 'day', holdMs: 10 })).toThrow(expect.objectContaining({ field: 'budget.holdMs' }));
  });
});

describe('budget state on the memory store, changed where it is', () => {
  const dayKey = () => `sluice:cost:budget:global:day:${new Date().toISOString().slice(0, 10)}`;

  /** Three bursts of four calls against $1.05 a day ($0.10 each), warned at 50% and 80%: what each call got, and the record at the end. */
  async function bursts(store: Store) {
    const { llm } = await setup({ limitUsd: 1.05, period: 'day', warnAt: [0.5, 0.8] }, store);
    const warnings: number[] = [];
    llm.events.on('budget-warning', ({ threshold }) => warnings.push(threshold));
    const outcomes: string[][] = [];
    for (let round = 0; round < 3; round++) {
      const results = await Promise.allSettled(Array.from({ length: 4 }, () => llm.complete(request)));
      outcomes.push(results.map((result) => (result.status === 'fulfilled' ? 'sent' : (result.reason as { code?: string }).code ?? 'failed')));
    }
    const record = (await store.get<BudgetBucket>(dayKey())) as BudgetBucket;
    return { outcomes, warnings, spentUsd: Math.round(record.spentUsd * 1e9) / 1e9, holds: record.holds, warned: Object.keys(record.warned).sort() };
  }

  it('admits and refuses as on the purity-checked store, and warns once per threshold', async () => {
    const checked = checkedStore();
    const expected = await bursts(checked);
    checked.assertClean();
    expect(await bursts(memoryStore())).toEqual(expected);
    expect(expected.outcomes).toEqual([
      ['sent', 'sent', 'sent', 'sent'],
      ['sent', 'sent', 'sent', 'sent'],
      ['sent', 'sent', 'BUDGET_EXCEEDED', 'BUDGET_EXCEEDED'],
    ]);
    expect(expected).toMatchObject({ warnings: [0.5, 0.8], spentUsd: 1, holds: [], warned: ['0.5', '0.8'] });
  });

  /** Two limits, per tenant first (so that a refusal by the global one releases the tenant's hold), three rounds over four tenants, one call at a time. */
  async function twoLimits(store: Store) {
    const { llm } = await setup({ limits: [{ key: { tag: 'tenant' }, limitUsd: 0.25, period: 'day' }, { limitUsd: 0.75, period: 'day' }], warnAt: [0.5, 0.8] }, store);
    const warnings: string[] = [];
    llm.events.on('budget-warning', ({ key, threshold }) => warnings.push(`${key} ${threshold}`));
    const outcomes: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (const tenant of ['a', 'b', 'c', 'd']) {
        const result = await llm.complete(request, { tags: { tenant } }).then(
          () => 'sent',
          (error: { code?: string; key?: string; spentUsd?: number }) => `${error.code} by ${error.key} at ${error.spentUsd?.toFixed(2)}`,
        );
        outcomes.push(`${tenant} ${result}`);
      }
    }
    const day = new Date().toISOString().slice(0, 10);
    const records: Record<string, unknown> = {};
    for (const key of ['global', 'tenant:a', 'tenant:d']) {
      const record = (await store.get<BudgetBucket>(`sluice:cost:budget:${key}:day:${day}`)) as BudgetBucket;
      records[key] = { spentUsd: Math.round(record.spentUsd * 1e9) / 1e9, holds: record.holds, warned: Object.keys(record.warned).sort() };
    }
    return { outcomes, warnings, records };
  }

  it('with two limits, admits, refuses, releases and warns one call at a time as on the purity-checked store', async () => {
    const checked = checkedStore();
    const expected = await twoLimits(checked);
    checked.assertClean();
    const store = memoryStore();
    expect(await twoLimits(store)).toEqual(expected);
    expect(expected.outcomes).toEqual([
      'a sent', 'b sent', 'c sent', 'd sent',
      'a sent', 'b sent', 'c sent', 'd BUDGET_EXCEEDED by global at 0.70',
      'a BUDGET_EXCEEDED by tenant:a at 0.20', 'b BUDGET_EXCEEDED by tenant:b at 0.20', 'c BUDGET_EXCEEDED by tenant:c at 0.20',
      'd BUDGET_EXCEEDED by global at 0.70',
    ]);
    expect(expected.records).toEqual({
      global: { spentUsd: 0.7, holds: [], warned: ['0.5', '0.8'] },
      'tenant:a': { spentUsd: 0.2, holds: [], warned: ['0.5', '0.8'] },
      // d's hold in its own limit was given back each time the global one refused it.
      'tenant:d': { spentUsd: 0.1, holds: [], warned: [] },
    });
  });

  it('with two limits on the memory store, changes both records in place, and never spends past either under a burst', async () => {
    const store = memoryStore();
    const { llm } = await setup({ limits: [{ key: { tag: 'tenant' }, limitUsd: 0.25, period: 'day' }, { limitUsd: 0.75, period: 'day' }] }, store);
    const day = new Date().toISOString().slice(0, 10);
    const global = `sluice:cost:budget:global:day:${day}`;
    const tenant = `sluice:cost:budget:tenant:a:day:${day}`;
    await llm.complete(request, { tags: { tenant: 'a' } });
    const [globalRecord, tenantRecord] = [await store.get(global), await store.get(tenant)];
    await llm.complete(request, { tags: { tenant: 'a' } });
    expect(await store.get(global)).toBe(globalRecord);
    expect(await store.get(tenant)).toBe(tenantRecord);
    // 40 calls at once over four tenants: 2 more for a (its limit), then the global one's room.
    const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => llm.complete(request, { tags: { tenant: 'abcd'[i % 4] as string } })));
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(5);
    const spent = (await store.get<BudgetBucket>(global))?.spentUsd ?? NaN;
    expect(spent).toBeCloseTo(0.7, 9);
    for (const key of [global, tenant]) expect((await store.get<BudgetBucket>(key))?.holds).toEqual([]);
  });

  it('with two limits, gives back the first hold when the second store write fails, and goes on unmetered under open', async () => {
    /** A memory store whose in-process writes of the global record throw, as a failing store would. */
    const failingGlobal = () => {
      const store = memoryStore();
      const symbol = Object.getOwnPropertySymbols(store).find((each) => String(each).includes('update-now')) as symbol;
      const hook = (store as unknown as Record<symbol, { now: (key: string, ...rest: unknown[]) => unknown }>)[symbol] as { now: (key: string, ...rest: unknown[]) => unknown };
      const now = hook.now;
      hook.now = (key, ...rest) => {
        if (key.includes(':global:')) throw new Error('connection reset');
        return now(key, ...rest);
      };
      return store;
    };
    const limits = [{ key: { tag: 'tenant' }, limitUsd: 1, period: 'day' }, { limitUsd: 1, period: 'day' }] as const;
    const tenantKey = `sluice:cost:budget:tenant:a:day:${new Date().toISOString().slice(0, 10)}`;

    const closedStore = failingGlobal();
    const closed = await setup({ limits: [...limits] }, closedStore);
    await expect(closed.llm.complete(request, { tags: { tenant: 'a' } })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(closed.upstream.requests).toHaveLength(0);
    expect(await closedStore.get(tenantKey)).toMatchObject({ spentUsd: 0, holds: [] });

    const openStore = failingGlobal();
    const opened = await setup({ limits: [...limits], onStoreError: 'open' }, openStore);
    await opened.llm.complete(request, { tags: { tenant: 'a' } });
    expect(opened.upstream.requests).toHaveLength(1);
    expect(await openStore.get(tenantKey)).toMatchObject({ spentUsd: expect.closeTo(0.1, 9), holds: [] });
  });

  it('leaves a record it did not write as it was, and changes its own copy from then on', async () => {
    const store = memoryStore();
    const { llm } = await setup({ limitUsd: 1, period: 'day' }, store);
    const width = 56_250; // 15 minutes over 16 slots
    const slot = Math.ceil((Date.now() + 5 * 60_000) / width) * width;
    const written = Object.freeze({ v: 3, spentUsd: 0.2, holds: Object.freeze([slot, 0.1, 1]), warned: Object.freeze({}) });
    await store.set(dayKey(), written, 60 * 60_000);
    const records: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      await llm.complete(request);
      records.push(await store.get(dayKey()));
    }
    // The first call wrote a record of its own (a change to the frozen one would have thrown, and refused the call); the next two changed it.
    expect(records[0]).not.toBe(written);
    expect(records[1]).toBe(records[0]);
    expect(records[2]).toBe(records[0]);
    expect(written).toEqual({ v: 3, spentUsd: 0.2, holds: [slot, 0.1, 1], warned: {} });
    expect(records[2]).toMatchObject({ spentUsd: expect.closeTo(0.5, 9), holds: [slot, 0.1, 1] });
  });
});
