import { type PriceTable, priceTable } from './price-table.js';

const source = 'the original access layer write-up (DESIGN.md, "What the original access layer did")';

/**
 * The four prices of the original access layer, as it had them, so its
 * cost comparison reproduces exactly. Not current prices: use
 * `priceTable()` for those. Context windows are the original's; output caps
 * (which the original did not have) are the models' current ones.
 *
 * @example
 * ```ts
 * compareModels({ requestsPerDay: 10_000, inputTokens: 3_000, outputTokens: 800, prices: originalPrices });
 * ```
 */
export const originalPrices: PriceTable = priceTable(
  {
    'gpt-4.1': { input: 2, output: 8, contextWindow: 128_000, maxOutput: 32_768, source },
    'claude-sonnet-4.5': { input: 3, output: 15, contextWindow: 200_000, maxOutput: 64_000, source },
    'gemini-2.5-flash': { input: 0.35, output: 2.5, contextWindow: 1_000_000, maxOutput: 65_536, source },
    'deepseek-v3.2': { input: 0.07, output: 0.42, contextWindow: 64_000, maxOutput: 8_192, source },
  },
  { defaults: false },
);
