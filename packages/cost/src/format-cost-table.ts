import { ValidationError } from '@sluice/core';
import { parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';
import type { CostRow } from './compare-models.js';

/** Options of {@link formatCostTable}. */
export interface FormatCostTableOptions {
  /** ISO 4217 code to print in (default `'USD'`). */
  currency?: string;
  /** Units of `currency` per US dollar; required for any currency but USD (no rate is fetched). */
  rate?: number;
  /** Number formatting locale (default `'en-US'`). */
  locale?: string;
}

const optionsSchema = z.strictObject({
  currency: z.optional(z.string().check(z.regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as EUR'))),
  rate: z.optional(z.number().check(z.positive())),
  locale: z.optional(z.string().check(z.minLength(1))),
});

/**
 * Prints cost rows (from `compareModels` or `projectSpend`) as a Markdown
 * table, converted at the rate you give.
 *
 * @param rows - the rows to print, in order
 * @param options - currency, its rate per USD, locale
 * @throws ValidationError for a bad option, or a currency other than USD without a `rate`
 * @example
 * ```ts
 * console.log(formatCostTable(compareModels({ requestsPerDay: 10_000, inputTokens: 3_000, outputTokens: 800 }), { currency: 'EUR', rate: 0.92 }));
 * ```
 */
export function formatCostTable(rows: readonly CostRow[], options: FormatCostTableOptions = {}): string {
  const config = parseOptions(optionsSchema, options, 'formatCostTable');
  const currency = config.currency ?? 'USD';
  if (currency !== 'USD' && config.rate === undefined) {
    throw new ValidationError('formatCostTable.rate', `required to print in ${currency} (units per USD)`);
  }
  const rate = config.rate ?? 1;
  const locale = config.locale ?? 'en-US';
  const money = new Intl.NumberFormat(locale, { style: 'currency', currency, minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const small = new Intl.NumberFormat(locale, { style: 'currency', currency, maximumSignificantDigits: 3 });
  const count = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const days = rows[0]?.daysPerMonth ?? 30;
  const header = ['model', 'requests/day', 'input', 'output', 'per request', 'per day', `per month (${formatDays(days)} d)`, 'per year (365 d)'];
  const body = rows.map((row) => [
    row.model,
    count.format(row.requestsPerDay),
    count.format(row.inputTokens),
    count.format(row.outputTokens),
    small.format(row.perRequestUsd * rate),
    money.format(row.dailyUsd * rate),
    money.format(row.monthlyUsd * rate),
    money.format(row.yearlyUsd * rate),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((cells) => (cells[column] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => (column === 0 ? `-${'-'.repeat(width)}-` : `${'-'.repeat(width + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...body.map(line)].join('\n');
}

const formatDays = (days: number) => (Number.isInteger(days) ? String(days) : days.toFixed(2));
