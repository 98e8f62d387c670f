import { type Middleware, openAICompatible } from '@sluice/core';
import { seededRandom } from '@sluice/testing';
import { chat } from '@sluice/testing/kit';
import { afterEach, describe, expect, it } from 'vitest';
import type { Deployment } from './options.js';
import { router } from './router.js';
import { clock, closeDeployments, pipeline, start } from './test-deployments.js';

afterEach(closeDeployments);


/** Counts each deployment's calls in flight, inside its inner pipeline, and the most it ever had. */
function concurrency() {
  const now = new Map<string, number>();
  const most = new Map<string, number>();
  const factory = (deployment: Deployment): Middleware[] => [
    async function count(_ctx, next) {
      now.set(deployment.id, (now.get(deployment.id) ?? 0) + 1);
      most.set(deployment.id, Math.max(most.get(deployment.id) ?? 0, now.get(deployment.id) ?? 0));
      try {
        await next();
      } finally {
        now.set(deployment.id, (now.get(deployment.id) ?? 0) - 1);
      }
    },
  ];
  return { factory, most };
}

describe('router: routing', () => {
  it('weighted routing lands within 3% of its weights over real HTTP', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1', weight: 1 },
      { id: 'b', model: 'gpt-4.1', weight: 2 },
      { id: 'c', model: 'gpt-4.1', weight: 7 },
    ]);
    const { llm } = pipeline({ deployments });
    // 2,000 calls keep the suite quick; the chaos run in bench/ checks 10,000.
    const results = await llm.batch(Array.from({ length: 2_000 }, (_, i) => chat(`n${i}`, { model: 'gpt-4.1' })), { concurrency: 64 });
    expect(results.filter((result) => !result.ok)).toHaveLength(0);
    for (const [id, weight] of [['a', 0.1], ['b', 0.2], ['c', 0.7]] as const) {
      const share = (mocks[id]?.requests.length ?? 0) / 2_000;
      expect(Math.abs(share - weight) / weight).toBeLessThanOrEqual(0.03);
    }
  }, 30_000);

  it('least-busy never sends a deployment more than its concurrency and spreads the rest', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1', maxConcurrency: 4, upstream: { latencyMs: 200 } },
      { id: 'b', model: 'gpt-4.1', maxConcurrency: 6, upstream: { latencyMs: 300 } },
      { id: 'c', model: 'gpt-4.1', maxConcurrency: 2, upstream: { latencyMs: 100 } },
    ]);
    const { factory, most } = concurrency();
    const { llm } = pipeline({ deployments, strategy: 'least-busy', middleware: factory });
    const calls = Array.from({ length: 60 }, (_, i) => llm.complete(chat(`n${i}`, { model: 'gpt-4.1' })));
    const results = await clock.run(Promise.allSettled(calls));
    expect(results.filter((result) => result.status === 'rejected')).toHaveLength(0);
    expect(most.get('a')).toBe(4);
    expect(most.get('b')).toBe(6);
    expect(most.get('c')).toBe(2);
    const sent = ['a', 'b', 'c'].map((id) => mocks[id]?.requests.length ?? 0);
    expect(sent.reduce((sum, n) => sum + n, 0)).toBe(60);
  });

  it('latency routing prefers the deployment with the lowest recent time to first chunk', async () => {
    const { deployments, mocks } = await start([
      { id: 'slow', model: 'gpt-4.1', upstream: { latencyMs: 400 } },
      { id: 'fast', model: 'gpt-4.1', upstream: { latencyMs: 50 } },
    ]);
    const { llm } = pipeline({ deployments, strategy: 'latency' });
    for (let i = 0; i < 12; i++) await clock.run(llm.complete(chat(`n${i}`, { model: 'gpt-4.1' })), { stepMs: 10 });
    // Each is measured once; from then on the fast one takes everything.
    expect(mocks.slow?.requests).toHaveLength(1);
    expect(mocks.fast?.requests).toHaveLength(11);
  });

  it('latency routing measures a stale deployment again, one call at a time, and starts its figure afresh', async () => {
    const { deployments, mocks } = await start([
      { id: 'slow', model: 'gpt-4.1', upstream: { latencyMs: 400 } },
      { id: 'fast', model: 'gpt-4.1', upstream: { latencyMs: 50 } },
    ]);
    const { llm } = pipeline({ deployments, strategy: 'latency', latency: { staleMs: 10_000 } });
    const call = (i: number) => llm.complete(chat(`n${i}`, { model: 'gpt-4.1' }));
    for (let i = 0; i < 6; i++) await clock.run(call(i), { stepMs: 10 });
    expect(mocks.slow?.requests).toHaveLength(1);
    // The slow one recovers; nobody knows until its figure is stale and it is measured again.
    mocks.slow?.enqueue({ kind: 'delay', latencyMs: 20 });
    await clock.advanceAsync(9_000);
    await clock.run(call(6), { stepMs: 10 });
    expect(mocks.slow?.requests).toHaveLength(1);
    await clock.advanceAsync(2_000);
    // Five calls at once: one goes to measure the stale deployment, the rest wait for nothing on it.
    await clock.run(Promise.all([7, 8, 9, 10, 11].map(call)), { stepMs: 10 });
    expect(mocks.slow?.requests).toHaveLength(2);
    expect(mocks.fast?.requests).toHaveLength(10);
    // Its new figure (20 ms) replaced the old one, not blended with it: it is the fastest now.
    mocks.slow?.enqueue({ kind: 'delay', latencyMs: 20 });
    await clock.run(call(12), { stepMs: 10 });
    expect(mocks.slow?.requests).toHaveLength(3);
  });

  it('latency routing with a buffer shares calls among the deployments near the fastest', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1', upstream: { latencyMs: 100 } },
      { id: 'b', model: 'gpt-4.1', upstream: { latencyMs: 120 } },
      { id: 'c', model: 'gpt-4.1', upstream: { latencyMs: 400 } },
    ]);
    const { llm } = pipeline({ deployments, strategy: 'latency', latency: { buffer: 0.5 }, random: seededRandom(7) });
    for (let i = 0; i < 60; i++) await clock.run(llm.complete(chat(`n${i}`, { model: 'gpt-4.1' })), { stepMs: 10 });
    expect(mocks.c?.requests).toHaveLength(1);
    expect(mocks.a?.requests.length).toBeGreaterThan(15);
    expect(mocks.b?.requests.length).toBeGreaterThan(15);
  });

  it('rejects latency options for another strategy, naming the field', () => {
    expect(() => router({ deployments: [{ id: 'a', model: 'gpt-4.1', transport: openAICompatible({ baseUrl: 'http://127.0.0.1:9', apiKey: 'sk' }) }], latency: { buffer: 0.2 } })).toThrow(/router\.latency/);
    expect(() =>
      router({ deployments: [{ id: 'a', model: 'gpt-4.1', transport: openAICompatible({ baseUrl: 'http://127.0.0.1:9', apiKey: 'sk' }) }], strategy: 'latency', latency: { staleMs: 0 } }),
    ).toThrow(/router\.latency\.staleMs/);
  });

  it('cost routing picks the cheapest deployment whose window fits', async () => {
    const { deployments, mocks } = await start([
      { id: 'gpt', model: 'gpt-4.1', group: 'chat' },
      { id: 'deepseek', model: 'deepseek-v3.2', group: 'chat' },
    ]);
    const { llm } = pipeline({ deployments, strategy: 'cost' });
    const short = await clock.run(llm.run(chat('Hi', { model: 'chat' })));
    expect(short.state.router?.deployment).toBe('deepseek');
    const long = await clock.run(llm.run(chat('lorem ipsum '.repeat(45_000), { model: 'chat' })));
    expect(long.state.router?.deployment).toBe('gpt');
    expect(mocks.deepseek?.requests).toHaveLength(1);
  });

  it('keeps one tenant on one deployment with sticky routing, and moves it when that one fails', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1' },
      { id: 'b', model: 'gpt-4.1' },
      { id: 'c', model: 'gpt-4.1' },
    ]);
    const { llm } = pipeline({ deployments, sticky: { key: { tag: 'tenant' } } });
    const seen = new Map<string, Set<string>>();
    for (let i = 0; i < 30; i++) {
      const tenant = `t${i % 3}`;
      const ctx = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' }), { tags: { tenant } }));
      seen.set(tenant, (seen.get(tenant) ?? new Set()).add(ctx.state.router?.deployment ?? '?'));
    }
    for (const deployments of seen.values()) expect(deployments.size).toBe(1);
    expect(mocks.a?.requests.length).toBeGreaterThan(0);

    const [pinned] = [...(seen.get('t0') as Set<string>)];
    mocks[pinned as string]?.enqueue({ kind: 'status', status: 503 });
    const moved = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' }), { tags: { tenant: 't0' } }));
    expect(moved.state.router?.deployment).not.toBe(pinned);
    const again = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' }), { tags: { tenant: 't0' } }));
    expect(again.state.router?.deployment).toBe(moved.state.router?.deployment);
  });
});
