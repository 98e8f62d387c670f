import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { contextWindow } from '@sluice/context';
import { mockUpstream } from '@sluice/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { loadLiteLLMPrices } from './litellm-prices.js';
import { priceTable } from './price-table.js';
import { liteLLMFixture } from './test-litellm-fixture.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describe('loadLiteLLMPrices', () => {
  it('turns per-token prices into per-million prices, with cached input, cap and window', async () => {
    const { prices } = await loadLiteLLMPrices(liteLLMFixture, { checkedAt: '2026-12-01' });
    expect(prices.lookup('gpt-4.1')?.entry).toMatchObject({
      input: 1.8, output: 7.2, cachedInput: 0.45, maxOutput: 32_768, contextWindow: 1_047_576, checkedAt: '2026-12-01',
    });
    expect(prices.lookup('gemini-2.5-flash')?.entry).toMatchObject({ input: 0.3, output: 2.5, cachedInput: 0.03, maxOutput: 65_535 });
    expect(prices.lookup('deepseek-chat')?.entry).toMatchObject({ input: 0.28, output: 0.42, cachedInput: 0.028, contextWindow: 131_072 });
    expect(prices.lookup('my-litellm-only-model')?.entry).toMatchObject({ maxOutput: 4_096, contextWindow: 4_096 });
  });

  it('reads long-prompt tiers', async () => {
    const { prices } = await loadLiteLLMPrices(liteLLMFixture);
    expect(prices.lookup('claude-sonnet-4-5')?.entry.tiers).toEqual([{ abovePromptTokens: 200_000, input: 6, output: 22.5, cachedInput: 0.6 }]);
  });

  it('replaces the built-in entry of a model it prices, whatever its spelling, and keeps the others', async () => {
    const { prices } = await loadLiteLLMPrices(liteLLMFixture);
    expect(prices.lookup('claude-sonnet-4.5')?.model).toBe('claude-sonnet-4-5');
    expect(prices.entries['claude-sonnet-4.5']).toBeUndefined();
    expect(prices.lookup('gpt-4.1')?.entry.input).toBe(1.8);
    expect(prices.lookup('claude-haiku-4.5')?.entry.input).toBe(priceTable().entries['claude-haiku-4.5']?.input);
  });

  it('gives a model name without a date the undated price, and a dated snapshot its own', async () => {
    const { prices } = await loadLiteLLMPrices(liteLLMFixture);
    expect(prices.lookup('openai/gpt-4o')?.entry.input).toBe(2.5);
    expect(prices.lookup('gpt-4o-2024-05-13')?.entry.input).toBe(5);
  });

  it('skips and reports malformed chat entries, ignores sample_spec, other modes and other providers', async () => {
    const result = await loadLiteLLMPrices(liteLLMFixture);
    expect(result.skipped.map((skip) => skip.model).sort()).toEqual(
      ['broken-price-model', 'cap-over-window-model', 'negative-price-model', 'no-cap-model'],
    );
    expect(result.skipped.find((skip) => skip.model === 'broken-price-model')?.reason).toMatch(/^input_cost_per_token: /);
    expect(result.skipped.find((skip) => skip.model === 'cap-over-window-model')?.reason).toMatch(/^maxOutput: /);
    expect(result.loaded).toBe(7);
    expect(result.prices.lookup('sample_spec')).toBeUndefined();
    expect(result.prices.lookup('text-embedding-3-small')).toBeUndefined();
    expect(result.prices.lookup('azure/gpt-4.1')?.entry.input).toBe(1.8); // OpenAI's own price, not Azure's 2.2
  });

  it('loads the providers asked for, and can start from an empty table', async () => {
    const { prices, loaded } = await loadLiteLLMPrices(liteLLMFixture, {
      providers: ['azure'], into: priceTable({}, { defaults: false }),
    });
    expect(loaded).toBe(1);
    expect(prices.lookup('azure/gpt-4.1')?.entry.input).toBe(2.2);
    expect(Object.keys(prices.entries)).toEqual(['gpt-4.1']);
  });

  it('returns the windows, and registers them with @sluice/context only when asked', async () => {
    const quiet = await loadLiteLLMPrices(liteLLMFixture);
    expect(quiet.windows['deepseek-chat']).toBe(131_072);
    expect(contextWindow('my-litellm-only-model')).toBeUndefined();
    await loadLiteLLMPrices(liteLLMFixture, { registerWindows: true });
    expect(contextWindow('my-litellm-only-model')).toBe(4_096);
  });

  it('fetches the file from a URL with the global fetch, keeping credentials out of each entry', async () => {
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(liteLLMFixture)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const { port } = server.address() as AddressInfo;
    const { prices } = await loadLiteLLMPrices(`http://127.0.0.1:${port}/prices.json?token=secret-value`);
    expect(prices.lookup('gpt-4.1')?.entry.source).toBe(`http://127.0.0.1:${port}/prices.json`);
  });

  it('rejects with PRICES_UNAVAILABLE when the URL answers an error, naming no query', async () => {
    const upstream = await mockUpstream();
    closers.push(() => upstream.close());
    const loading = loadLiteLLMPrices(`${upstream.url}/prices.json?token=secret-value`);
    await expect(loading).rejects.toMatchObject({ code: 'PRICES_UNAVAILABLE', retryable: true });
    await expect(loading).rejects.not.toThrow(/secret-value/);
  });

  it('refuses a source that is not an object of entries, and bad options', async () => {
    await expect(loadLiteLLMPrices([liteLLMFixture])).rejects.toMatchObject({ code: 'VALIDATION', field: 'loadLiteLLMPrices.source' });
    await expect(loadLiteLLMPrices(liteLLMFixture, { providers: [] })).rejects.toMatchObject({ field: 'loadLiteLLMPrices.providers' });
  });
});
