// Two instances (two clients, two stores, two pipelines) on one Redis, in
// one process: what one spent, the other's budget and ledger see, also an
// instance started afterwards (a restart); a circuit one opened, the other
// finds open.
import { createPipeline, openAICompatible } from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { budget, spendLedger, trackCost } from '@sluice/cost';
import { mockUpstream, type MockUpstream } from '@sluice/testing';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisStore } from './redis-store.js';
import { skipRedis, startRedis, type TestRedis } from './test-redis-server.js';

describe.skipIf(skipRedis())('instances sharing one Redis', () => {
  let redis: TestRedis;
  let upstream: MockUpstream;
  const clients: Array<{ close(): Promise<unknown> }> = [];

  beforeAll(async () => {
    redis = await startRedis();
    upstream = await mockUpstream({ reply: { content: 'ok', usage: { prompt_tokens: 1_000, completion_tokens: 1_000 } } });
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
    await upstream.close();
    await redis.stop();
  });

  /** One instance of the service: its own client, store and pipeline. */
  async function instance(prefix: string, policy: 'open' | 'closed' = 'open') {
    const client = createClient({ url: redis.url });
    client.on('error', () => undefined);
    await client.connect();
    clients.push(client);
    const store = redisStore({ client, prefix, timeoutMs: 5_000 });
    // Connected, clock measured and script loaded before the first call, as a service is once it has started.
    await store.syncClock();
    const costs = trackCost({ ledger: spendLedger({ store }) });
    // Redis's time, with every timer 20 times longer: the middleware's 50 ms store timeout must not fire
    // on a loaded test machine, as this test is about shared state (timeouts have their own tests).
    const clock = { now: () => store.clock.now(), setTimeout: (run: () => void, ms: number) => store.clock.setTimeout(run, ms * 20), clearTimeout: store.clock.clearTimeout };
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }), store, clock })
      .use(costs)
      // gpt-4.1 at $2/$8 per million: each call costs $0.01, reserves its worst case of 1,000 output tokens.
      .use(budget({ limitUsd: 0.03, period: 'day' }))
      .use(breaker({ failures: 3, openMs: 60_000, key: 'global', onStoreError: policy }));
    const storeErrors: unknown[] = [];
    llm.events.on('store-error', (event) => storeErrors.push(event.error));
    return { llm, costs, storeErrors };
  }
  const ask = { model: 'gpt-4.1', messages: [{ role: 'user' as const, content: 'hi' }], max_tokens: 1_000 };

  it('shares one budget and one ledger, across instances and restarts', async () => {
    const a = await instance('budget:');
    const b = await instance('budget:');
    await a.llm.complete(ask);
    await b.llm.complete(ask);
    await a.llm.complete(ask);
    // $0.03 spent between them: neither may spend more.
    await expect(b.llm.complete(ask)).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED' });
    await expect(a.llm.complete(ask)).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED' });
    // An instance started afterwards, that has made no call, reads the whole fleet's spend.
    const later = await instance('budget:');
    const report = await later.costs.ledger.report({ by: 'total' });
    expect(report.requests).toBe(3);
    expect(report.usd).toBeCloseTo(0.03, 10);
    await expect(later.llm.complete(ask)).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED' });
    expect([...a.storeErrors, ...b.storeErrors, ...later.storeErrors]).toEqual([]);
  });

  // The breaker admits calls to a circuit it knows only closed without reading the store (one store
  // call a call, see breaker's circuit-views.ts): with its default policy an instance learns that
  // another opened the circuit from its own next result, so each other instance sends at most one
  // more call. With onStoreError 'closed' it reads the store at every admission and sends none.
  it.each([
    ['open', 1],
    ['closed', 0],
  ] as const)('opens one circuit for every instance on failures counted across them (onStoreError %s: %i more call per other instance)', async (policy, extra) => {
    const a = await instance(`circuit-${policy}:`, policy);
    const b = await instance(`circuit-${policy}:`, policy);
    upstream.reset();
    upstream.enqueue(...Array.from({ length: 5 }, () => ({ kind: 'status' as const, status: 503 })));
    await expect(a.llm.complete(ask)).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    await expect(b.llm.complete(ask)).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    await expect(a.llm.complete(ask)).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    // The third failure, two on a and one on b, opened the one circuit.
    for (let n = 0; n < 3; n++) await Promise.allSettled([a.llm.complete(ask), b.llm.complete(ask)]);
    await expect(b.llm.complete(ask)).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    await expect(a.llm.complete(ask)).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    expect(upstream.requests.length).toBe(3 + extra);
    expect([...a.storeErrors, ...b.storeErrors]).toEqual([]);
  });
});
