// Two instances (two clients, two stores, two pipelines) on one Redis,
// calling one upstream URL: an answer one instance bought, the other serves
// from the cache without a request of its own, a completion as a completion
// and a stream chunk for chunk; and Redis lets an answer go with its TTL.
import { cache, storeBackend } from '@sluice/cache';
import { createPipeline, openAICompatible } from '@sluice/core';
import { mockUpstream, type MockUpstream } from '@sluice/testing';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisStore } from './redis-store.js';
import { skipRedis, startRedis, type TestRedis } from './test-redis-server.js';

describe.skipIf(skipRedis())('a response cache shared through one Redis', () => {
  let redis: TestRedis;
  let upstream: MockUpstream;
  const closers: Array<{ close(): Promise<unknown> }> = [];

  beforeAll(async () => {
    redis = await startRedis();
    upstream = await mockUpstream({ reply: 'Locks hold water at two levels.' });
  });
  afterAll(async () => {
    await Promise.all(closers.map((closer) => closer.close().catch(() => undefined)));
    await upstream.close();
    await redis.stop();
  });

  async function client() {
    const connection = createClient({ url: redis.url });
    connection.on('error', () => undefined);
    await connection.connect();
    closers.push({ close: () => connection.quit() });
    return connection;
  }

  /** One instance of the service: its own client, store and pipeline. */
  async function instance(prefix: string, ttlMs = 60_000) {
    const store = redisStore({ client: await client(), prefix, timeoutMs: 5_000 });
    await store.syncClock();
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }), store }).use(
      cache({ storage: storeBackend(store), ttlMs, timeoutMs: 5_000 }),
    );
    const heard: string[] = [];
    llm.events.on('cache-hit', (event) => heard.push(`${event.source} ${event.stream ? 'stream' : 'completion'}`));
    llm.events.on('store-error', (event) => heard.push(`store-error ${String(event.error)}`));
    closers.push(llm);
    return { llm, heard };
  }
  const ask = (content: string) => ({ model: 'gpt-4.1', temperature: 0, messages: [{ role: 'user' as const, content }] });

  it("serves one instance's answers to another, a completion and a stream, without a request of its own", async () => {
    const a = await instance('shared:');
    const b = await instance('shared:');
    const before = upstream.requests.length;
    const bought = await a.llm.complete(ask('What does a lock do?'));
    const boughtChunks = [];
    for await (const chunk of a.llm.stream(ask('And a weir?'))) boughtChunks.push(chunk);
    expect(upstream.requests.length - before).toBe(2);

    const served = await b.llm.complete(ask('What does a lock do?'));
    const servedChunks = [];
    for await (const chunk of b.llm.stream(ask('And a weir?'))) servedChunks.push(chunk);
    expect(served).toEqual(bought);
    expect(servedChunks).toEqual(boughtChunks);
    expect(b.heard).toEqual(['storage completion', 'storage stream']);
    expect(upstream.requests.length - before).toBe(2);
    // A question nobody asked yet still goes upstream.
    await b.llm.complete(ask('And a sluice?'));
    expect(upstream.requests.length - before).toBe(3);
    expect(a.heard).toEqual([]);
  });

  it('lets an answer go with its TTL, kept by Redis', async () => {
    const a = await instance('ttl:', 1_000);
    await a.llm.complete(ask('How long is a pound lock?'));
    const inspect = await client();
    const keys = await inspect.keys('ttl:*sluice:cache:*');
    expect(keys).toHaveLength(1);
    const ttl = await inspect.pTTL(keys[0] as string);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1_000);
  });
});
