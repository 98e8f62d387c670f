import { cache } from '@sluice/cache';
import { chat, testPipeline } from '@sluice/testing/kit';
import { describe, expect, it } from 'vitest';
import { otel } from './otel.js';
import { pointWith, providersOf, type TestSdk, useTestSdk } from './test-sdk.js';

let sdk: TestSdk;
useTestSdk((made) => (sdk = made));

describe('otel with @sluice/cache', () => {
  it('records a cache hit, and no tokens for it: nothing was billed', async () => {
    const { llm, clock, upstream } = await testPipeline({
      middleware: [otel(providersOf(sdk)), cache()],
      upstream: { reply: { content: 'ok', usage: { prompt_tokens: 30, completion_tokens: 5 } } },
    });
    await clock.run(llm.complete(chat('same', { temperature: 0 })));
    await clock.run(llm.complete(chat('same', { temperature: 0 })));
    expect(upstream.requests).toHaveLength(1);

    const [miss, hit] = sdk.spans();
    expect(miss?.events.map((event) => event.name)).toEqual(['sluice.cache-miss']);
    expect(miss?.attributes['gen_ai.usage.input_tokens']).toBe(30);
    expect(hit?.events.map((event) => event.name)).toEqual(['sluice.cache-hit']);
    expect(hit?.events[0]?.attributes).toMatchObject({ source: 'storage', age_ms: expect.any(Number) });
    expect(hit?.attributes['sluice.answered_by']).toBe('cache');
    expect(hit?.attributes).not.toHaveProperty('gen_ai.usage.input_tokens');

    const [hits] = await sdk.points('sluice.cache.hits');
    expect(hits?.value).toBe(1);
    const tokens = await sdk.histogram('gen_ai.client.token.usage');
    expect(pointWith(tokens, { 'gen_ai.token.type': 'input' })?.value).toMatchObject({ count: 1, sum: 30 });
  });
});
