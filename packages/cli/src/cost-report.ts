import { compareModels, formatCostTable, originalPrices, type PriceTable, type ReportGrouping, type ReportRow } from '@sluice/cost';
import { ValidationError } from '@sluice/core';
import { table } from './batch-summary.js';
import { checkFileToRead } from './batch-files.js';
import { reportLedgerFile } from './file-ledger.js';

/** Options of {@link projectionReport}. */
export interface ProjectionOptions {
  requestsPerDay: number;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens?: number;
  models?: string[];
  /** The original write-up's four models at its prices, instead of the built-in table. */
  original?: boolean;
  prices: PriceTable;
  daysPerMonth?: number;
  currency?: string;
  rate?: number;
}

/**
 * The original write-up's projection as a table: what a workload costs
 * per request, day, month and year on each model, cheapest first.
 *
 * @param options - the workload, models and prices
 * @throws ValidationError for a bad figure; UnknownModelError for a model with no price
 */
export function projectionReport(options: ProjectionOptions): string {
  const rows = compareModels({
    requestsPerDay: options.requestsPerDay,
    inputTokens: options.inputTokens,
    outputTokens: options.outputTokens,
    ...(options.cachedInputTokens === undefined ? {} : { cachedInputTokens: options.cachedInputTokens }),
    prices: options.original ? originalPrices : options.prices,
    ...(options.daysPerMonth === undefined ? {} : { daysPerMonth: options.daysPerMonth }),
  });
  // compareModels keeps a given model list in its order; the report is always cheapest first.
  const wanted = options.models?.map((name) => (options.original ? originalPrices : options.prices).lookup(name)?.model ?? name);
  if (wanted) {
    const missing = wanted.filter((name) => !rows.some((row) => row.model === name));
    if (missing.length > 0) throw new ValidationError('models', `no price for ${missing.join(', ')}`);
  }
  const chosen = wanted ? rows.filter((row) => wanted.includes(row.model)) : rows;
  return formatCostTable(chosen, {
    ...(options.currency === undefined ? {} : { currency: options.currency }),
    ...(options.rate === undefined ? {} : { rate: options.rate }),
  });
}

/**
 * Parses `--by`: `model`, `hour`, `day`, `month`, `total` or `tag:<name>`.
 *
 * @param value - the flag's value
 * @throws ValidationError for anything else
 */
export function parseGrouping(value: string): ReportGrouping {
  if (value.startsWith('tag:') && value.length > 4) return { tag: value.slice(4) };
  if (['model', 'hour', 'day', 'month', 'total'].includes(value)) return value as ReportGrouping;
  throw new ValidationError('by', `must be model, hour, day, month, total or tag:<name>, got ${JSON.stringify(value)}`);
}

/**
 * A ledger file's spend as a table: requests, tokens and cost per group,
 * most expensive first, with the total.
 *
 * @param path - the JSONL ledger file
 * @param by - the grouping
 * @param span - since / until (epoch ms)
 */
export async function ledgerReport(path: string, by: ReportGrouping, span: { since?: number; until?: number } = {}): Promise<{ text: string; skipped: number[] }> {
  checkFileToRead('ledger', path, 'a cost ledger');
  const report = await reportLedgerFile(path, { by, ...span });
  const count = new Intl.NumberFormat('en-US');
  const money = (value: number) => `$${value.toFixed(4)}`;
  // Answers the cache served cost nothing; what they would have cost is shown when there were any.
  const saved = report.savedUsd > 0 || report.rows.some((r) => r.savedRequests > 0);
  const row = (r: ReportRow) => [
    r.key,
    count.format(r.requests),
    count.format(r.uncachedInputTokens),
    count.format(r.cachedInputTokens),
    count.format(r.outputTokens),
    money(r.usd),
    ...(saved ? [count.format(r.savedRequests), money(r.savedUsd)] : []),
  ];
  const totals = report.rows.reduce(
    (sum, r) => ({
      ...sum,
      uncachedInputTokens: sum.uncachedInputTokens + r.uncachedInputTokens,
      cachedInputTokens: sum.cachedInputTokens + r.cachedInputTokens,
      outputTokens: sum.outputTokens + r.outputTokens,
      savedRequests: sum.savedRequests + r.savedRequests,
    }),
    { key: 'total', usd: report.usd, requests: report.requests, estimatedRequests: 0, uncachedInputTokens: 0, cachedInputTokens: 0, outputTokens: 0, savedRequests: 0, savedUsd: report.savedUsd },
  );
  const from = new Date(report.since).toISOString();
  const to = new Date(report.until).toISOString();
  // No record in the file (or the span): say so, not a span of 1970.
  const window = [span.since === undefined ? '' : ` since ${new Date(span.since).toISOString()}`, span.until === undefined ? '' : ` until ${new Date(span.until).toISOString()}`].join('');
  const title = report.requests === 0 && report.rows.length === 0 ? `no spend in ${path}${window}` : `spend from ${from} to ${to}`;
  const headers = ['group', 'requests', 'input tokens', 'cached input', 'output tokens', 'cost', ...(saved ? ['from cache', 'saved'] : [])];
  const text = [
    `${title}, by ${typeof by === 'object' ? `tag ${by.tag}` : by}`,
    // Grouped by total, the one group is the total: a second row would repeat it.
    table(headers, by === 'total' && report.rows.length > 0 ? report.rows.map(row) : [...report.rows.map(row), row(totals)]),
  ].join('\n');
  return { text, skipped: report.skipped };
}
