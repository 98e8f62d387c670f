import type { PriceEntryInput } from './price-entry.js';

/*
 * List prices in USD per million tokens at the providers' standard tier (no
 * batch, flex or priority discount). `source` is the provider's own pricing
 * page; `checkedAt` is when the figures were checked. Where the provider's
 * page could not be read that day, `confirmedBy` names the third-party page
 * the figures were confirmed on instead (a last resort), and `note` gives
 * that page's own date. `verified: false` marks an entry with a figure
 * nothing confirmed that day (`note` says which; it is the provider's price
 * as last known). Context windows are not here: they live in
 * @sluice/context's one window table. Providers change prices: check before
 * you bill anyone.
 */

const checkedAt = '2026-12-02';

const openAI = 'https://developers.openai.com/api/docs/pricing';
const anthropic = 'https://platform.claude.com/docs/en/about-claude/pricing';
const google = 'https://ai.google.dev/gemini-api/docs/pricing';
const deepseek = 'https://api-docs.deepseek.com/quick_start/pricing';

/** Third-party pages, each quoting the provider's page; dates are the pages' own. */
const thirdParty = {
  openAIPricing: 'https://deploybase.ai/articles/openai-pricing', // OpenAI's page as of March 2026
  openAICatalog: 'https://chatgptpricing-akr.pages.dev/api-pricing', // undated
  copilotTable: 'https://github.com/github/docs/blob/main/data/tables/copilot/models-and-pricing.yml',
  anthropicMirror: 'https://www.aiwiki.dev/claude/docs/about-claude/pricing', // a copy of Anthropic's page, 2025-11-15
  claudePricing: 'https://deploybase.ai/articles/claude-api-pricing', // March 2026
  geminiPricing: 'https://deploybase.ai/articles/gemini-api-pricing', // Google's page as of March 2026
  geminiList: 'https://www.morphllm.com/gemini-api-pricing', // Google's page, first half of 2026
  deepseekPricing: 'https://benchlm.ai/blog/posts/deepseek-api-pricing', // DeepSeek's page as of 2026-04-13
};

const openAIEntry = { source: openAI, checkedAt, confirmedBy: thirdParty.openAIPricing };
const claudeLongContext = [{ abovePromptTokens: 200_000, input: 6, cachedInput: 0.6, output: 22.5 }];

/** The built-in price table's entries; internal (use `priceTable()`). */
export const defaultPrices: Record<string, PriceEntryInput> = {
  'gpt-4.1': {
    input: 2, cachedInput: 0.5, output: 8, maxOutput: 32_768, ...openAIEntry, verified: true,
    note: 'cached input $0.50 also in GitHub Copilot\'s model price table (OpenAI\'s rates)',
  },
  'gpt-4.1-mini': {
    input: 0.4, cachedInput: 0.1, output: 1.6, maxOutput: 32_768, ...openAIEntry, verified: true,
    note: 'cached input is a quarter of input on the GPT-4.1 family',
  },
  'gpt-4.1-nano': {
    input: 0.1, cachedInput: 0.025, output: 0.4, maxOutput: 32_768, ...openAIEntry, verified: true,
    note: 'cached input is a quarter of input on the GPT-4.1 family',
  },
  'gpt-4o': {
    input: 2.5, cachedInput: 1.25, output: 10, maxOutput: 16_384,
    source: openAI, checkedAt, confirmedBy: thirdParty.openAICatalog, verified: true,
  },
  'gpt-4o-mini': {
    input: 0.15, cachedInput: 0.075, output: 0.6, maxOutput: 16_384,
    source: openAI, checkedAt, confirmedBy: thirdParty.openAICatalog, verified: true,
  },
  'gpt-5': {
    input: 1.25, cachedInput: 0.125, output: 10, maxOutput: 128_000, ...openAIEntry, verified: true,
    note: 'cached input is a tenth of input on the GPT-5 family',
  },
  'gpt-5-mini': {
    input: 0.25, cachedInput: 0.025, output: 2, maxOutput: 128_000,
    source: openAI, checkedAt, confirmedBy: thirdParty.copilotTable, verified: true,
  },
  'gpt-5-nano': {
    input: 0.05, cachedInput: 0.005, output: 0.4, maxOutput: 128_000, ...openAIEntry, verified: true,
    note: 'cached input is a tenth of input on the GPT-5 family',
  },
  o3: {
    input: 2, cachedInput: 0.5, output: 8, maxOutput: 100_000, ...openAIEntry, verified: false,
    note: 'cached input unconfirmed: $0.50 is OpenAI\'s price as last known; chatgptpricing-akr.pages.dev lists $1.00',
  },
  'o4-mini': {
    input: 1.1, cachedInput: 0.275, output: 4.4, maxOutput: 100_000, ...openAIEntry, verified: false,
    note: 'cached input unconfirmed: $0.275 is the launch price on OpenAI\'s o4-mini model page (2025-04-17)',
  },
  'claude-sonnet-4.5': {
    input: 3, cachedInput: 0.3, output: 15, maxOutput: 64_000, tiers: claudeLongContext,
    source: anthropic, checkedAt, confirmedBy: thirdParty.anthropicMirror, verified: true,
    note: 'the long-context tier (the provider\'s "> 200K input tokens" prices) applies with the 1M-context beta',
  },
  'claude-sonnet-4': {
    input: 3, cachedInput: 0.3, output: 15, maxOutput: 64_000, tiers: claudeLongContext,
    source: anthropic, checkedAt, verified: true,
  },
  'claude-opus-4.5': {
    input: 5, cachedInput: 0.5, output: 25, maxOutput: 64_000,
    source: anthropic, checkedAt, confirmedBy: thirdParty.claudePricing, verified: true,
    note: 'cached input by the provider\'s rule: cache reads cost 0.1 times base input',
  },
  'claude-opus-4.1': {
    input: 15, cachedInput: 1.5, output: 75, maxOutput: 32_000,
    source: anthropic, checkedAt, verified: true, note: 'retired on Anthropic\'s API, still on Bedrock and Google Cloud',
  },
  'claude-haiku-4.5': {
    input: 1, cachedInput: 0.1, output: 5, maxOutput: 64_000,
    source: anthropic, checkedAt, confirmedBy: thirdParty.anthropicMirror, verified: true,
  },
  'gemini-2.5-pro': {
    input: 1.25, cachedInput: 0.125, output: 10, maxOutput: 65_536,
    tiers: [{ abovePromptTokens: 200_000, input: 2.5, cachedInput: 0.25, output: 15 }],
    source: google, checkedAt, confirmedBy: thirdParty.geminiPricing, verified: true,
    note: 'cached input by the 90% context-caching discount',
  },
  'gemini-2.5-flash': {
    input: 0.3, cachedInput: 0.03, output: 2.5, maxOutput: 65_536,
    source: google, checkedAt, confirmedBy: thirdParty.geminiPricing, verified: true,
    note: 'text/image/video input (the original write-up had $0.35); cached input by the 90% context-caching discount',
  },
  'gemini-2.5-flash-lite': {
    input: 0.1, cachedInput: 0.01, output: 0.4, maxOutput: 65_536,
    source: google, checkedAt, confirmedBy: thirdParty.geminiList, verified: true,
    note: 'cached input by the 90% context-caching discount',
  },
  'deepseek-v3.2': {
    input: 0.28, cachedInput: 0.028, output: 0.42, maxOutput: 65_536,
    source: deepseek, checkedAt, confirmedBy: thirdParty.deepseekPricing, verified: true,
    note: 'V3.2 behind deepseek-chat and deepseek-reasoner; the original write-up had $0.07/$0.42, $0.07 being an older cache-hit price',
  },
  'deepseek-chat': {
    input: 0.28, cachedInput: 0.028, output: 0.42, maxOutput: 8_192,
    source: deepseek, checkedAt, confirmedBy: thirdParty.deepseekPricing, verified: true,
    note: 'an alias DeepSeek re-points to newer models; this is the V3.2 price',
  },
  'deepseek-reasoner': {
    input: 0.28, cachedInput: 0.028, output: 0.42, maxOutput: 65_536,
    source: deepseek, checkedAt, confirmedBy: thirdParty.deepseekPricing, verified: true,
    note: 'an alias DeepSeek re-points to newer models; this is the V3.2 price',
  },
};
