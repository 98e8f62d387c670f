import type { AbortListener, AbortSource } from './abort-source.js';
import { raceAbort } from './call.js';
import { letGo } from './lazy-stream.js';
import type { ChatCompletionChunk } from './schemas.js';
import { type EndAware, streamEnd } from './stream-end.js';

type Result = IteratorResult<ChatCompletionChunk, undefined>;

const done = (): Result => ({ done: true, value: undefined });

/**
 * The stream of a transport that does not say it honours the call's abort
 * (`Transport.honoursAbort`): each read ends at the call's abort, with the
 * abort's error, whatever the transport's own read does, and the
 * transport's stream is then told to stop (`return()`), as a consumer's
 * break would. A transport that keeps the contract never gets this
 * wrapper, and its chunks pay nothing for it; internal.
 */
export class AbortBoundStream implements AsyncIterableIterator<ChatCompletionChunk>, EndAware, AbortListener {
  private iterator: AsyncIterator<ChatCompletionChunk> | undefined = undefined;
  private stopped = false;
  /** Its last result was the end or a failure (it yields nothing more). */
  private over = false;
  /** Told once when it ends (see stream-end.ts), if the pipeline asked. */
  private onEnded: (() => void) | undefined = undefined;

  /**
   * @param source - the transport's stream
   * @param call - the call's abort source
   */
  constructor(
    private readonly source: AsyncIterable<ChatCompletionChunk>,
    private readonly call: AbortSource,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<Result> {
    let read: Promise<IteratorResult<ChatCompletionChunk>>;
    try {
      read = (this.iterator ??= this.source[Symbol.asyncIterator]()).next();
    } catch (caught) {
      return Promise.reject(caught);
    }
    const result = raceAbort(this.call, read as Promise<Result>, this.stop);
    return this.onEnded === undefined ? result.then(undefined, this.failed) : result.then(this.seen, this.failed);
  }

  /**
   * Says when it ends (see stream-end.ts): read to its end, failed, stopped
   * by its consumer, or at the call's abort, after which it yields nothing
   * more whether or not anyone reads it again. So a call handed over
   * unwatched stays in flight until then, whatever the transport's own
   * stream says, and `close()` gives it its grace and then aborts it.
   */
  [streamEnd](callback: () => void): boolean {
    if (this.over || this.stopped || this.onEnded !== undefined || this.call.aborted) return false;
    this.onEnded = callback;
    this.call.listen(this);
    return true;
  }

  /** The call was aborted: the stream is over for the pipeline (a read now rejects with the abort). */
  sourceAborted(): void {
    this.ended();
  }

  private ended(): void {
    this.over = true;
    const callback = this.onEnded;
    if (callback === undefined) return;
    this.onEnded = undefined;
    this.call.unlisten(this);
    callback();
  }

  /** A result read while the pipeline waits for the end: the end is told of at once. */
  private readonly seen = (result: Result): Result => {
    if (result.done) this.ended();
    return result;
  };

  /** The consumer stops: the transport's stream is told to, and waited for as far as the call's abort. */
  return(): Promise<Result> {
    this.ended();
    const iterator = this.iterator;
    if (this.stopped || iterator === undefined || this.call.aborted) {
      this.stop();
      return Promise.resolve(done());
    }
    this.stopped = true;
    let stopping: unknown;
    try {
      stopping = iterator.return?.();
    } catch {
      return Promise.resolve(done());
    }
    return raceAbort(this.call, Promise.resolve(stopping)).then(done, done);
  }

  /** A read failed: at the call's abort, the transport's stream is told to stop. */
  private readonly failed = (error: unknown): never => {
    if (this.call.aborted) this.stop();
    this.ended();
    throw error;
  };

  /** Tells the transport's stream to stop, once; what it answers is not waited for. */
  private readonly stop = (): void => {
    if (this.stopped) return;
    this.stopped = true;
    letGo(this.iterator);
  };
}
