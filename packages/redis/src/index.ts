/**
 * @module @sluice/redis
 *
 * core's `Store` on Redis or Valkey, so a rate limit, a circuit and a
 * budget hold across every instance of a service: `redisStore({ client })`
 * over your own node-redis or ioredis client, with a clock on Redis's time.
 */
export { redisStore, type RedisStore } from './redis-store.js';
export type { RedisStoreOptions } from './options.js';
export type { RedisClock } from './redis-clock.js';
export type { RedisClientLike, NodeRedisLike, NodeRedisClusterLike, IORedisLike } from './redis-client.js';
