import type { Middleware } from '@sluice/core';
import { chat, testPipeline } from '@sluice/testing/kit';
import { describe, expect, it } from 'vitest';
import { otel } from './otel.js';
import { providersOf, type TestSdk, useTestSdk } from './test-sdk.js';

let sdk: TestSdk;
useTestSdk((made) => (sdk = made));

const providers = () => providersOf(sdk);

/** Emits, from inside the call, what another sluice package would (this package imports none of them). */
function emitting(events: Array<[string, Record<string, unknown>]>, ratelimit?: { waitedMs: number }): Middleware {
  return async function emit(ctx, next) {
    const emitter = ctx.events as unknown as { emit(name: string, payload: unknown): void };
    for (const [name, payload] of events) emitter.emit(name, { id: ctx.id, ...payload });
    if (ratelimit) (ctx.state as Record<string, unknown>)['ratelimit'] = { key: 'global', reservedTokens: 0, ...ratelimit };
    await next();
  };
}

describe('otel: events of the other packages', () => {
  it('records limiter waits, trims, costs and budget decisions as span events of their call', async () => {
    const { llm, clock } = await testPipeline({
      middleware: [
        otel(providers()),
        emitting([
          ['context-trim', { model: 'gpt-4.1', tokensBefore: 9_000, tokensAfter: 4_000, dropped: 6, budget: 4_096, summarized: false }],
          ['budget-reject', { model: 'gpt-4.1', limitUsd: 5, spentUsd: 4.99, tags: { user: 'u-1' } }],
          ['limit-wait', { key: 'global', limit: 'rpm', waitMs: 1_200, queued: 2 }],
          ['cost', { model: 'gpt-4.1', usd: 0.0125, estimated: false, priced: true, tags: {}, buckets: { input: 0.01 } }],
        ]),
      ],
    });
    await clock.run(llm.complete(chat()));

    const span = sdk.span('chat gpt-4.1');
    expect(span.events.map((event) => [event.name, event.attributes])).toEqual([
      ['sluice.context-trim', { model: 'gpt-4.1', tokens_before: 9_000, tokens_after: 4_000, dropped: 6, budget: 4_096, summarized: false }],
      ['sluice.budget-reject', { model: 'gpt-4.1', limit_usd: 5, spent_usd: 4.99 }],
      ['sluice.limit-wait', { key: 'global', limit: 'rpm', wait_ms: 1_200, queued: 2 }],
      ['sluice.cost', { model: 'gpt-4.1', usd: 0.0125, estimated: false, priced: true }],
    ]);
    expect(span.attributes['sluice.cost.usd']).toBe(0.0125);
    const [cost] = await sdk.points('sluice.cost');
    expect(cost?.value).toBe(0.0125);
  });

  it('hears the cost package under its older event names too', async () => {
    const { llm, clock } = await testPipeline({
      middleware: [otel(providers()), emitting([['budget-exceeded', { action: 'warn' }], ['anomaly', { metric: 'usd-per-request', ratio: 12 }]])],
    });
    await clock.run(llm.complete(chat()));
    expect(sdk.span('chat gpt-4.1').events.map((event) => event.name)).toEqual(['sluice.budget-exceeded', 'sluice.anomaly']);
  });

  it('records the limiter wait a call had, and cache hits', async () => {
    const { llm, clock } = await testPipeline({
      middleware: [otel(providers()), emitting([['cache-hit', { key: 'k' }]], { waitedMs: 2_500 })],
    });
    await clock.run(llm.complete(chat()));
    const [wait] = await sdk.histogram('sluice.limit.wait.duration');
    expect(wait?.value.sum).toBe(2.5);
    const [hits] = await sdk.points('sluice.cache.hits');
    expect(hits?.value).toBe(1);
  });

  it('gives each call only its own events, however many are in flight', async () => {
    const { llm, clock } = await testPipeline({
      middleware: [
        otel(providers()),
        async function tagged(ctx, next) {
          (ctx.events as unknown as { emit(name: string, payload: unknown): void }).emit('limit-wait', {
            id: ctx.id,
            key: ctx.request.model,
            limit: 'rpm',
            waitMs: 0,
            queued: 1,
          });
          await next();
        },
      ],
    });
    await clock.run(Promise.all(['a', 'b', 'c'].map((model) => llm.complete(chat('Hi', { model })))));
    for (const model of ['a', 'b', 'c']) {
      expect(sdk.span(`chat ${model}`).events.map((event) => event.attributes?.['key'])).toEqual([model]);
    }
  });

  it('listens once per pipeline, not once per call', async () => {
    const { llm, clock } = await testPipeline({ middleware: otel(providers()) });
    const before = llm.events.listenerCount('retry' as never);
    await clock.run(llm.complete(chat()));
    expect(llm.events.listenerCount('retry' as never)).toBe(before + 1);
    await clock.run(Promise.all([llm.complete(chat()), llm.complete(chat())]));
    expect(llm.events.listenerCount('retry' as never)).toBe(before + 1);
  });
});
