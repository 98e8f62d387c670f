import type { Caller } from './key-queue.js';

/** What the limiter needs of an abort signal. */
interface AbortLike {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/*
 * Reading `ctx.signal` makes a real AbortSignal on first use, which costs a
 * call several microseconds; a pipeline's call carries the cheap source it
 * is made from. Core has `onAbort` / `abortReason` for this but does not
 * export them yet; until it does, this reads the same source.
 */
function sourceOf(caller: Caller): AbortLike {
  return (caller as { abortSource?: AbortLike }).abortSource ?? caller.signal;
}

/** Why the call was aborted (its caller or its deadline), or `undefined` while it runs. */
export function abortReason(caller: Caller): unknown {
  const source = sourceOf(caller);
  return source.aborted ? source.reason : undefined;
}

/** Whether the call was aborted. */
export function isAborted(caller: Caller): boolean {
  return sourceOf(caller).aborted;
}

/** Calls `listener` once when the call is aborted; returns the unsubscribe. */
export function onAbort(caller: Caller, listener: () => void): () => void {
  const source = sourceOf(caller);
  source.addEventListener('abort', listener);
  return () => source.removeEventListener('abort', listener);
}
