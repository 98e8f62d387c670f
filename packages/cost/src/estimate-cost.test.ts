import { describe, expect, it } from 'vitest';
import { estimateCost } from './estimate-cost.js';
import { priceTable } from './price-table.js';

const messages = [{ role: 'user' as const, content: 'Summarise the attached report.' }];

describe('estimateCost', () => {
  it('prices the expected answer and the worst case at the output cap', () => {
    const estimate = estimateCost({ model: 'gpt-4.1', messages, max_completion_tokens: 2_000 }, { promptTokens: 3_000, expectedOutput: 800 });
    expect(estimate).toMatchObject({ model: 'gpt-4.1', priced: true, inputTokens: 3_000, outputTokens: { expected: 800, max: 2_000 } });
    expect(estimate.expected).toBeCloseTo((3_000 * 2 + 800 * 8) / 1e6, 12);
    expect(estimate.worstCase).toBeCloseTo((3_000 * 2 + 2_000 * 8) / 1e6, 12);
  });

  it('caps output by max_completion_tokens, then max_tokens, then the model maximum', () => {
    const at = (extra: object) => estimateCost({ model: 'gpt-4.1', messages, ...extra }, { promptTokens: 10 }).outputTokens.max;
    expect(at({ max_completion_tokens: 100, max_tokens: 200 })).toBe(100);
    expect(at({ max_tokens: 200 })).toBe(200);
    expect(at({})).toBe(32_768);
    // Never above the model's maximum, which the provider enforces: before, a budget reserved $8,000 for max_tokens 1e9.
    expect(at({ max_tokens: 1e9 })).toBe(32_768);
    expect(estimateCost({ model: 'gpt-4.1', messages, max_completion_tokens: 1e9 }, { promptTokens: 10 }).worstCase).toBeCloseTo((10 * 2 + 32_768 * 8) / 1e6, 12);
  });

  it('never expects more than the cap, and multiplies by n choices', () => {
    const estimate = estimateCost({ model: 'gpt-4.1', messages, max_tokens: 300, n: 3 }, { promptTokens: 1_000 });
    expect(estimate.outputTokens).toEqual({ expected: 900, max: 900 });
  });

  it('takes the typical answer as a ratio of the prompt', () => {
    const estimate = estimateCost({ model: 'gpt-4.1', messages }, { promptTokens: 4_000, expectedOutput: { ratio: 0.25 } });
    expect(estimate.outputTokens.expected).toBe(1_000);
  });

  it('prices expected cache hits at the cached rate in the expected cost only', () => {
    const estimate = estimateCost({ model: 'gpt-4.1', messages, max_tokens: 100 }, { promptTokens: 1_000, cachedInputTokens: 800, expectedOutput: 0 });
    expect(estimate.expected).toBeCloseTo((200 * 2 + 800 * 0.5) / 1e6, 12);
    expect(estimate.worstCase).toBeCloseTo((1_000 * 2 + 100 * 8) / 1e6, 12);
  });

  it('counts the prompt when no count is given', () => {
    const estimate = estimateCost({ model: 'gpt-4.1', messages });
    expect(estimate.inputTokens).toBeGreaterThan(0);
  });

  it('throws UNKNOWN_MODEL for a model with no price by default', () => {
    expect(() => estimateCost({ model: 'my-finetune', messages })).toThrow(expect.objectContaining({ code: 'UNKNOWN_MODEL', model: 'my-finetune' }));
  });

  it('gives an unpriced $0 estimate under the warn and free policies', () => {
    for (const unknownModel of ['warn', 'free'] as const) {
      expect(estimateCost({ model: 'my-finetune', messages }, { unknownModel })).toMatchObject({ priced: false, expected: 0, worstCase: 0 });
    }
  });

  it('uses the prices it is given', () => {
    const prices = priceTable({ 'my-finetune': { input: 10, output: 10, contextWindow: 10_000, maxOutput: 1_000 } });
    expect(estimateCost({ model: 'my-finetune', messages }, { prices, promptTokens: 1_000 }).worstCase).toBeCloseTo(0.02, 12);
  });

  it('names a bad option', () => {
    expect(() => estimateCost({ model: 'gpt-4.1', messages }, { expectedOutput: -1 })).toThrow(expect.objectContaining({ field: 'estimateCost.expectedOutput' }));
  });
});
