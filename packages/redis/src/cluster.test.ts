// The store on a real Redis Cluster (three masters of the test's own),
// over both clients' cluster modes: each record's key carries its own hash
// tag, so records spread over the nodes, and each write goes to the node
// that holds its slot, one key per script.
import { createPipeline, openAICompatible } from '@sluice/core';
import { rateLimit } from '@sluice/ratelimit';
import { mockUpstream, type MockUpstream } from '@sluice/testing';
import { Cluster } from 'ioredis';
import { createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisStore } from './redis-store.js';
import { skipRedis, startRedisCluster, type TestRedisCluster } from './test-redis-server.js';

type Closable = Parameters<typeof redisStore>[0]['client'] & { close?(): Promise<unknown>; quit?(): Promise<unknown> };

const connect: Record<string, (ports: readonly number[]) => Promise<Closable>> = {
  'node-redis': async (ports) => {
    const cluster = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${ports[0]}` }] });
    cluster.on('error', () => undefined);
    await cluster.connect();
    return cluster as never;
  },
  ioredis: async (ports) => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: ports[0] as number }]);
    cluster.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      cluster.once('ready', () => resolve());
      cluster.once('end', () => reject(new Error('the ioredis cluster client ended before it was ready')));
    });
    return cluster as never;
  },
};

describe.skipIf(skipRedis())('redisStore on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let upstream: MockUpstream;
  const opened: Closable[] = [];
  const open = async (name: string) => {
    const client = await (connect[name] as (ports: readonly number[]) => Promise<Closable>)(cluster.ports);
    opened.push(client);
    return client;
  };

  beforeAll(async () => {
    [cluster, upstream] = await Promise.all([startRedisCluster(3), mockUpstream()]);
  }, 30_000);
  afterAll(async () => {
    await Promise.all(opened.map((client) => (client.close?.() ?? client.quit?.())?.catch(() => undefined)));
    await Promise.all([cluster?.stop(), upstream?.close()]);
  });

  it.each(Object.keys(connect))('counts every update exactly over records spread across every node (%s)', async (name) => {
    const stores = [redisStore({ client: await open(name), prefix: `${name}:`, timeoutMs: 5_000 }), redisStore({ client: await open(name), prefix: `${name}:`, timeoutMs: 5_000 })];
    const before = await cluster.keysPerNode();
    const keys = Array.from({ length: 24 }, (_, index) => `tenant-${index}`);
    const results = await Promise.all(
      stores.flatMap((store) => keys.flatMap((key) => Array.from({ length: 5 }, () => store.update<number>(key, (current) => (current ?? 0) + 1, 60_000)))),
    );
    expect(results).toHaveLength(240);
    for (const key of keys) expect(await stores[1]!.get<number>(key)).toBe(10);
    // Every master holds some of the records: the hash tags spread them, and each write found its node.
    const after = await cluster.keysPerNode();
    expect(after.map((count, index) => count - (before[index] as number)).every((added) => added > 0)).toBe(true);
    await stores[0]!.syncClock();
    expect(stores[0]!.clock.uncertaintyMs).toBeLessThan(Infinity);
  });

  it.each(Object.keys(connect))('keeps one rate limit for two pipelines (%s)', async (name) => {
    const pipelines = await Promise.all(
      [1, 2].map(async () => {
        const store = redisStore({ client: await open(name), prefix: `${name}:limit:`, timeoutMs: 5_000 });
        // A long window, so every call of the test falls in one: 10 admitted in all, the rest refused at once.
        const transport = openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' });
        return createPipeline({ transport, store, clock: store.clock }).use(rateLimit({ requests: { limit: 10, windowMs: 3_600_000 }, mode: 'reject' }));
      }),
    );
    const sent = upstream.requests.length;
    const outcomes = await Promise.allSettled(pipelines.flatMap((llm) => Array.from({ length: 15 }, () => llm.complete({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }))));
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(10);
    expect(upstream.requests.length - sent).toBe(10);
    for (const outcome of outcomes) if (outcome.status === 'rejected') expect(outcome.reason).toMatchObject({ code: 'LIMIT_REJECTED' });
    await Promise.all(pipelines.map((llm) => llm.close()));
  });
});
