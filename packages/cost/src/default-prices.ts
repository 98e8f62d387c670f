import type { PriceEntryInput } from './price-table.js';

/*
 * List prices in USD per million tokens (standard tier: no batch, flex or
 * priority discount), looked up on 2026-11-25 with the repository's search
 * tool, which reads stored copies of public pages, not the live web.
 * `source` is the page the figures were read on; `note` says when that page
 * was dated and what it did not confirm. `verified: false` marks an entry
 * with a figure no page confirmed (taken from the provider's page as last
 * known). Providers change prices: check before you bill anyone.
 */

const checkedAt = '2026-11-25';

const openAI = {
  pricing: 'https://developers.openai.com/api/docs/pricing',
  tokenmath: 'https://tokenmath.io/openai-api-pricing-explained',
  catalog: 'https://chatgptpricing-akr.pages.dev/api-pricing',
  deploybase: 'https://deploybase.ai/articles/openai-api-pricing-2026',
};
const anthropic = 'https://platform.claude.com/docs/en/about-claude/pricing';
const google = 'https://deploybase.ai/articles/gemini-api-pricing';
const deepseek = 'https://benchlm.ai/blog/posts/deepseek-api-pricing';

const gpt41Window = 1_047_576;
const claudeLongContext = [{ abovePromptTokens: 200_000, input: 6, cachedInput: 0.6, output: 22.5 }];

/** The built-in price table's entries; internal (use `priceTable()`). */
export const defaultPrices: Record<string, PriceEntryInput> = {
  'gpt-4.1': {
    input: 2, cachedInput: 0.5, output: 8, contextWindow: gpt41Window, maxOutput: 32_768,
    source: openAI.tokenmath, checkedAt, verified: true,
    note: 'input/output confirmed against OpenAI model pricing (page checked 2026-06-21); cached input is 25% of input for the GPT-4.1 family',
  },
  'gpt-4.1-mini': {
    input: 0.4, cachedInput: 0.1, output: 1.6, contextWindow: gpt41Window, maxOutput: 32_768,
    source: openAI.tokenmath, checkedAt, verified: true,
    note: 'page checked 2026-06-21; cached input is 25% of input for the GPT-4.1 family',
  },
  'gpt-4.1-nano': {
    input: 0.1, cachedInput: 0.025, output: 0.4, contextWindow: gpt41Window, maxOutput: 32_768,
    source: 'https://raw.githubusercontent.com/Sraleik/undetermini/HEAD/PRICING.md', checkedAt, verified: true,
    note: 'input/output verified there 2026-05-07; cached input is 25% of input for the GPT-4.1 family',
  },
  'gpt-4o': {
    input: 2.5, cachedInput: 1.25, output: 10, contextWindow: 128_000, maxOutput: 16_384,
    source: openAI.catalog, checkedAt, verified: true, note: `cites ${openAI.pricing}; undated`,
  },
  'gpt-4o-mini': {
    input: 0.15, cachedInput: 0.075, output: 0.6, contextWindow: 128_000, maxOutput: 16_384,
    source: openAI.catalog, checkedAt, verified: true, note: `cites ${openAI.pricing}; undated`,
  },
  'gpt-5': {
    input: 1.25, cachedInput: 0.125, output: 10, contextWindow: 400_000, maxOutput: 128_000,
    source: openAI.deploybase, checkedAt, verified: true,
    note: 'page priced 2026-03-21; cached input is 10% of input on GPT-5 tiers (aipromptshub.co/calc/gpt-5-cost)',
  },
  'gpt-5-mini': {
    input: 0.25, cachedInput: 0.025, output: 2, contextWindow: 400_000, maxOutput: 128_000,
    source: 'https://nicolalazzari.ai/articles/openai-api-pricing-explained-2026', checkedAt, verified: true,
  },
  'gpt-5-nano': {
    input: 0.05, cachedInput: 0.005, output: 0.4, contextWindow: 400_000, maxOutput: 128_000,
    source: openAI.deploybase, checkedAt, verified: false,
    note: 'only the $0.05 input price was confirmed; output and cached input are OpenAI launch prices',
  },
  o3: {
    input: 2, cachedInput: 0.5, output: 8, contextWindow: 200_000, maxOutput: 100_000,
    source: openAI.deploybase, checkedAt, verified: false,
    note: 'input/output confirmed (2026-03-21); cached input $0.50 is OpenAI\'s page as last known, one secondary page says $1.00',
  },
  'o4-mini': {
    input: 1.1, cachedInput: 0.275, output: 4.4, contextWindow: 200_000, maxOutput: 100_000,
    source: 'https://github.com/RooCodeInc/Roo-Code/pull/2691', checkedAt, verified: true,
    note: 'launch prices (2025-04-17, from platform.openai.com/docs/models/o4-mini); no newer page found',
  },
  'claude-sonnet-4.5': {
    input: 3, cachedInput: 0.3, output: 15, contextWindow: 200_000, maxOutput: 64_000, tiers: claudeLongContext,
    source: anthropic, checkedAt, verified: true,
    note: 'the long-context tier applies with the 1M-context beta (docs.anthropic.com pricing, "> 200K input tokens")',
  },
  'claude-sonnet-4': {
    input: 3, cachedInput: 0.3, output: 15, contextWindow: 200_000, maxOutput: 64_000, tiers: claudeLongContext,
    source: anthropic, checkedAt, verified: true,
  },
  'claude-opus-4.5': {
    input: 5, cachedInput: 0.5, output: 25, contextWindow: 200_000, maxOutput: 64_000,
    source: anthropic, checkedAt, verified: true,
  },
  'claude-opus-4.1': {
    input: 15, cachedInput: 1.5, output: 75, contextWindow: 200_000, maxOutput: 32_000,
    source: anthropic, checkedAt, verified: true, note: 'retired on Anthropic\'s API, still on Bedrock and Google Cloud',
  },
  'claude-haiku-4.5': {
    input: 1, cachedInput: 0.1, output: 5, contextWindow: 200_000, maxOutput: 64_000,
    source: anthropic, checkedAt, verified: true,
  },
  'gemini-2.5-pro': {
    input: 1.25, cachedInput: 0.125, output: 10, contextWindow: 1_048_576, maxOutput: 65_536,
    tiers: [{ abovePromptTokens: 200_000, input: 2.5, cachedInput: 0.25, output: 15 }],
    source: google, checkedAt, verified: true,
    note: 'cites Google\'s pricing page (March 2026); cache prices quoted from it on discuss.ai.google.dev',
  },
  'gemini-2.5-flash': {
    input: 0.3, cachedInput: 0.03, output: 2.5, contextWindow: 1_048_576, maxOutput: 65_536,
    source: google, checkedAt, verified: true,
    note: 'text/image/video input (the original write-up had $0.35). Cached input: the 90% caching discount the page reports; one May-2026 post lists $0.075',
  },
  'gemini-2.5-flash-lite': {
    input: 0.1, cachedInput: 0.01, output: 0.4, contextWindow: 1_048_576, maxOutput: 65_536,
    source: 'https://jangwook.net/en/blog/en/gemini-25-flash-api-cost-optimization-guide/', checkedAt, verified: true,
    note: 'input/output as of May 2026 (also hivebook.wiki); cached input by the 90% caching discount',
  },
  'deepseek-v3.2': {
    input: 0.28, cachedInput: 0.028, output: 0.42, contextWindow: 128_000, maxOutput: 65_536,
    source: deepseek, checkedAt, verified: true,
    note: 'DeepSeek\'s page as of 2026-04-13 (V3.2 behind deepseek-chat and deepseek-reasoner); the original write-up had $0.07/$0.42, $0.07 being an older cache-hit price',
  },
  'deepseek-chat': {
    input: 0.28, cachedInput: 0.028, output: 0.42, contextWindow: 128_000, maxOutput: 8_192,
    source: deepseek, checkedAt, verified: true,
    note: 'an alias DeepSeek re-points to newer models; this is the V3.2 price (2026-04-13)',
  },
  'deepseek-reasoner': {
    input: 0.28, cachedInput: 0.028, output: 0.42, contextWindow: 128_000, maxOutput: 65_536,
    source: deepseek, checkedAt, verified: true,
    note: 'an alias DeepSeek re-points to newer models; this is the V3.2 price (2026-04-13)',
  },
};
