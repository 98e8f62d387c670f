import { parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';
import { ratesFor } from './cost-of-usage.js';
import { priceTableOption } from './options.js';
import { type PriceTable, priceTable } from './price-table.js';
import { resolvePrice } from './resolve-price.js';

/** One model's projected cost: per request, per day, per month and per year. */
export interface CostRow {
  model: string;
  requestsPerDay: number;
  /** Prompt tokens per request (cached ones included). */
  inputTokens: number;
  outputTokens: number;
  perRequestUsd: number;
  dailyUsd: number;
  /** `dailyUsd × daysPerMonth`. */
  monthlyUsd: number;
  /** `dailyUsd × 365`. */
  yearlyUsd: number;
  daysPerMonth: number;
}

/** Options of {@link compareModels}. */
export interface CompareModelsOptions {
  requestsPerDay: number;
  /** Prompt tokens per request. */
  inputTokens: number;
  /** Output tokens per request. */
  outputTokens: number;
  /** Of `inputTokens`, how many the provider's cache serves (default 0). */
  cachedInputTokens?: number;
  /** Which models, in this order (default: every model of `prices`, cheapest first). */
  models?: string[];
  /** Default: `priceTable()`; `originalPrices` reproduces the original write-up. */
  prices?: PriceTable;
  /** Days in a month (default 30, as the original comparison had it; 365 / 12 for a calendar average). */
  daysPerMonth?: number;
}

const optionsSchema = z.strictObject({
  requestsPerDay: z.number().check(z.nonnegative()),
  inputTokens: z.number().check(z.int(), z.nonnegative()),
  outputTokens: z.number().check(z.int(), z.nonnegative()),
  cachedInputTokens: z.optional(z.number().check(z.int(), z.nonnegative())),
  models: z.optional(z.array(z.string().check(z.minLength(1))).check(z.minLength(1))),
  prices: z.optional(priceTableOption),
  daysPerMonth: z.optional(z.number().check(z.positive(), z.maximum(31))),
});

/**
 * The original write-up's comparison as data: what a workload costs on
 * each model per request, day, month (30 days by default) and year (365 days).
 *
 * @param options - the workload, and which models and prices to compare
 * @throws ValidationError naming a bad option
 * @throws UnknownModelError when `models` names a model `prices` does not have
 * @example
 * ```ts
 * const rows = compareModels({ requestsPerDay: 10_000, inputTokens: 3_000, outputTokens: 800, prices: originalPrices });
 * console.log(formatCostTable(rows));
 * ```
 */
export function compareModels(options: CompareModelsOptions): CostRow[] {
  const config = parseOptions(optionsSchema, options, 'compareModels');
  const prices = config.prices ?? priceTable();
  const daysPerMonth = config.daysPerMonth ?? 30;
  const cached = Math.min(config.cachedInputTokens ?? 0, config.inputTokens);
  const rows = (config.models ?? Object.keys(prices.entries)).map((name): CostRow => {
    const match = resolvePrice(prices, name, 'error') as NonNullable<ReturnType<typeof resolvePrice>>;
    const rates = ratesFor(match.entry, config.inputTokens);
    // Summed in millionths of a dollar and divided last, so $124/day is exactly 124.
    const microUsd = (config.inputTokens - cached) * rates.input + cached * rates.cachedInput + config.outputTokens * rates.output;
    const dailyUsd = (config.requestsPerDay * microUsd) / 1e6;
    return {
      model: match.model,
      requestsPerDay: config.requestsPerDay,
      inputTokens: config.inputTokens,
      outputTokens: config.outputTokens,
      perRequestUsd: microUsd / 1e6,
      dailyUsd,
      monthlyUsd: dailyUsd * daysPerMonth,
      yearlyUsd: dailyUsd * 365,
      daysPerMonth,
    };
  });
  return config.models ? rows : rows.sort((a, b) => a.dailyUsd - b.dailyUsd || a.model.localeCompare(b.model));
}
