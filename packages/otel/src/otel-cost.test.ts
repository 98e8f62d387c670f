import { SpanStatusCode } from '@opentelemetry/api';
import { budget, trackCost } from '@sluice/cost';
import { chat, testPipeline } from '@sluice/testing/kit';
import { describe, expect, it } from 'vitest';
import { otel } from './otel.js';
import { providersOf, type TestSdk, useTestSdk } from './test-sdk.js';

let sdk: TestSdk;
useTestSdk((made) => (sdk = made));

const providers = () => providersOf(sdk);

describe('otel with @sluice/cost', () => {
  it('records the cost trackCost settles on, although both listen for the same settlement', async () => {
    const { llm, clock } = await testPipeline({
      middleware: [otel(providers()), trackCost()],
      upstream: { reply: { content: 'ok', usage: { prompt_tokens: 1_000, completion_tokens: 100 } } },
    });
    await clock.run(llm.complete(chat()));

    const span = sdk.span('chat gpt-4.1');
    const usd = span.attributes['sluice.cost.usd'];
    expect(usd).toBeGreaterThan(0);
    expect(span.events.map((event) => event.name)).toEqual(['sluice.cost']);
    expect(span.events[0]?.attributes).toMatchObject({ model: 'gpt-4.1', usd, estimated: false, priced: true });
    const [cost] = await sdk.points('sluice.cost');
    expect(cost?.value).toBe(usd);
  });

  it('records a budget refusal as an event and the error type of the call', async () => {
    const { llm, clock, upstream } = await testPipeline({ middleware: [otel(providers()), budget({ limitUsd: 0.000_001, period: 'day' })] });
    await expect(clock.run(llm.complete(chat()))).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED' });

    const span = sdk.span('chat gpt-4.1');
    expect(span.events.map((event) => event.name)).toEqual(['sluice.budget-reject']);
    expect(span.events[0]?.attributes).toMatchObject({ action: 'reject', limit_usd: 0.000_001, period: 'day' });
    expect(span.attributes['error.type']).toBe('BUDGET_EXCEEDED');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(upstream.requests).toHaveLength(0);
  });
});
