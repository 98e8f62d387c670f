import { type PriceTable, priceTable } from './price-table.js';

const source = 'the original access layer write-up (DESIGN.md, "What the original access layer did")';
const checkedAt = '2026-12-02';
const current = (provider: string, today: string) => `not a current price: ${provider} lists ${today} (see priceTable())`;

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
    'gpt-4.1': {
      input: 2, output: 8, contextWindow: 128_000, maxOutput: 32_768, source, checkedAt,
      note: 'the same prices as on https://developers.openai.com/api/docs/pricing; the window was 1,047,576 there',
    },
    'claude-sonnet-4.5': {
      input: 3, output: 15, contextWindow: 200_000, maxOutput: 64_000, source, checkedAt,
      note: 'the same prices as on https://platform.claude.com/docs/en/about-claude/pricing',
    },
    'gemini-2.5-flash': {
      input: 0.35, output: 2.5, contextWindow: 1_000_000, maxOutput: 65_536, source, checkedAt,
      note: current('https://ai.google.dev/gemini-api/docs/pricing', '$0.30 input'),
    },
    'deepseek-v3.2': {
      input: 0.07, output: 0.42, contextWindow: 64_000, maxOutput: 8_192, source, checkedAt,
      note: current('https://api-docs.deepseek.com/quick_start/pricing', '$0.28 input ($0.07 was an older cache-hit price)'),
    },
  },
  { defaults: false },
);
