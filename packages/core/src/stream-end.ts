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
