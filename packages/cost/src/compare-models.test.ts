import { describe, expect, it } from 'vitest';
import { compareModels } from './compare-models.js';
import { formatCostTable } from './format-cost-table.js';
import { originalPrices } from './original-prices.js';

const workload = { requestsPerDay: 10_000, inputTokens: 3_000, outputTokens: 800 };

describe('compareModels', () => {
  it('reproduces the original comparison from the original prices', () => {
    const rows = compareModels({ ...workload, prices: originalPrices, models: ['gpt-4.1', 'claude-sonnet-4.5', 'gemini-2.5-flash', 'deepseek-v3.2'] });
    const byModel = Object.fromEntries(rows.map((row) => [row.model, row]));
    // 10,000 × (3,000 × $2 + 800 × $8) / 1e6 = $124 a day; a month is 30 days, a year 365.
    expect(byModel['gpt-4.1']).toMatchObject({ dailyUsd: 124, monthlyUsd: 3_720, yearlyUsd: 45_260, perRequestUsd: 0.0124 });
    expect(byModel['claude-sonnet-4.5']).toMatchObject({ dailyUsd: 210, monthlyUsd: 6_300, yearlyUsd: 76_650 });
    expect(byModel['gemini-2.5-flash']).toMatchObject({ dailyUsd: 30.5, monthlyUsd: 915 });
    // 10,000 × (3,000 × $0.07 + 800 × $0.42) / 1e6 = $5.46 a day.
    expect(byModel['deepseek-v3.2']?.dailyUsd).toBeCloseTo(5.46, 10);
    expect(byModel['deepseek-v3.2']?.monthlyUsd).toBeCloseTo(163.8, 10);
  });

  it('compares every model of the current table, cheapest first', () => {
    const rows = compareModels(workload);
    expect(rows.length).toBeGreaterThanOrEqual(18);
    expect(rows.map((row) => row.dailyUsd)).toEqual([...rows.map((row) => row.dailyUsd)].sort((a, b) => a - b));
    // gemini-2.5-flash at today's $0.30 input: 10,000 × (3,000 × 0.30 + 800 × 2.50) / 1e6.
    expect(rows.find((row) => row.model === 'gemini-2.5-flash')?.dailyUsd).toBeCloseTo(29, 10);
  });

  it('takes a calendar month length when asked', () => {
    const [row] = compareModels({ ...workload, prices: originalPrices, models: ['gpt-4.1'], daysPerMonth: 365 / 12 });
    expect(row?.monthlyUsd).toBeCloseTo((124 * 365) / 12, 9);
  });

  it('refuses a model it has no price for', () => {
    expect(() => compareModels({ ...workload, models: ['my-finetune'] })).toThrow(expect.objectContaining({ code: 'UNKNOWN_MODEL' }));
  });

  it('names a bad option', () => {
    expect(() => compareModels({ ...workload, inputTokens: -3 })).toThrow(expect.objectContaining({ field: 'compareModels.inputTokens' }));
  });
});

describe('formatCostTable', () => {
  const rows = compareModels({ ...workload, prices: originalPrices, models: ['gpt-4.1', 'deepseek-v3.2'] });

  it('prints the comparison as a Markdown table', () => {
    expect(formatCostTable(rows)).toBe(
      [
        '| model         | requests/day | input | output | per request | per day | per month (30 d) | per year (365 d) |',
        '|---------------|-------------:|------:|-------:|------------:|--------:|-----------------:|-----------------:|',
        '| gpt-4.1       |       10,000 | 3,000 |    800 |     $0.0124 | $124.00 |        $3,720.00 |       $45,260.00 |',
        '| deepseek-v3.2 |       10,000 | 3,000 |    800 |   $0.000546 |   $5.46 |          $163.80 |        $1,992.90 |',
      ].join('\n'),
    );
  });

  it('converts at the rate the caller gives', () => {
    const table = formatCostTable(rows, { currency: 'EUR', rate: 0.5 });
    expect(table).toContain('€62.00');
    expect(table).toContain('€1,860.00');
  });

  it('refuses another currency without a rate rather than print dollars as euros', () => {
    expect(() => formatCostTable(rows, { currency: 'EUR' })).toThrow(expect.objectContaining({ field: 'formatCostTable.rate' }));
  });
});
