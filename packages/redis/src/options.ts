import { parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';
import type { RedisClientLike } from './redis-client.js';

/** Options of {@link redisStore}. */
export interface RedisStoreOptions {
  /**
   * Your connected client: node-redis v5 (`createClient()`) or ioredis v5
   * (`new Redis()`). The store never connects, quits or reconnects it:
   * reconnection is the client's job, and the store recovers when it does.
   */
  client: RedisClientLike;
  /**
   * Put before every key (default `''`), to share one Redis between
   * applications: `'myapp:'` gives `myapp:{sluice:ratelimit:global}`.
   * No braces: the record's own name is the key's hash tag.
   */
  prefix?: string;
  /**
   * Longest Redis may take to answer a write, retries on conflict included,
   * before the call fails with `STORE_UNAVAILABLE` (default 50). Counted
   * from when the write goes to Redis, not from when it queued behind this
   * process's own work, and a stall of this process itself (a long task, a
   * starved CPU) is given back once: the timeout measures Redis, not the
   * caller. A client that queues commands while disconnected would
   * otherwise hold a call until Redis came back.
   */
  timeoutMs?: number;
  /** Most records whose last value the process remembers, for one-round-trip updates (default 10 000). */
  maxEntries?: number;
}

const schema = z.strictObject({
  client: z.custom<RedisClientLike>((value) => typeof value === 'object' && value !== null, 'must be a node-redis or ioredis client'),
  prefix: z.optional(z.string().check(z.regex(/^[^{}]*$/, 'must not contain { or }'))),
  timeoutMs: z.optional(z.number().check(z.positive(), z.maximum(60_000))),
  maxEntries: z.optional(z.number().check(z.int(), z.positive())),
});

/** The options with defaults. */
export type ResolvedRedisStoreOptions = Required<RedisStoreOptions>;

/**
 * Validates and completes {@link RedisStoreOptions}.
 *
 * @param options - the user's options
 * @throws ValidationError naming the field (`redisStore.prefix`)
 */
export function resolveOptions(options: RedisStoreOptions): ResolvedRedisStoreOptions {
  const parsed = parseOptions(schema, options, 'redisStore');
  return { prefix: '', timeoutMs: 50, maxEntries: 10_000, ...parsed, client: options.client };
}
