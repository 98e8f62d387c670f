/**
 * @module @sluice/cache
 *
 * An exact-match response cache for sluice pipelines: requests keyed by a
 * hash of what changes their answer, stored answers replayed as they came
 * (streams chunk for chunk), identical calls in flight collapsed into one
 * upstream request, and storage behind a small interface: an LRU bounded by
 * entries and bytes, or any core `Store` (Redis included). A cached answer
 * costs $0 and its original cost is reported as saved.
 */
export { cache, type CacheMiddleware } from './cache.js';
export { type CacheOptions, isDeterministic } from './options.js';
export { type CacheStorage, storeBackend } from './cache-storage.js';
export { lruStorage, type LruStorageOptions } from './lru-storage.js';
export type { CacheEvents, CacheHitEvent, CacheMissEvent, CacheState, CacheStatus } from './events.js';

import type { CacheEvents, CacheState } from './events.js';

declare module '@sluice/core' {
  interface SluiceEvents {
    'cache-hit': CacheEvents['cache-hit'];
    'cache-miss': CacheEvents['cache-miss'];
  }
  interface SluiceState {
    cache?: CacheState;
  }
}
