import { openAICompatible } from '@sluice/core';
import { spendLedger, trackCost } from '@sluice/cost';
import { createServer, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { type MockUpstream, mockUpstream } from '@sluice/testing';
import { chat, collect } from '@sluice/testing/kit';
import { afterEach, describe, expect, it } from 'vitest';
import { router } from './router.js';
import { clock, closeDeployments, pipeline, start, upstreams } from './test-deployments.js';

const proxies: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of proxies.splice(0)) await close();
  await closeDeployments();
});

/**
 * A TCP relay in front of a mock upstream that counts the connections
 * its clients closed: how a test sees that a cancelled request released
 * its socket (the relay then closes its own to the mock).
 */
async function relay(target: MockUpstream) {
  const { port } = new URL(target.url);
  let closed = 0;
  let open = 0;
  const server = createServer((client) => {
    open++;
    const upstream = connect(Number(port), '127.0.0.1');
    client.pipe(upstream).pipe(client);
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', () => {
      closed++;
      open--;
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxies.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    get closed() {
      return closed;
    },
    /** Connections the client holds open now. */
    get open() {
      return open;
    },
  };
}

describe('router: hedging', () => {
  it('hedges a call without a first byte after the delay, takes the first answer and cancels the slower upstream', async () => {
    const slow = await mockUpstream({ clock, latencyMs: 5_000 });
    const fast = await mockUpstream({ clock, latencyMs: 100 });
    upstreams.push(slow, fast);
    const watched = await relay(slow);
    const costs = trackCost({ ledger: spendLedger({ clock }) });
    const { llm, events } = pipeline({
      deployments: [
        { id: 'slow', model: 'gpt-4.1', transport: openAICompatible({ baseUrl: watched.url, apiKey: 'sk-test' }) },
        { id: 'fast', model: 'gpt-4.1', transport: openAICompatible({ baseUrl: fast.url, apiKey: 'sk-test' }) },
      ],
      // Equal prices: cost routing tries them in order, so the slow one goes first.
      strategy: 'cost',
      middleware: () => [costs],
      hedge: { delayMs: 500, ratio: 1 },
    });
    const ctx = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' })), { stepMs: 20 });
    expect(ctx.state.router).toMatchObject({
      deployment: 'fast',
      hedged: true,
      // The first deployment went by route and lost; the hedge answered.
      hops: [
        { deployment: 'slow', reason: 'route', outcome: 'cancelled' },
        { deployment: 'fast', reason: 'hedge', outcome: 'answered' },
      ],
    });
    expect(events.all.filter(({ name }) => name.startsWith('hedge')).map(({ name, payload }) => ({ name, ...payload }))).toMatchObject([
      { name: 'hedge', deployment: 'fast', primary: 'slow', delayMs: 500 },
      { name: 'hedge-cancel', deployment: 'slow', winner: 'fast' },
    ]);
    await clock.until(() => watched.closed >= 1 && watched.open === 0);
    expect(slow.requests).toHaveLength(1);
    // Both attempts are in the ledger under their deployments: the loser was
    // sent and may be billed its prompt, so it is costed as an estimate.
    const report = await costs.ledger.report({ by: { tag: 'deployment' }, until: clock.now() + 1 });
    const rows = Object.fromEntries(report.rows.map((row) => [row.key, row]));
    expect(Object.keys(rows).sort()).toEqual(['fast', 'slow']);
    expect(rows.fast).toMatchObject({ requests: 1, estimatedRequests: 0, outputTokens: expect.any(Number) });
    expect(rows.slow).toMatchObject({ requests: 1, estimatedRequests: 1, outputTokens: 0 });
    expect(rows.slow?.uncachedInputTokens).toBeGreaterThan(0);
    expect(rows.slow?.usd).toBeGreaterThan(0);
  });

  it('cancels the slower stream too, and the caller reads the winner to its end', async () => {
    const slow = await mockUpstream({ clock, latencyMs: 5_000 });
    const fast = await mockUpstream({ clock, latencyMs: 100 });
    upstreams.push(slow, fast);
    const watched = await relay(slow);
    const costs = trackCost({ ledger: spendLedger({ clock }) });
    const { llm } = pipeline({
      deployments: [
        { id: 'slow', model: 'gpt-4.1', transport: openAICompatible({ baseUrl: watched.url, apiKey: 'sk-test' }) },
        { id: 'fast', model: 'gpt-4.1', transport: openAICompatible({ baseUrl: fast.url, apiKey: 'sk-test' }) },
      ],
      strategy: 'cost',
      middleware: () => [costs],
      hedge: { delayMs: 300, ratio: 1 },
    });
    const chunks = await clock.run(collect(llm.stream(chat('one two three', { model: 'gpt-4.1' }))), { stepMs: 20 });
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toContain('one two three');
    await clock.until(() => watched.closed >= 1 && watched.open === 0);
    const report = await costs.ledger.report({ by: { tag: 'deployment' }, until: clock.now() + 1 });
    expect(report.rows.map(({ key, requests, estimatedRequests }) => ({ key, requests, estimatedRequests }))).toEqual(
      expect.arrayContaining([
        { key: 'fast', requests: 1, estimatedRequests: 0 },
        { key: 'slow', requests: 1, estimatedRequests: 1 },
      ]),
    );
  });

  it('costs nothing for a hedge loser cancelled before it was sent', async () => {
    const fast = await mockUpstream({ clock, latencyMs: 100 });
    const slow = await mockUpstream({ clock, latencyMs: 5_000 });
    upstreams.push(fast, slow);
    const costs = trackCost({ ledger: spendLedger({ clock }) });
    // The primary waits at its own gate past the hedge delay, then the hedge wins: it never sent a request.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const { llm } = pipeline({
      deployments: [
        { id: 'held', model: 'gpt-4.1', transport: openAICompatible({ baseUrl: slow.url, apiKey: 'sk-test' }) },
        { id: 'fast', model: 'gpt-4.1', transport: openAICompatible({ baseUrl: fast.url, apiKey: 'sk-test' }) },
      ],
      strategy: 'cost',
      middleware: (deployment) => [
        costs,
        async function held(ctx, next) {
          if (deployment.id === 'held') await Promise.race([gate, new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))]);
          await next();
        },
      ],
      hedge: { delayMs: 300, ratio: 1 },
    });
    const ctx = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' })), { stepMs: 20 });
    open();
    expect(ctx.state.router).toMatchObject({ deployment: 'fast', hops: [{ deployment: 'held', outcome: 'cancelled' }, { deployment: 'fast' }] });
    expect(slow.requests).toHaveLength(0);
    const report = await costs.ledger.report({ by: { tag: 'deployment' }, until: clock.now() + 1 });
    expect(report.rows.map((row) => row.key)).toEqual(['fast']);
  });

  it('holds hedges to the budget: at most ratio times the calls', async () => {
    const slow = await mockUpstream({ clock, latencyMs: 2_000 });
    const fast = await mockUpstream({ clock, latencyMs: 10 });
    upstreams.push(slow, fast);
    const { llm, events } = pipeline({
      deployments: [
        { id: 'slow', model: 'gpt-4.1', transport: openAICompatible({ baseUrl: slow.url, apiKey: 'sk-test' }) },
        { id: 'fast', model: 'gpt-4.1', transport: openAICompatible({ baseUrl: fast.url, apiKey: 'sk-test' }) },
      ],
      strategy: 'cost',
      hedge: { delayMs: 100, ratio: 0.1 },
    });
    const calls = Array.from({ length: 40 }, (_, i) => llm.complete(chat(`n${i}`, { model: 'gpt-4.1' })));
    const results = await clock.run(Promise.allSettled(calls), { stepMs: 20 });
    expect(results.every((result) => result.status === 'fulfilled')).toBe(true);
    expect(events.names().filter((name) => name === 'hedge')).toHaveLength(4);
    expect(events.names().filter((name) => name === 'hedge-skip')).toHaveLength(36);
    expect(fast.requests).toHaveLength(4);
  });

  it('falls back at once when the primary fails before the hedge delay', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1' },
      { id: 'b', model: 'gpt-4.1' },
    ]);
    const { llm, events } = pipeline({ deployments, strategy: 'cost', hedge: { delayMs: 1_000, ratio: 1 } });
    mocks.a?.enqueue({ kind: 'status', status: 503 });
    const ctx = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' })));
    expect(ctx.state.router).toMatchObject({ deployment: 'b', hedged: false });
    expect(events.names()).not.toContain('hedge');
  });

  it('waits the percentile of recent times to first chunk once it has samples', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1', upstream: { latencyMs: 100 } },
      { id: 'b', model: 'gpt-4.1', upstream: { latencyMs: 100 } },
    ]);
    const { llm, events } = pipeline({ deployments, strategy: 'cost', hedge: { delayMs: 5_000, percentile: 0.9, minMs: 50, ratio: 1 } });
    for (let i = 0; i < 20; i++) await clock.run(llm.complete(chat(`n${i}`, { model: 'gpt-4.1' })), { stepMs: 25 });
    expect(events.names()).not.toContain('hedge');
    mocks.a?.enqueue({ kind: 'delay', latencyMs: 3_000 });
    const ctx = await clock.run(llm.run(chat('late', { model: 'gpt-4.1' })), { stepMs: 25 });
    expect(ctx.state.router?.deployment).toBe('b');
    const hedge = events.all.find(({ name }) => name === 'hedge')?.payload as { delayMs: number };
    expect(hedge.delayMs).toBeGreaterThanOrEqual(100);
    expect(hedge.delayMs).toBeLessThan(300);
  });

  it('falls back down the chain when both the primary and its hedge fail', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1', upstream: { latencyMs: 1_000 } },
      { id: 'b', model: 'gpt-4.1', upstream: { latencyMs: 1_000 } },
      { id: 'c', model: 'deepseek-v3.2' },
    ]);
    const { llm } = pipeline({ deployments, strategy: 'cost', fallbacks: { 'gpt-4.1': ['deepseek-v3.2'] }, hedge: { delayMs: 200, ratio: 1 } });
    mocks.a?.enqueue({ kind: 'status', status: 503 });
    mocks.b?.enqueue({ kind: 'status', status: 502 });
    const ctx = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' })), { stepMs: 20 });
    expect(ctx.state.router).toMatchObject({
      deployment: 'c',
      hedged: true,
      hops: [
        { deployment: 'b', reason: 'hedge', outcome: 'failed' },
        { deployment: 'a', reason: 'route', outcome: 'failed', code: 'SERVER_ERROR' },
        { deployment: 'c', reason: 'fallback', outcome: 'answered' },
      ],
    });
  });

  it('reports a primary that failed after the hedge went as failed, not cancelled, and the hedge answers', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1', upstream: { latencyMs: 300 } },
      { id: 'b', model: 'gpt-4.1', upstream: { latencyMs: 500 } },
    ]);
    const { llm, events } = pipeline({ deployments, strategy: 'cost', hedge: { delayMs: 200, ratio: 1 } });
    mocks.a?.enqueue({ kind: 'status', status: 503 });
    const ctx = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' })), { stepMs: 20 });
    expect(ctx.state.router).toMatchObject({
      deployment: 'b',
      hedged: true,
      hops: [
        { deployment: 'a', reason: 'route', outcome: 'failed', code: 'SERVER_ERROR' },
        { deployment: 'b', reason: 'hedge', outcome: 'answered' },
      ],
    });
    expect(events.names()).not.toContain('hedge-cancel');
    expect(events.all.filter(({ name }) => name === 'route-fallback').map(({ payload }) => payload)).toMatchObject([{ deployment: 'a', code: 'SERVER_ERROR' }]);
  });

  it('cools a hedge that was rate limited, so the next hedge does not go there', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1', upstream: { latencyMs: 1_000 } },
      { id: 'b', model: 'gpt-4.1' },
    ]);
    const { llm, events } = pipeline({ deployments, strategy: 'cost', hedge: { delayMs: 200, ratio: 1 }, cooldownMs: 10_000 });
    // A 429 without Retry-After: the deployment still said to slow down.
    mocks.b?.enqueue({ kind: 'status', status: 429 });
    const ctx = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' })), { stepMs: 20 });
    expect(ctx.state.router).toMatchObject({
      deployment: 'a',
      hops: [
        { deployment: 'b', reason: 'hedge', outcome: 'failed', code: 'RATE_LIMITED' },
        { deployment: 'a', reason: 'route', outcome: 'answered' },
      ],
    });
    await clock.run(llm.run(chat('again', { model: 'gpt-4.1' })), { stepMs: 20 });
    expect(mocks.b?.requests).toHaveLength(1);
    expect(events.all.filter(({ name }) => name === 'hedge-skip').map(({ payload }) => payload)).toMatchObject([{ reason: 'no-deployment' }]);
  });

  it('sends no hedge past maxHops', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1', upstream: { latencyMs: 1_000 } },
      { id: 'b', model: 'gpt-4.1' },
    ]);
    const { llm, events } = pipeline({ deployments, strategy: 'cost', maxHops: 1, hedge: { delayMs: 200, ratio: 1 } });
    const ctx = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' })), { stepMs: 20 });
    expect(ctx.state.router).toMatchObject({ deployment: 'a', hedged: false });
    expect(mocks.b?.requests).toHaveLength(0);
    expect(events.all.filter(({ name }) => name === 'hedge-skip').map(({ payload }) => payload)).toMatchObject([{ reason: 'hop-limit' }]);
  });
});
