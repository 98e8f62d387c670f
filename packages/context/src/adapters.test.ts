import { describe, expect, it } from 'vitest';
import { countMessages } from './count-messages.js';
import { countTokens } from './count-tokens.js';
import { gptTokenizer } from './gpt-tokenizer.js';
import { paragraphs, uncutCount } from './test-reference.js';
import { tiktokenWasm } from './tiktoken-wasm.js';

describe.each([
  ['gptTokenizer', gptTokenizer],
  ['tiktokenWasm', tiktokenWasm],
])('%s', (_, adapter) => {
  it('counts ordinary text exactly as the default tokenizer does', async () => {
    for (const [model, encoding] of [['gpt-4o', 'o200k_base'], ['gpt-4', 'cl100k_base']] as const) {
      const tokenizer = await adapter(encoding);
      expect(tokenizer.name).toContain(encoding);
      for (const text of Object.values(paragraphs)) {
        expect(countTokens(text, model, { tokenizer })).toEqual(countTokens(text, model));
      }
      expect(countTokens('<|endoftext|> is plain text here', model, { tokenizer })).toEqual(countTokens('<|endoftext|> is plain text here', model));
    }
  }, 60_000);

  it('gives the cookbook prompt_tokens through countMessages', async () => {
    const tokenizer = await adapter('o200k_base');
    const messages = [
      { role: 'system' as const, content: 'You are a helpful assistant that can answer to questions about the weather.' },
      { role: 'user' as const, content: "What's the weather like in San Francisco?" },
    ];
    expect(countMessages(messages, 'gpt-4o', { tokenizer })).toEqual(countMessages(messages, 'gpt-4o'));
  }, 60_000);

  it('bounds its time on runs it cannot split, erring high and flagged', async () => {
    const tokenizer = await adapter('o200k_base');
    const long = countTokens('中'.repeat(100_000), 'gpt-4o', { tokenizer });
    expect(long.approximate).toBe(true);
    const text = 'a'.repeat(1_300);
    const counted = countTokens(text, 'gpt-4o', { tokenizer });
    expect(counted.approximate).toBe(true);
    expect(counted.tokens).toBeGreaterThanOrEqual(uncutCount(text, 'o200k_base'));
  }, 60_000);

  it('rejects an encoding it does not know', async () => {
    await expect(adapter('p50k_base' as 'o200k_base')).rejects.toMatchObject({ code: 'VALIDATION' });
  });
});
