/**
 * The key of a stream's `[streamEnd](callback)` method: a stream that has
 * it says when it ends (read to its end, failed, or stopped by its reader).
 * A pipeline that hands such a stream to its caller unwatched, with nothing
 * wrapping it, still keeps the call in flight until then, so `close()`
 * gives it its grace period and then aborts it, as any call. Core's own
 * reader has it; a middleware that answers with a stream of its own (the
 * router's) gives it one too, or its streams are counted as ended when handed over.
 *
 * @example
 * ```ts
 * class MyStream implements AsyncIterableIterator<ChatCompletionChunk>, EndAware {
 *   private ended: (() => void) | undefined;
 *   [streamEnd](callback: () => void): boolean {
 *     if (this.done || this.ended) return false;
 *     this.ended = callback;
 *     return true;
 *   }
 *   // … and run `this.ended` once, however the stream ends.
 * }
 * ```
 */
export const streamEnd: unique symbol = Symbol.for('sluice.streamEnd');

/** A stream that says when it ends; see {@link streamEnd}. */
export interface EndAware {
  /**
   * Runs `callback` once when the stream ends, however it ends. False,
   * running nothing, when it has ended already or was given a callback before.
   */
  [streamEnd](callback: () => void): boolean;
}

/** Whether `stream` says when it ends. */
export function isEndAware(stream: unknown): stream is EndAware {
  return typeof (stream as Partial<EndAware> | undefined)?.[streamEnd] === 'function';
}

/**
 * The key of a stream's `[streamReading]` property: `true` while a
 * `next()` of it is under way, `false` otherwise. A stream has it when it
 * answers a `next()` asked before the last one landed itself, in order, as
 * an async generator does; `stream()`'s iterator then passes each `next()`
 * straight through, where for any other stream it chains each behind the
 * last with a `then` of its own. Core's own readers have it, and so do the
 * cache's and the router's streams. A symbol, not a property name: an
 * iterator with a `reading` field of its own, meaning something else, is
 * never taken at that word.
 *
 * @example
 * ```ts
 * class MyStream implements AsyncIterableIterator<ChatCompletionChunk>, ReadingAware {
 *   [streamReading] = false;
 *   async next() {
 *     if (this[streamReading]) return this.inflight.then(() => this.next()); // in order, itself
 *     this[streamReading] = true;
 *     // … read, then set it back to false before the result is handed over
 *   }
 * }
 * ```
 */
export const streamReading: unique symbol = Symbol.for('sluice.streamReading');

/** A stream that says whether a read of it is under way; see {@link streamReading}. */
export interface ReadingAware {
  /** True while a `next()` is under way. */
  readonly [streamReading]: boolean;
}
