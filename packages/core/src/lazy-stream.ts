import type { CompletionContext } from './context.js';
import type { ChatCompletionChunk } from './schemas.js';

/**
 * The iterator `stream()` returns: runs the call on the first `next()`,
 * then passes straight through to the call's chunks.
 */
export class LazyStream implements AsyncIterableIterator<ChatCompletionChunk> {
  private inner: AsyncIterator<ChatCompletionChunk> | undefined;
  private closed = false;

  constructor(private readonly start: () => Promise<CompletionContext>) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    if (this.closed) return { done: true, value: undefined };
    if (!this.inner) {
      const ctx = await this.start();
      this.inner = (ctx.chunks ?? emptyChunks)[Symbol.asyncIterator]();
    }
    return this.inner.next() as Promise<IteratorResult<ChatCompletionChunk, undefined>>;
  }

  async return(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    this.closed = true;
    await this.inner?.return?.();
    return { done: true, value: undefined };
  }
}

const emptyChunks: AsyncIterable<ChatCompletionChunk> = { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }) };
