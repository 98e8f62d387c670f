// A store call's timeout measures Redis, not this process: the demo's
// three processes on two cores saw store-errors (and, under the `open`
// policy, a window over its limit) from single round trips whose replies
// were late only because the process itself had not run. Here the process
// really stalls (a synchronous loop, what a cold start compiling or a
// starved CPU looks like to the event loop), so these tests run on real
// time; what they assert is a count, never a duration.
import { createPipeline, openAICompatible } from '@sluice/core';
import { rateLimit } from '@sluice/ratelimit';
import { mockUpstream, type MockUpstream } from '@sluice/testing';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisStore } from './redis-store.js';
import { skipRedis, startRedis, type TestRedis } from './test-redis-server.js';

/** Keeps this process busy for `ms`, as a long synchronous task does: no timer, no I/O runs meanwhile. */
function stall(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // spin
  }
}

// Long enough that a loaded machine's Redis answers within it; the stall is longer still.
const timeoutMs = 400;
const stallMs = 700;

describe.skipIf(skipRedis())('the store timeout, when the process itself is slow', () => {
  let redis: TestRedis;
  let upstream: MockUpstream;
  const closers: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    redis = await startRedis();
    upstream = await mockUpstream();
  });
  afterAll(async () => {
    await Promise.all(closers.map((close) => close().catch(() => undefined)));
    await upstream.close();
    await redis.stop();
  });

  const clients = {
    'node-redis': async () => {
      const client = createClient({ url: redis.url });
      client.on('error', () => undefined);
      await client.connect();
      closers.push(() => client.close());
      return client;
    },
    ioredis: async () => {
      const client = new Redis(redis.url, { lazyConnect: true });
      client.on('error', () => undefined);
      await client.connect();
      closers.push(() => client.quit());
      return client;
    },
  };

  it.each(Object.keys(clients) as Array<keyof typeof clients>)(
    'counts a write from when it goes to Redis, not from when it queued behind the process’s own work (%s)',
    async (name) => {
      const store = redisStore({ client: await clients[name](), prefix: `${name}:stall:`, timeoutMs });
      await store.syncClock();
      const written = store.update<number>('k', (current) => (current ?? 0) + 1, 60_000);
      // The rest of this turn outlasts the timeout before the write can even be sent.
      stall(stallMs);
      await expect(written).resolves.toBe(1);
    },
  );

  it('keeps one limit for many waiters in three stores through a stall, without a store error', async () => {
    const limit = 5;
    const windowMs = 500;
    const instances = await Promise.all(
      ['a', 'b', 'c'].map(async () => {
        const store = redisStore({ client: await clients['node-redis'](), prefix: 'fleet:', timeoutMs });
        await store.syncClock();
        const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }), store, clock: store.clock })
          // `open`, the default: a store error would let a call through unrecorded and could pass the limit.
          .use(rateLimit({ requests: { limit, windowMs } }));
        const storeErrors: unknown[] = [];
        llm.events.on('store-error', (event) => storeErrors.push(event.error));
        closers.push(() => llm.close());
        return { llm, storeErrors };
      }),
    );
    const before = upstream.requests.length;
    const calls = instances.flatMap(({ llm }) =>
      Array.from({ length: 6 }, (_, n) => llm.complete({ model: 'gpt-4.1', messages: [{ role: 'user', content: `call ${n}` }] })),
    );
    // Every store's first writes are queued: the process now stalls, as a cold start does.
    stall(stallMs);
    const results = await Promise.allSettled(calls);
    expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
    expect(instances.flatMap(({ storeErrors }) => storeErrors)).toEqual([]);
    // 18 calls at 5 per 500 ms: the first 5 at once, then at least 3 more windows.
    const ats = upstream.requests.slice(before).map((request) => request.at).sort((x, y) => x - y);
    expect(ats).toHaveLength(18);
    expect(ats.filter((at) => at < (ats[0] as number) + windowMs / 2).length).toBeLessThanOrEqual(limit);
  }, 30_000);
});
