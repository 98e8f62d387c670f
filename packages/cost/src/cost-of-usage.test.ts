import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { costOfUsage, costOfUsageTokens, usdOfUsageTokens } from './cost-of-usage.js';
import { priceTable } from './price-table.js';
import { usageTokens } from './usage-tokens.js';

const entry = (model: string) => priceTable().lookup(model)!.entry;

describe('costOfUsage', () => {
  it('prices uncached input, cached input and output in disjoint buckets', () => {
    // gpt-4.1: $2 input, $0.50 cached, $8 output per million.
    const cost = costOfUsage(
      {
        prompt_tokens: 10_000,
        completion_tokens: 2_000,
        total_tokens: 12_000,
        prompt_tokens_details: { cached_tokens: 6_000 },
        completion_tokens_details: { reasoning_tokens: 1_500 },
      },
      entry('gpt-4.1'),
    );
    expect(cost.buckets.uncachedInput).toEqual({ tokens: 4_000, usd: 0.008 });
    expect(cost.buckets.cachedInput).toEqual({ tokens: 6_000, usd: 0.003 });
    expect(cost.buckets.output).toEqual({ tokens: 2_000, usd: 0.016, reasoningTokens: 1_500 });
    expect(cost.usd).toBeCloseTo(0.027, 12);
  });

  it('reads DeepSeek cache hits from prompt_cache_hit_tokens', () => {
    // DeepSeek's own usage fields, which the Usage type does not declare.
    const usage = { prompt_tokens: 1_000_000, completion_tokens: 0, total_tokens: 1_000_000, prompt_cache_hit_tokens: 900_000, prompt_cache_miss_tokens: 100_000 };
    const cost = costOfUsage(usage, entry('deepseek-v3.2'));
    expect(cost.buckets.cachedInput.tokens).toBe(900_000);
    expect(cost.usd).toBeCloseTo(0.1 * 0.28 + 0.9 * 0.028, 12);
  });

  it('adds reasoning reported outside completion_tokens, as total_tokens reveals', () => {
    const cost = costOfUsage(
      { prompt_tokens: 100, completion_tokens: 50, total_tokens: 1_150, completion_tokens_details: { reasoning_tokens: 1_000 } },
      entry('gemini-2.5-flash'),
    );
    expect(cost.buckets.output).toMatchObject({ tokens: 1_050, reasoningTokens: 1_000 });
  });

  it('prices every token at the long-prompt tier above 200k prompt tokens', () => {
    const usage = (prompt: number) => ({ prompt_tokens: prompt, completion_tokens: 1_000, total_tokens: prompt + 1_000 });
    const short = costOfUsage(usage(200_000), entry('gemini-2.5-pro'));
    const long = costOfUsage(usage(200_001), entry('gemini-2.5-pro'));
    expect(short.tier).toBeUndefined();
    expect(short.usd).toBeCloseTo(0.25 + 0.01, 12);
    expect(long.tier).toBe(200_000);
    expect(long.usd).toBeCloseTo((200_001 * 2.5 + 1_000 * 15) / 1e6, 12);
  });

  it('charges cached tokens as uncached when the model has no cached price', () => {
    const prices = priceTable({ m: { input: 1, output: 1, contextWindow: 1_000, maxOutput: 100 } }, { defaults: false });
    const cost = costOfUsage({ prompt_tokens: 500, completion_tokens: 0, total_tokens: 500, prompt_tokens_details: { cached_tokens: 400 } }, prices.lookup('m')!.entry);
    expect(cost.usd).toBeCloseTo(500 / 1e6, 15);
  });

  it('keeps buckets disjoint and summing to the total, whatever the usage says', () => {
    fc.assert(
      fc.property(
        fc.nat(300_000), fc.nat(400_000), fc.nat(100_000), fc.nat(100_000), fc.constantFrom('gpt-4.1', 'gemini-2.5-pro', 'claude-sonnet-4.5', 'o3'),
        (prompt, cached, completion, reasoning, model) => {
          const cost = costOfUsage(
            {
              prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion,
              prompt_tokens_details: { cached_tokens: cached }, completion_tokens_details: { reasoning_tokens: reasoning },
            },
            entry(model),
          );
          const { uncachedInput, cachedInput, output } = cost.buckets;
          expect(uncachedInput.tokens + cachedInput.tokens).toBe(prompt);
          expect(output.tokens).toBe(completion);
          expect(uncachedInput.tokens).toBeGreaterThanOrEqual(0);
          expect(uncachedInput.usd + cachedInput.usd + output.usd).toBeCloseTo(cost.usd, 9);
        },
      ),
    );
  });

  it('gives budget the same USD without buckets as with them, reasoning, cache hits and long-prompt tiers included', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('gpt-4.1', 'gemini-2.5-pro', 'deepseek-v3.2', 'claude-sonnet-4.5'),
        fc.nat(400_000),
        fc.nat(50_000),
        fc.nat(400_000),
        fc.nat(20_000),
        fc.boolean(),
        (model, prompt, completion, cached, reasoning, outside) => {
          const usage = {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion + (outside ? reasoning : 0),
            prompt_tokens_details: { cached_tokens: cached },
            completion_tokens_details: { reasoning_tokens: reasoning },
          };
          const tokens = usageTokens(usage);
          expect(usdOfUsageTokens(tokens, entry(model))).toBe(costOfUsageTokens(tokens, entry(model)).usd);
        },
      ),
    );
  });
});

