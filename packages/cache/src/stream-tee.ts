import { AbortError, type ChatCompletionChunk, type SluiceError, type Usage } from '@sluice/core';
import { toSluiceError } from '@sluice/core/kit';

/** What a {@link StreamTee} tells its owner; internal. */
export interface TeeHooks {
  /** The upstream stream ended cleanly: every chunk, serialised as it arrived. */
  complete(chunks: readonly string[]): void;
  /** It broke, or every reader left before its end: nothing of it may be kept. */
  fail(error: SluiceError): void;
}

/**
 * One upstream stream read by several callers (the call that sent it and
 * the identical calls that joined it): each reader gets every chunk, with
 * its boundaries, from the first; the upstream is pulled at the pace of
 * the fastest reader and cancelled only when every reader has left.
 *
 * Each chunk is serialised once as it arrives: the reader that pulled it
 * gets the upstream's object, the others fresh copies, so no caller's
 * mutation reaches another caller or the stored entry; internal.
 */
export class StreamTee {
  /** The chunks so far, serialised. */
  readonly chunks: string[] = [];
  private pulling: Promise<unknown> | undefined;
  private ended = false;
  private error: SluiceError | undefined;
  private readonly iterator: AsyncIterator<ChatCompletionChunk>;

  /**
   * @param source - the upstream stream (the transport's, as the middleware inside saw it)
   * @param readers - how many readers will subscribe (the sender and the calls that joined it so far)
   * @param usage - the sender's usage, known once the stream ended
   */
  constructor(
    source: AsyncIterable<ChatCompletionChunk>,
    private readers: number,
    private readonly senderUsage: () => Usage | undefined,
    private readonly hooks: TeeHooks,
  ) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** The stream's usage, a copy for each reader that asks (once it ended). */
  usage(): Usage | undefined {
    const usage = this.senderUsage();
    return usage === undefined ? undefined : (JSON.parse(JSON.stringify(usage)) as Usage);
  }

  /** One more reader will subscribe (a call joined while the stream runs). */
  join(): void {
    this.readers++;
  }

  /**
   * A reader's own iterator over every chunk from the first.
   *
   * @param onEnd - runs once when the stream ended cleanly, before the end is reported
   */
  subscribe(onEnd: () => void): AsyncIterableIterator<ChatCompletionChunk> {
    let index = 0;
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      this.leave();
    };
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      next: async () => {
        if (left) return { done: true, value: undefined };
        let chunk: ChatCompletionChunk | undefined;
        try {
          chunk = await this.read(index);
        } catch (error) {
          leave();
          throw error;
        }
        if (chunk === undefined) {
          leave();
          onEnd();
          return { done: true, value: undefined };
        }
        index++;
        return { done: false, value: chunk };
      },
      return: async () => {
        leave();
        return { done: true, value: undefined };
      },
    };
  }

  /** The chunk at `index` (pulling it if nobody has yet), or `undefined` at the end. */
  private async read(index: number): Promise<ChatCompletionChunk | undefined> {
    for (;;) {
      if (index < this.chunks.length) return JSON.parse(this.chunks[index] as string) as ChatCompletionChunk;
      if (this.error) throw this.error;
      if (this.ended) return undefined;
      if (!this.pulling) return this.pull();
      await this.pulling;
    }
  }

  private pull(): Promise<ChatCompletionChunk | undefined> {
    const pulled = this.iterator.next().then(
      (result) => {
        this.pulling = undefined;
        if (result.done) {
          this.ended = true;
          this.hooks.complete(this.chunks);
          return undefined;
        }
        this.chunks.push(JSON.stringify(result.value));
        return result.value;
      },
      (caught: unknown) => {
        this.pulling = undefined;
        this.error = toSluiceError(caught);
        this.hooks.fail(this.error);
        throw this.error;
      },
    );
    this.pulling = pulled.catch(() => {});
    return pulled;
  }

  private leave(): void {
    if (--this.readers > 0 || this.ended || this.error) return;
    // Nobody is reading any more: the upstream request is given up, and what came of it is not kept.
    this.error = new AbortError('Every reader of the stream left before its end');
    this.hooks.fail(this.error);
    void this.iterator.return?.()?.catch?.(() => {});
  }
}
