import { describe, expect, it } from 'vitest';
import { contextWindow } from '@sluice/context';
import { priceTable } from './price-table.js';

describe('priceTable', () => {
  it('ships the original four models and the common ones around them, each with a source and a date', () => {
    const { entries } = priceTable();
    for (const model of ['gpt-4.1', 'claude-sonnet-4.5', 'gemini-2.5-flash', 'deepseek-v3.2', 'gpt-4o', 'gpt-4o-mini', 'gpt-4.1-mini', 'gpt-4.1-nano', 'gpt-5', 'gpt-5-mini', 'o3', 'o4-mini', 'claude-opus-4.1', 'claude-opus-4.5', 'claude-haiku-4.5', 'gemini-2.5-pro', 'deepseek-chat', 'deepseek-reasoner']) {
      expect(entries[model], model).toBeDefined();
    }
    for (const [model, entry] of Object.entries(entries)) {
      expect(entry.source, model).toMatch(/^https:\/\//);
      expect(entry.checkedAt, model).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(typeof entry.verified, model).toBe('boolean');
    }
  });

  it('cites the provider\'s own pricing page for every built-in price', () => {
    const providers = ['developers.openai.com', 'platform.claude.com', 'ai.google.dev', 'api-docs.deepseek.com'];
    for (const [model, entry] of Object.entries(priceTable().entries)) {
      expect(providers, model).toContain(new URL(entry.source ?? '').host);
      if (entry.confirmedBy !== undefined) expect(entry.confirmedBy, model).toMatch(/^https:\/\//);
      if (entry.verified === false) expect(entry.note, model).toMatch(/unconfirmed/);
    }
  });

  it('takes windows from the one shared table, unless an entry gives its own', () => {
    const prices = priceTable({ 'my-finetune': { input: 1, output: 1, contextWindow: 32_768, maxOutput: 4_096 } });
    expect(prices.entries['gpt-4.1']?.contextWindow).toBeUndefined();
    expect(prices.contextWindow('openai/gpt-4.1-2025-04-14')).toBe(contextWindow('gpt-4.1'));
    expect(prices.contextWindow('claude-sonnet-4.5')).toBe(200_000);
    expect(prices.contextWindow('my-finetune')).toBe(32_768);
    expect(prices.contextWindow('nobody-knows-this-model')).toBeUndefined();
  });

  it('has gpt-4.1 at $2 input, $0.50 cached input and $8 output, and gemini-2.5-flash at the current $0.30/$2.50', () => {
    const { entries } = priceTable();
    expect(entries['gpt-4.1']).toMatchObject({ input: 2, cachedInput: 0.5, output: 8 });
    expect(entries['claude-sonnet-4.5']).toMatchObject({ input: 3, output: 15 });
    expect(entries['gemini-2.5-flash']).toMatchObject({ input: 0.3, output: 2.5 });
    expect(entries['deepseek-v3.2']).toMatchObject({ input: 0.28, cachedInput: 0.028, output: 0.42 });
  });

  it('matches dated snapshots and provider prefixes to the base model', () => {
    const prices = priceTable();
    expect(prices.lookup('gpt-4.1-2025-04-14')?.model).toBe('gpt-4.1');
    expect(prices.lookup('openai/gpt-4.1')?.model).toBe('gpt-4.1');
    expect(prices.lookup('openai/gpt-4.1-mini-2025-04-14')?.model).toBe('gpt-4.1-mini');
    expect(prices.lookup('claude-sonnet-4-5-20250929')?.model).toBe('claude-sonnet-4.5');
    expect(prices.lookup('anthropic/claude-sonnet-4.5')?.model).toBe('claude-sonnet-4.5');
    expect(prices.lookup('models/gemini-2.5-flash')?.model).toBe('gemini-2.5-flash');
    expect(prices.lookup('gpt-4o-2024-08-06')?.model).toBe('gpt-4o');
    expect(prices.lookup('GPT-4.1')?.model).toBe('gpt-4.1');
  });

  it('never prices one model as another that shares its prefix', () => {
    const prices = priceTable();
    expect(prices.lookup('gpt-4.1-mini')?.model).toBe('gpt-4.1-mini');
    expect(prices.lookup('gpt-4.1-turbo')).toBeUndefined();
    expect(prices.lookup('gpt-4')).toBeUndefined();
    expect(prices.lookup('deepseek/deepseek-v3.2:free')).toBeUndefined();
    expect(prices.lookup('toString')).toBeUndefined();
  });

  it('adds and overrides entries, keeping the defaults', () => {
    const base = priceTable();
    const prices = priceTable({
      'my-finetune': { input: 3, output: 12, contextWindow: 128_000, maxOutput: 16_384, source: 'contract' },
      'gpt-4.1': { ...base.entries['gpt-4.1']!, input: 1.6 },
    });
    expect(prices.lookup('my-finetune')?.entry.output).toBe(12);
    expect(prices.lookup('openai/gpt-4.1-2025-04-14')?.entry.input).toBe(1.6);
    expect(prices.lookup('gpt-4o')?.entry.input).toBe(2.5);
    expect(base.entries['gpt-4.1']?.input).toBe(2);
  });

  it('extends with withPrices into a new table, and can start empty', () => {
    const empty = priceTable({}, { defaults: false });
    expect(empty.lookup('gpt-4.1')).toBeUndefined();
    const local = empty.withPrices({ llama: { input: 0, output: 0, contextWindow: 8_192, maxOutput: 2_048, aliases: ['llama3.1:8b'] } });
    expect(local.lookup('llama3.1:8b')?.model).toBe('llama');
    expect(empty.lookup('llama')).toBeUndefined();
  });

  it('names the bad field when an entry is invalid', () => {
    const entry = { input: 1, output: 2, contextWindow: 1_000, maxOutput: 100 };
    expect(() => priceTable({ m: { ...entry, output: -1 } })).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'priceTable.m.output' }));
    expect(() => priceTable({ m: { ...entry, maxOutput: 2_000 } })).toThrow(expect.objectContaining({ field: 'priceTable.m.maxOutput' }));
    expect(() => priceTable({ m: { ...entry, checkedAt: 'last week' } })).toThrow(expect.objectContaining({ field: 'priceTable.m.checkedAt' }));
    expect(() => priceTable({ m: { ...entry, tiers: [{ abovePromptTokens: 0, input: 1, output: 2 }] } })).toThrow(
      expect.objectContaining({ field: 'priceTable.m.tiers.0.abovePromptTokens' }),
    );
    // @ts-expect-error a missing required price
    expect(() => priceTable({ m: { input: 1, contextWindow: 1_000, maxOutput: 100 } })).toThrow(expect.objectContaining({ field: 'priceTable.m.output' }));
    // A missing field says what it is for, not only that a number was expected.
    // @ts-expect-error a missing output cap
    expect(() => priceTable({ m: { input: 1, output: 2 } })).toThrow(/priceTable\.m\.maxOutput: required: the most output tokens one call can produce/);
    // @ts-expect-error a missing price
    expect(() => priceTable({ m: { output: 2, maxOutput: 100 } })).toThrow('priceTable.m.input: required: USD per million tokens');
    // @ts-expect-error a misspelt field is refused, not ignored
    expect(() => priceTable({ m: { ...entry, ouput: 3 } })).toThrow(/priceTable\.m\.ouput: is not an option; did you mean output\?/);
  });
});
