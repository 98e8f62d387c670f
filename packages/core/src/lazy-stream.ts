import { Call, type LeaveWatcher } from './call.js';
import type { CompletionContext } from './context.js';
import type { ChatCompletionChunk } from './schemas.js';
import { type ReadingAware, streamReading } from './stream-end.js';

/**
 * The iterator `stream()` returns: runs the call on the first `next()`,
 * then passes straight through to the call's chunks.
 *
 * A `next()` made while another is still waiting (a consumer that asks for
 * several chunks at once, as `Promise.all` over `next()` does; `for await`
 * never does) is queued behind it, as an async generator queues them:
 * results come in order, and the call runs once. Before, each `next()`
 * made while the call was starting started a call of its own, each sent
 * its own request and all but one were left unread until the pipeline closed.
 */
export class LazyStream implements AsyncIterableIterator<ChatCompletionChunk> {
  private inner: AsyncIterator<ChatCompletionChunk> | undefined;
  private closed = false;
  /** What the last `next()` returned, and how many of them wait behind an earlier one. */
  private last: Promise<IteratorResult<ChatCompletionChunk, undefined>> | undefined;
  private queued = 0;
  /** This stream's registration with {@link dropped}, once it has one. */
  private token: DropToken | undefined = undefined;
  /** Set while each result is looked at for the stream's end (see {@link watchDrop}). */
  private endWatch: EndWatch | undefined = undefined;

  constructor(private readonly start: () => Promise<CompletionContext>) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    // Not async: once started, each chunk goes straight through, without a
    // promise and a microtask of this layer's own (two field writes, one read).
    if (this.closed) return Promise.resolve(finished());
    const { inner, last } = this;
    if (last !== undefined && (this.queued > 0 || inner === undefined || (inner as Partial<ReadingAware>)[streamReading] !== false)) {
      this.queued++;
      return (this.last = last.then(this.again, this.again));
    }
    return (this.last = inner === undefined ? this.first() : this.read(inner));
  }

  /** The next result of `inner`; watched for the end when nothing else will say the stream ended (see {@link watchDrop}). */
  private read(inner: AsyncIterator<ChatCompletionChunk>): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    const result = inner.next() as Promise<IteratorResult<ChatCompletionChunk, undefined>>;
    const watch = this.endWatch;
    return watch === undefined ? result : result.then(watch.seen, watch.failed);
  }

  /** A queued `next()`, once the one before it is answered. */
  private readonly again = (): Promise<IteratorResult<ChatCompletionChunk, undefined>> | IteratorResult<ChatCompletionChunk, undefined> => {
    this.queued--;
    if (this.closed || this.inner === undefined) return finished();
    return this.read(this.inner);
  };

  /** Starts the call; as an async generator does, a failed start rejects this `next()` and ends the iterator. */
  private first(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    return this.start().then(
      (ctx) => {
        const inner = (ctx.chunks ?? emptyChunks)[Symbol.asyncIterator]();
        this.inner = inner;
        if (!this.closed) {
          if (dropped !== undefined) this.watchDrop(ctx, inner);
          return this.read(inner);
        }
        // Returned while it started: the stream is let go (its request cancelled) as soon as it exists.
        void Promise.resolve(inner.return?.()).catch(ignore);
        return finished();
      },
      (error: unknown) => {
        this.closed = true;
        throw error;
      },
    );
  }

  /**
   * Registers the stream with the collector's safety net ({@link dropped}),
   * until it is returned or its call leaves the calls in flight (it has
   * ended: read to its end, failed, cut or cancelled), or, for a stream
   * whose call left when it was handed over, a read ends it. Kept past its end,
   * the registration's hold on `inner` kept every call's context, chunks
   * and settling state alive until the collector found this iterator and
   * ran the callback: each stream's state lived through young-generation
   * collections into the old generation (a third more heap traced at 64
   * streams in flight, and about 5 µs a call). The call holds the token,
   * never this iterator, which must stay collectable while the call runs.
   */
  private watchDrop(ctx: CompletionContext, inner: AsyncIterator<ChatCompletionChunk>): void {
    const token = new DropToken();
    this.token = token;
    (dropped as FinalizationRegistry<AsyncIterator<ChatCompletionChunk>>).register(this, inner, token);
    if (ctx instanceof Call && ctx.inFlight) {
      ctx.leaveWatcher = token;
      return;
    }
    // The call settled when its stream was handed over: a stream of a middleware's own that nothing
    // watches, that does not say when it ends (see streamEnd) and has no upstream stream open under
    // it (see Pipeline.answered). Its results are looked at instead,
    // a `then` a chunk, which costs less than holding the stream's state until the collector runs.
    const forget = () => {
      this.endWatch = undefined;
      token.left();
    };
    this.endWatch = {
      seen: (result) => {
        if (result.done) forget();
        return result;
      },
      failed: (error: unknown) => {
        forget();
        throw error;
      },
    };
  }

  async return(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    this.closed = true;
    this.endWatch = undefined;
    this.token?.left();
    await this.inner?.return?.();
    return finished();
  }
}

/** The end, as a new result each time (a consumer may keep or change what it is handed). */
const finished = (): IteratorResult<ChatCompletionChunk, undefined> => ({ done: true, value: undefined });
const ignore = () => {};

/**
 * Streams their callers let go of half-read, neither read to the end nor
 * returned (a peek at the first chunk, a loop left by a path that skips
 * `return()`): once the collector finds one, its chunks are returned for
 * it, as `break` would have, which cancels its request and releases what
 * the call held (its socket, a limiter's concurrency slot, a budget's
 * hold) instead of holding it for as long as the process runs, since a
 * consumer holding a chunk stops the idle limit. Returning a stream that
 * was read to its end does nothing. A safety net: when the collector runs
 * is not ours to say, so `break` or `return()` still says it at once.
 * (undici's fetch does the same for bodies.)
 */
const dropped = typeof FinalizationRegistry === 'function' ? new FinalizationRegistry<AsyncIterator<ChatCompletionChunk>>(letGo) : undefined;

/** How a stream that says nothing of its end is watched for it: each result looked at on its way through. */
interface EndWatch {
  seen(result: IteratorResult<ChatCompletionChunk, undefined>): IteratorResult<ChatCompletionChunk, undefined>;
  failed(error: unknown): never;
}

/** The key of a stream's registration with {@link dropped}: takes it out when its call leaves the calls in flight. */
class DropToken implements LeaveWatcher {
  left(): void {
    dropped?.unregister(this);
  }
}

/**
 * Tells a stream to stop (`return()`) without waiting for it, and whatever
 * it answers or throws is let go: an async generator's return waits behind
 * its read in progress, which may never land, and a stream whose return()
 * fails has nothing more to release; internal.
 *
 * @param iterator - the stream's iterator, if it has one yet
 */
export function letGo(iterator: AsyncIterator<unknown> | undefined): void {
  try {
    void Promise.resolve(iterator?.return?.()).catch(ignore);
  } catch {
    // A stream whose return() throws has nothing more we can let go of.
  }
}

const emptyChunks: AsyncIterable<ChatCompletionChunk> = { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }) };
