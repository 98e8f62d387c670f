import { ValidationError } from '@sluice/core';
import type { CostRow } from './compare-models.js';
import type { LedgerReport } from './ledger.js';

const dayMs = 86_400_000;

/**
 * Projects observed spend forward: each row of a ledger report (by model,
 * or any grouping) becomes a {@link CostRow} with the daily rate seen over
 * the report's span (`until − since`), and the monthly and yearly figures
 * that rate gives. Same shape as `compareModels`, so `formatCostTable`
 * prints both.
 *
 * @param report - a ledger report, e.g. `await ledger.report({ since, by: 'model' })`
 * @param options - days in a month (default 30)
 * @throws ValidationError when the report spans no time
 * @example
 * ```ts
 * const week = await costs.ledger.report({ since: Date.now() - 7 * 86_400_000, by: 'model' });
 * console.log(formatCostTable(projectSpend(week)));
 * ```
 */
export function projectSpend(report: LedgerReport, options: { daysPerMonth?: number } = {}): CostRow[] {
  const days = (report.until - report.since) / dayMs;
  if (!(days > 0)) throw new ValidationError('projectSpend.report', 'spans no time (until must be after since)');
  const daysPerMonth = options.daysPerMonth ?? 30;
  return report.rows.map((row) => {
    const dailyUsd = row.usd / days;
    const per = (value: number) => (row.requests === 0 ? 0 : value / row.requests);
    return {
      model: row.key,
      requestsPerDay: row.requests / days,
      inputTokens: per(row.uncachedInputTokens + row.cachedInputTokens),
      outputTokens: per(row.outputTokens),
      perRequestUsd: per(row.usd),
      dailyUsd,
      monthlyUsd: dailyUsd * daysPerMonth,
      yearlyUsd: dailyUsd * 365,
      daysPerMonth,
    };
  });
}
