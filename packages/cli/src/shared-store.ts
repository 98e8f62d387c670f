import { type Clock, type Store, ValidationError } from '@sluice/core';
import { redisStore } from '@sluice/redis';
import { createClient } from 'redis';
import type * as z from 'zod/mini';
import type { batchConfigSchema } from './options.js';

type StoreOption = z.output<typeof batchConfigSchema>['store'];

/** Where a command keeps its limits, budgets and circuits, and how to let go of it. */
export interface SharedStore {
  /** For `createPipeline`: the store and, with Redis, Redis's own clock (one time for every process). */
  pipeline: { store: Store; clock: Clock } | Record<string, never>;
  /** Closes the Redis connection, once the pipeline is closed. */
  close(): Promise<void>;
}

/**
 * The `store` option: Redis (node-redis, connected here) when it names one,
 * else nothing (each pipeline keeps its own memory store). The URL is read
 * from the variable `store.redis.urlEnv` names and never printed: an error
 * shows its host and port only, since a URL may carry a password.
 *
 * @param option - the configuration's `store`
 * @param env - where the URL is read from
 * @throws ValidationError naming `store.redis.urlEnv` when the variable is unset or Redis cannot be reached
 */
export async function sharedStore(option: StoreOption, env: NodeJS.ProcessEnv): Promise<SharedStore> {
  if (option === undefined) return { pipeline: {}, close: async () => {} };
  const { urlEnv, prefix } = option.redis;
  const url = env[urlEnv];
  if (url === undefined || url === '') throw new ValidationError('store.redis.urlEnv', `the environment variable ${urlEnv} is not set`);
  let where: string;
  try {
    const parsed = new URL(url);
    where = `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    throw new ValidationError('store.redis.urlEnv', `${urlEnv} does not hold a redis:// URL`);
  }
  // A Redis that is not there at start is a startup error, not a hang; once connected, the client reconnects
  // (meanwhile each middleware's onStoreError policy decides, and the store recovers when Redis does).
  let connected = false;
  const client = createClient({
    url,
    socket: { connectTimeout: 5_000, reconnectStrategy: (retries: number) => (connected ? Math.min(50 * 2 ** retries, 2_000) : new Error('not reachable')) },
  });
  client.on('error', () => {});
  try {
    await client.connect();
    connected = true;
  } catch (error) {
    throw new ValidationError('store.redis.urlEnv', `cannot reach Redis at ${where} (${(error as NodeJS.ErrnoException).code ?? 'connection failed'})`);
  }
  const store = redisStore({ client, ...(prefix === undefined ? {} : { prefix }) });
  return {
    pipeline: { store, clock: store.clock },
    async close() {
      await client.quit().catch(() => client.destroy());
    },
  };
}
