import { trimContext } from '@sluice/context';
import { rateLimit } from '@sluice/ratelimit';
import { retry } from '@sluice/retry';
import { memoryStore } from '@sluice/core';
import { chat, manualClock, testPipeline } from '@sluice/testing/kit';
import { describe, expect, it } from 'vitest';
import { otel } from './otel.js';
import { providersOf, type TestSdk, useTestSdk } from './test-sdk.js';

let sdk: TestSdk;
useTestSdk((made) => (sdk = made));

const providers = () => providersOf(sdk);

describe('otel with @sluice/ratelimit and @sluice/context', () => {
  it('records a limiter wait on the attempt that waited, and the time waited', async () => {
    const telemetry = otel(providers());
    const { llm, clock } = await testPipeline({
      middleware: [telemetry, retry({ random: () => 0.5 }), telemetry.attempt, rateLimit({ rpm: 1 })],
    });
    await clock.run(llm.complete(chat('first')));
    await clock.run(llm.complete(chat('second')));

    const [, second] = sdk.spans().filter((span) => span.name === 'sluice.attempt');
    expect(second?.events.map((event) => event.name)).toEqual(['sluice.limit-wait']);
    expect(second?.events[0]?.attributes).toMatchObject({ limit: 'requests', wait_ms: 60_000, queued: 1, key: 'global' });
    const waits = await sdk.histogram('sluice.limit.wait.duration');
    expect(waits).toHaveLength(1);
    expect(waits[0]?.value.count).toBe(2);
    expect(waits[0]?.value.sum).toBe(60);
  });

  it('counts the records the pipeline\'s memory store evicted before they ran out', async () => {
    const clock = manualClock();
    const store = memoryStore({ clock, maxEntries: 2 });
    const { llm } = await testPipeline({ clock, store, middleware: [otel(providers()), rateLimit({ rpm: 100, key: { tag: 'tenant' } })] });
    for (const tenant of ['a', 'b', 'c', 'd', 'e']) await clock.run(llm.complete(chat('hi'), { tags: { tenant } }));
    expect(store.evicted).toBe(3);
    const points = await sdk.points('sluice.store.evicted');
    expect(points.map((point) => point.value)).toEqual([3]);
    // A store without the count (a shared one) is not watched.
    const other = await testPipeline({ middleware: [otel(providers()), rateLimit({ rpm: 100 })] });
    await other.clock.run(other.llm.complete(chat('hi')));
    expect((await sdk.points('sluice.store.evicted')).map((point) => point.value)).toEqual([3]);
  });

  it('records a trim on the call span', async () => {
    const { llm, clock } = await testPipeline({ middleware: [otel(providers()), trimContext({ maxTokens: 40 })] });
    const old = Array.from({ length: 10 }, (_, index) => ({ role: 'user' as const, content: `message number ${index} with some words in it` }));
    await clock.run(llm.complete({ model: 'gpt-4.1', messages: [{ role: 'system', content: 'Be brief.' }, ...old] }));

    const span = sdk.span('chat gpt-4.1');
    expect(span.events.map((event) => event.name)).toEqual(['sluice.context-trim']);
    expect(span.events[0]?.attributes).toMatchObject({ model: 'gpt-4.1', dropped: expect.any(Number), tokens_before: expect.any(Number) });
    expect(Number(span.events[0]?.attributes?.['tokens_after'])).toBeLessThanOrEqual(40);
  });
});
