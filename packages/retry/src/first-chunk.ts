import { type EndAware, isEndAware, type ReadingAware, streamEnd, streamReading } from '@sluice/core/kit';

/**
 * Reads the first item of `source` and returns an iterable that yields
 * it and then the rest of the same iterator; internal.
 *
 * Why: a stream call's `next()` resolves at the response headers, but
 * many failures (an SSE error event, a reset or cut before any chunk)
 * only show when the first chunk is read. Reading it here, inside the
 * retry loop, lets those be retried while nothing has reached the caller.
 * An error while reading it closes the iterator (so the upstream request
 * is dropped) and is rethrown for the retry loop to judge.
 *
 * @param source - the stream's chunks (`ctx.chunks`)
 * @returns the same stream, unread
 * @throws whatever reading the first chunk threw
 * @example
 * ```ts
 * await next();
 * ctx.chunks = await withFirstChunk(ctx.chunks);
 * ```
 */
export async function withFirstChunk<T>(source: AsyncIterable<T>): Promise<AsyncIterable<T>> {
  const iterator = source[Symbol.asyncIterator]();
  let first: IteratorResult<T>;
  try {
    first = await iterator.next();
  } catch (error) {
    await close(iterator);
    throw error;
  }
  return prepend(first, iterator);
}

/**
 * `first`, then the rest of `rest`. Written as a plain iterator rather
 * than an async generator because a generator that has not started
 * ignores `return()` (its `finally` never runs), and a consumer that
 * stops early must always cancel the upstream request.
 *
 * It ends when `rest` does, so it says when it ends if `rest` does (core's
 * `streamEnd`: a call handed over unwatched then stays in flight until its
 * stream ends, and `close()` can stop it); and it says whether a read is
 * under way as `rest` does once the first chunk is delivered (core's
 * `streamReading`).
 */
function prepend<T>(first: IteratorResult<T>, rest: AsyncIterator<T>): AsyncIterableIterator<T> & EndAware & ReadingAware {
  let delivered = false;
  let finished = first.done === true;
  const done = (): IteratorResult<T> => ({ done: true, value: undefined });
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    [streamEnd](callback: () => void): boolean {
      return isEndAware(rest) && rest[streamEnd](callback);
    },
    // Until the first chunk is delivered a next() is answered at once; after it, each is rest's.
    get [streamReading](): boolean {
      return delivered && !finished && (rest as Partial<ReadingAware>)[streamReading] !== false;
    },
    next() {
      if (finished) return Promise.resolve(done());
      if (!delivered) {
        delivered = true;
        return Promise.resolve(first);
      }
      // Every later chunk goes straight through, without a promise and an
      // await of this layer's own: the source ends and fails on its own.
      try {
        return rest.next();
      } catch (error) {
        return Promise.reject(error);
      }
    },
    async return() {
      if (!finished) {
        finished = true;
        await rest.return?.();
      }
      return done();
    },
  };
}

async function close(iterator: AsyncIterator<unknown>): Promise<void> {
  try {
    await iterator.return?.();
  } catch {
    // The read already failed; that error is the one worth reporting.
  }
}
