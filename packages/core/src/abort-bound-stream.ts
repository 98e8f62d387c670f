import type { AbortSource } from './abort-source.js';
import { raceAbort } from './call.js';
import { letGo } from './lazy-stream.js';
import type { ChatCompletionChunk } from './schemas.js';

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
export class AbortBoundStream implements AsyncIterableIterator<ChatCompletionChunk> {
  private iterator: AsyncIterator<ChatCompletionChunk> | undefined = undefined;
  private stopped = false;

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
    return raceAbort(this.call, read as Promise<Result>, this.stop).then(undefined, this.failed);
  }

  /** The consumer stops: the transport's stream is told to, and waited for as far as the call's abort. */
  return(): Promise<Result> {
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
    throw error;
  };

  /** Tells the transport's stream to stop, once; what it answers is not waited for. */
  private readonly stop = (): void => {
    if (this.stopped) return;
    this.stopped = true;
    letGo(this.iterator);
  };
}
