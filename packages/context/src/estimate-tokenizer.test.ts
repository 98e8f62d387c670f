import { describe, expect, it } from 'vitest';
import { countTokens } from './count-tokens.js';
import { estimateTokenizer } from './estimate-tokenizer.js';
import { paragraphs } from './test-reference.js';
import { tokenizerFor } from './tokenizer-for.js';

const samples: Record<string, string> = {
  ...paragraphs,
  json: JSON.stringify({ id: 'chatcmpl-8x', usage: { prompt_tokens: 1_234, completion_tokens: 56 }, tags: ['a', 'b'], ok: true }),
  base64: Buffer.from(Array.from({ length: 3_000 }, (_, i) => (i * 7_919) % 251)).toString('base64'),
  hex: Array.from({ length: 200 }, (_, i) => ((i * 2_654_435_761) >>> 0).toString(16)).join(''),
  uuids: Array.from({ length: 40 }, (_, i) => `${(i * 7_919).toString(16).padStart(8, '0')}-4b3c-9d2e-a1f0-${(i * 104_729).toString(16).padStart(12, '0')}`).join('\n'),
  numbers: Array.from({ length: 300 }, (_, i) => String((i * 7_919) % 100_000)).join(', '),
  russian: 'Обработка естественного языка — важное направление искусственного интеллекта. Модели имеют ограниченное контекстное окно.',
  japanese: '自然言語処理は人工知能の重要な分野です。大規模言語モデルのコンテキストウィンドウには限りがあります。',
  emoji: '🎉 Launch day! 🚀✨ Thanks everyone 🙏👍🏽'.repeat(5),
};

describe('estimateTokenizer', () => {
  it.each(Object.entries(samples))('errs high on %s against both OpenAI encodings', (_, text) => {
    const estimate = countTokens(text, 'claude-sonnet-4.5');
    expect(estimate.approximate).toBe(true);
    expect(estimate.tokens).toBeGreaterThanOrEqual(countTokens(text, 'gpt-4o').tokens);
    expect(estimate.tokens).toBeGreaterThanOrEqual(countTokens(text, 'gpt-4').tokens);
  });

  it('scales with its factor', () => {
    const text = paragraphs.english;
    const plain = estimateTokenizer({ factor: 1 }).count(text);
    const doubled = estimateTokenizer({ factor: 2 }).count(text);
    expect(doubled).toBeGreaterThanOrEqual(2 * plain - 2);
    expect(doubled).toBeLessThanOrEqual(2 * plain);
    expect(tokenizerFor('gemini-2.5-flash').name).toBe('estimate×1.2');
  });

  it('loads nothing and counts the empty string as 0', () => {
    expect(estimateTokenizer().count('')).toBe(0);
    expect(estimateTokenizer().approximate).toBe(true);
  });

  it('rejects a factor below 1', () => {
    expect(() => estimateTokenizer({ factor: 0.5 })).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'estimateTokenizer.factor' }));
  });
});
