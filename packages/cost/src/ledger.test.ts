import { createPipeline, memoryStore, openAICompatible } from '@sluice/core';
import { mockUpstream } from '@sluice/testing';
import { checkedStore, manualClock } from '@sluice/testing/kit';
import { describe, expect, it } from 'vitest';
import { compareModels } from './compare-models.js';
import { costOfTokens } from './cost-of-usage.js';
import { formatCostTable } from './format-cost-table.js';
import { type CostRecord, spendLedger } from './ledger.js';
import { originalPrices } from './original-prices.js';
import { priceTable } from './price-table.js';
import { projectSpend } from './project-spend.js';
import { trackCost } from './track-cost.js';

const hour = 3_600_000;
const day = 24 * hour;
const start = Date.UTC(2026, 10, 1);

function record(at: number, model: string, tags: Record<string, string>, tokens = { uncachedInput: 3_000, cachedInput: 0, output: 800 }): CostRecord {
  const { usd, buckets } = costOfTokens(tokens, priceTable().lookup(model)!.entry);
  return { id: `call_${at}`, at, model, tags, usd, buckets, estimated: false, priced: true, savedUsd: 0, answeredBy: undefined };
}

describe('spendLedger', () => {
  it('reports spend by model, by tag, by period and in total', async () => {
    const ledger = spendLedger({ clock: manualClock(start + 40 * day) });
    await ledger.record(record(start + 1 * hour, 'gpt-4.1', { tenant: 'acme' }));
    await ledger.record(record(start + 2 * hour, 'gpt-4.1', { tenant: 'globex' }));
    await ledger.record(record(start + day + hour, 'deepseek-v3.2', { tenant: 'acme' }));
    await ledger.record(record(start + 31 * day, 'gpt-4.1', {}));

    const byModel = await ledger.report();
    expect(byModel.rows.map((row) => [row.key, row.requests])).toEqual([['gpt-4.1', 3], ['deepseek-v3.2', 1]]);
    expect(byModel.requests).toBe(4);
    expect(byModel.since).toBe(start + hour);

    const byTenant = await ledger.report({ by: { tag: 'tenant' } });
    expect(byTenant.rows.map((row) => [row.key, row.requests])).toEqual([['acme', 2], ['(none)', 1], ['globex', 1]]);

    expect((await ledger.report({ by: 'day' })).rows.map((row) => row.key).sort()).toEqual(['2026-11-01', '2026-11-02', '2026-12-02']);
    expect((await ledger.report({ by: 'month' })).rows.map((row) => [row.key, row.requests]).sort()).toEqual([['2026-11', 3], ['2026-12', 1]]);
    expect((await ledger.report({ by: 'hour', since: start + day, until: start + 2 * day })).rows).toEqual([
      expect.objectContaining({ key: '2026-11-02T01', requests: 1, uncachedInputTokens: 3_000, outputTokens: 800 }),
    ]);
    const total = await ledger.report({ by: 'total', since: new Date(start), until: new Date(start + day) });
    expect(total.rows).toEqual([expect.objectContaining({ key: 'total', requests: 2, usd: expect.closeTo(2 * 0.0124, 12) })]);
  });

  it('keeps hourly aggregates, and drops them after the retention', async () => {
    const clock = manualClock(start);
    const ledger = spendLedger({ clock, retentionMs: 2 * day, store: memoryStore({ clock }) });
    for (let i = 0; i < 1_000; i++) await ledger.record(record(start + i, 'gpt-4.1', { tenant: 'acme' }));
    expect((await ledger.report()).rows).toEqual([expect.objectContaining({ requests: 1_000 })]);
    await ledger.record(record(start + 3 * day, 'gpt-4.1', { tenant: 'acme' }));
    clock.advance(4 * day);
    expect((await ledger.report({ since: 0 })).requests).toBe(1);
  });

  it("records into the calls' store through pure updates, so instances sharing a store share one ledger", async () => {
    const upstream = await mockUpstream({ reply: { content: 'Fine.', usage: { prompt_tokens: 3_000, completion_tokens: 800 } } });
    const store = checkedStore();
    const instance = () => {
      const ledger = spendLedger();
      const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }), store }).use(trackCost({ ledger, anomaly: false }));
      return { ledger, llm };
    };
    const [one, two] = [instance(), instance()];
    try {
      await one.llm.complete({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Hi' }] }, { tags: { tenant: 'acme' } });
      await two.llm.complete({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Hi' }] }, { tags: { tenant: 'acme' } });
      const report = await one.ledger.report({ by: { tag: 'tenant' } });
      expect(report.rows).toEqual([expect.objectContaining({ key: 'acme', requests: 2, usd: expect.closeTo(2 * 0.0124, 12) })]);
      expect((await two.ledger.report()).requests).toBe(2);
      store.assertClean();
    } finally {
      await Promise.all([one.llm.close(), two.llm.close(), upstream.close()]);
    }
  });

  it("keeps recording in this process when the store fails ('memory', the default)", async () => {
    const down = () => Promise.reject(new Error('connection refused'));
    const ledger = spendLedger({ store: { get: down, set: down, update: down, delete: down } });
    await ledger.record(record(Date.now(), 'gpt-4.1', {}));
    expect((await ledger.report()).requests).toBe(1);
  });

  it('writes one small record per call however many cells the hour has, and lists each cell once', async () => {
    const clock = manualClock(start + hour);
    const store = checkedStore({ clock });
    const ledger = spendLedger({ clock, store });
    for (let i = 0; i < 2_000; i++) await ledger.record(record(start + hour, 'gpt-4.1', { tenant: `t${i}` }));
    const before = store.counts.update;
    await ledger.record(record(start + hour, 'gpt-4.1', { tenant: 't7' }));
    expect(store.counts.update - before).toBe(1); // the cell alone: the index already lists it
    const cell = store.raw(`sluice:cost:ledger:2026-11-01T01:${JSON.stringify(['gpt-4.1', [['tenant', 't7']]])}`);
    expect(cell?.length).toBeLessThan(400);
    expect((JSON.parse(cell!) as { row: { requests: number } }).row.requests).toBe(2);
    const index = JSON.parse(store.raw('sluice:cost:ledger:2026-11-01T01:cells') ?? 'null') as { cells: string[] };
    expect(index.cells).toHaveLength(1_000 + 1); // 1,000 tenants, then gpt-4.1's overflow cell
    const report = await ledger.report({ by: { tag: 'tenant' } });
    expect(report.requests).toBe(2_001);
    expect(report.rows.find((row) => row.key === '(other)')).toMatchObject({ requests: 1_000 });
    expect(report.rows.find((row) => row.key === 't7')).toMatchObject({ requests: 2 });
    store.assertClean();
  });

  it('adds to a cell in place on the memory store, and reports what a store that copies every record reports', async () => {
    const clock = manualClock(start + hour);
    const memory = memoryStore({ clock });
    const copying = checkedStore({ clock });
    const [inPlace, copied] = [spendLedger({ clock, store: memory }), spendLedger({ clock, store: copying })];
    const models = ['gpt-4.1', 'deepseek-v3.2', 'gpt-4.1-mini'];
    for (let i = 0; i < 300; i++) {
      const base = record(start + hour + i, models[i % 3] as string, { tenant: `t${i % 5}` }, { uncachedInput: 100 + i, cachedInput: i % 7, output: 3 * i });
      const each: CostRecord = { ...base, estimated: i % 4 === 0, savedUsd: i % 9 === 0 ? 0.001 : 0, answeredBy: i % 9 === 0 ? 'cache' : undefined };
      await inPlace.record(each);
      await copied.record(each);
    }
    for (const by of ['model', { tag: 'tenant' }, 'hour'] as const) expect(await inPlace.report({ by })).toEqual(await copied.report({ by }));
    const key = `sluice:cost:ledger:2026-11-01T01:${JSON.stringify(['gpt-4.1', [['tenant', 't0']]])}`;
    const cell = await memory.get<{ row: { requests: number } }>(key);
    expect(cell?.row.requests).toBe(20);
    await inPlace.record(record(start + hour, 'gpt-4.1', { tenant: 't0' }));
    expect(await memory.get(key)).toBe(cell); // the same object, one request more
    expect(cell?.row.requests).toBe(21);
    copying.assertClean();
  });

  it('keeps a tag with a value per call (a request id) to a bounded number of cells, with exact totals', async () => {
    const store = memoryStore();
    const ledger = spendLedger({ store, clock: manualClock(start + hour), maxCellsPerHour: 10 });
    let usd = 0;
    for (let i = 0; i < 500; i++) {
      const each = record(start + (i % 2) * 1_000, i % 3 === 0 ? 'deepseek-v3.2' : 'gpt-4.1', { request: `r${i}`, tenant: 'acme' });
      usd += each.usd;
      await ledger.record(each);
    }
    expect(store.size).toBeLessThanOrEqual(10 + 2 + 1); // 10 cells, 2 models' overflow cells, the index
    const byModel = await ledger.report();
    expect(byModel.requests).toBe(500);
    expect(byModel.usd).toBeCloseTo(usd, 9);
    expect(byModel.rows.map((row) => [row.key, row.requests])).toEqual([['gpt-4.1', 333], ['deepseek-v3.2', 167]]);
  });

  it('keeps only the tags it is told to, so a report by them stays small', async () => {
    const ledger = spendLedger({ clock: manualClock(start + hour), tags: ['tenant'] });
    for (let i = 0; i < 20; i++) await ledger.record(record(start, 'gpt-4.1', { tenant: i % 2 ? 'acme' : 'globex', request: `r${i}` }));
    const byTenant = await ledger.report({ by: { tag: 'tenant' } });
    expect(byTenant.rows.map((row) => [row.key, row.requests])).toEqual([['acme', 10], ['globex', 10]]);
    expect((await ledger.report({ by: { tag: 'request' } })).rows).toEqual([expect.objectContaining({ key: '(none)', requests: 20 })]);
  });

  it('shares the index between instances: each reports the cells the others created', async () => {
    const clock = manualClock(start + hour);
    const store = checkedStore({ clock });
    const [one, two] = [spendLedger({ clock, store }), spendLedger({ clock, store })];
    await one.record(record(start, 'gpt-4.1', { tenant: 'acme' }));
    await two.record(record(start, 'gpt-4.1', { tenant: 'globex' }));
    await one.record(record(start, 'gpt-4.1', { tenant: 'acme' }));
    await two.record(record(start, 'gpt-4.1', { tenant: 'acme' }));
    for (const ledger of [one, two]) {
      const report = await ledger.report({ by: { tag: 'tenant' } });
      expect(report.rows.map((row) => [row.key, row.requests])).toEqual([['acme', 3], ['globex', 1]]);
    }
    store.assertClean();
  });

  it('lists a cell again when the store lost the hour (a Redis restarted without persistence)', async () => {
    const clock = manualClock(start + hour);
    const store = checkedStore({ clock });
    const ledger = spendLedger({ clock, store });
    await ledger.record(record(start, 'gpt-4.1', { tenant: 'acme' }));
    const cellKey = `sluice:cost:ledger:2026-11-01T00:${JSON.stringify(['gpt-4.1', [['tenant', 'acme']]])}`;
    expect(store.raw(cellKey)).toBeDefined();
    // Everything the store held is gone; this process still remembers it listed the cell.
    await store.delete('sluice:cost:ledger:2026-11-01T00:cells');
    await store.delete(cellKey);
    await ledger.record(record(start, 'gpt-4.1', { tenant: 'acme' }));
    await ledger.record(record(start, 'gpt-4.1', { tenant: 'acme' }));
    // Before, both were written to the cell and no report found them: the index no longer listed it.
    const report = await ledger.report({ by: { tag: 'tenant' } });
    expect(report.rows.map((row) => [row.key, row.requests])).toEqual([['acme', 2]]);
    store.assertClean();
  });

  it('reports the hourly records an earlier version wrote beside the new ones', async () => {
    const store = memoryStore();
    const ledger = spendLedger({ store, clock: manualClock(start + hour) });
    const old = record(start, 'gpt-4.1', { tenant: 'acme' });
    const row = { usd: old.usd, requests: 1, estimatedRequests: 0, uncachedInputTokens: 3_000, cachedInputTokens: 0, outputTokens: 800 };
    await store.set('sluice:cost:ledger:2026-11-01T00', { cells: { x: { model: 'gpt-4.1', tags: { tenant: 'acme' }, row } } });
    await ledger.record(record(start + 1_000, 'gpt-4.1', { tenant: 'acme' }));
    const report = await ledger.report({ by: { tag: 'tenant' } });
    expect(report.rows).toEqual([expect.objectContaining({ key: 'acme', requests: 2, savedRequests: 0, usd: expect.closeTo(2 * old.usd, 12) })]);
  });

  it('reads a cell this version did not write as nothing: a report stays finite, and recording starts it afresh', async () => {
    const store = memoryStore();
    const ledger = spendLedger({ store, clock: manualClock(start + hour) });
    const acme = record(start, 'gpt-4.1', { tenant: 'acme' });
    await ledger.record(acme);
    await ledger.record(record(start, 'gpt-4.1', { tenant: 'beta' }));
    const cell = (tenant: string) => `sluice:cost:ledger:2026-11-01T00:${JSON.stringify(['gpt-4.1', [['tenant', tenant]]])}`;
    // A bad write, a hand edit: figures that are text or missing, a cell whose tags are not an object.
    await store.set(cell('acme'), { model: 'gpt-4.1', tags: { tenant: 'acme' }, row: { usd: '0.5', requests: 'x', estimatedRequests: null } });
    await store.set(cell('beta'), { model: 7, tags: null, row: {} });
    // Before, the first read as text and NaN in every report, and the second threw in a report by tag.
    const report = await ledger.report({ by: { tag: 'tenant' } });
    expect(report.rows).toEqual([expect.objectContaining({ key: 'acme', usd: 0, requests: 0, estimatedRequests: 0, savedUsd: 0 })]);
    await ledger.record(acme);
    await ledger.record(record(start, 'gpt-4.1', { tenant: 'beta' }));
    const after = await ledger.report({ by: { tag: 'tenant' } });
    expect(after.rows.map((row) => [row.key, row.requests, row.usd])).toEqual([
      ['acme', 1, acme.usd],
      ['beta', 1, acme.usd],
    ]);
    expect(after.usd).toBeCloseTo(2 * acme.usd, 12);
  });

  it('names a bad query or option', async () => {
    await expect(spendLedger().report({ by: 'week' as never })).rejects.toMatchObject({ field: 'report.by' });
    expect(() => spendLedger({ maxCellsPerHour: 0 })).toThrow(expect.objectContaining({ field: 'spendLedger.maxCellsPerHour' }));
    expect(() => spendLedger({ tags: [''] })).toThrow(expect.objectContaining({ field: 'spendLedger.tags.0' }));
  });
});

describe('projectSpend', () => {
  it('projects observed spend to a day, a month and a year', async () => {
    const ledger = spendLedger({ clock: manualClock(start + 2 * day) });
    // Two days of the original workload's shape, at 100 calls a day.
    for (let i = 0; i < 200; i++) await ledger.record(record(start + i * (day / 100), 'gpt-4.1', {}));
    const [row] = projectSpend(await ledger.report({ since: start, until: start + 2 * day }));
    expect(row).toMatchObject({ model: 'gpt-4.1', requestsPerDay: 100, inputTokens: 3_000, outputTokens: 800 });
    expect(row?.dailyUsd).toBeCloseTo(1.24, 10);
    expect(row?.monthlyUsd).toBeCloseTo(37.2, 10);
    expect(row?.yearlyUsd).toBeCloseTo(452.6, 10);
    const [planned] = compareModels({ requestsPerDay: 100, inputTokens: 3_000, outputTokens: 800, prices: originalPrices, models: ['gpt-4.1'] });
    expect(formatCostTable([row!])).toBe(formatCostTable([planned!]));
  });

  it('refuses a report that spans no time', () => {
    expect(() => projectSpend({ since: start, until: start, rows: [], usd: 0, requests: 0, savedUsd: 0 })).toThrow(expect.objectContaining({ field: 'projectSpend.report' }));
  });
});
