import type { Usage } from '@sluice/core';

/**
 * How the cache treated a call: `hit` (answered from storage), `shared`
 * (answered by an identical call already in flight, which sent the one
 * upstream request), `miss` (sent upstream; its answer is stored if it
 * completes), `bypass` (not cacheable: `when` said no, or tag `cache: 'off'`).
 */
export type CacheStatus = 'hit' | 'shared' | 'miss' | 'bypass';

/** What `cache` leaves in `ctx.state.cache`. */
export interface CacheState {
  status: CacheStatus;
  /** The entry's key (kind and request hash, without the namespace); absent on `bypass`. */
  key?: string;
  /** How old the answer was when served (`hit` and `shared`), in milliseconds. */
  ageMs?: number;
  /**
   * What the answer cost when it was bought (`hit` and `shared`): the usage
   * this call did not spend. Also in `ctx.usage`, so costs can be reported;
   * `ctx.state.answeredBy` is `'cache'`, so they are recorded as saved.
   */
  savedUsage?: Usage;
  /**
   * `shared` only: the call that sent the request left its stream before
   * the end (its abort, its deadline, a break) while this one read on, and
   * this call is charged for the request (`answeredBy` unset, no
   * `savedUsage`); the sender's `ctx.state.costCarriedBy` is `'cache'`.
   */
  carries?: true;
}

/** A call was answered without an upstream request (`cache-hit` event). */
export interface CacheHitEvent {
  id: string;
  key: string;
  model: string;
  stream: boolean;
  /** `storage` for a stored answer, `flight` for one shared with an identical call in flight. */
  source: 'storage' | 'flight';
  ageMs: number;
  /**
   * The usage the answer cost when it was bought, which this call saved;
   * for a stream shared in flight it is not known yet (see
   * `ctx.state.cache.savedUsage` once the stream ended).
   */
  savedUsage: Usage | undefined;
}

/** A cacheable call found no answer and goes upstream, leading any identical calls that follow (`cache-miss` event). */
export interface CacheMissEvent {
  id: string;
  key: string;
  model: string;
  stream: boolean;
}

/** The cache's events, merged into core's `SluiceEvents`. */
export interface CacheEvents {
  'cache-hit': CacheHitEvent;
  'cache-miss': CacheMissEvent;
}
