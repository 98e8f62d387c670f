import type { AbortListener, AbortSource } from './abort-source.js';

/** Parts queued unread before undici is told to stop reading the socket. */
const highWaterMark = 16;

/** An answer's status and headers, as undici parsed them. */
export interface AnswerHead {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

/** Told once, by {@link UndiciAnswer}, of the answer's head or of the failure that came first. */
export interface AnswerHeadListener {
  answerHeaded(head: AnswerHead): void;
  answerFailed(error: unknown): void;
}

/**
 * One request's answer, read through undici's `dispatch` handler interface
 * instead of `request()`: no `Readable` per answer, no abort listener on a
 * signal and no async iterator over a stream, which together were the
 * transport's largest cost over a bare `request()` on every call. The body
 * is an async iterator of its own (with backpressure: undici stops reading
 * the socket while parts wait unread) or, for a body of declared length,
 * read whole by {@link text}.
 *
 * The attempt's abort source ends it: before the headers the request is
 * abandoned, after them the socket is destroyed rather than returned
 * half-read to the pool, and so does a consumer that stops iterating early.
 */
export class UndiciAnswer implements AsyncIterableIterator<Uint8Array>, AbortListener {
  private abortRequest: ((reason: Error) => void) | undefined;
  private resumeReading: (() => void) | undefined;
  private paused = false;
  private headed = false;
  private ended = false;
  private failure: { error: unknown } | undefined;
  private parts: Uint8Array[] = [];
  private size = 0;
  /** A `next()` waiting for a part, or `text()` waiting for the end. */
  private waiter: { resolve(value: IteratorResult<Uint8Array, undefined> | string): void; reject(error: unknown): void } | undefined;
  private whole: ((parts: Uint8Array[], size: number) => string) | undefined;

  /**
   * @param source - the attempt's abort source
   * @param parseHeaders - undici's own parser of raw header lines
   * @param listener - told of the head, or of the error that came before it
   */
  constructor(
    private readonly source: AbortSource,
    private readonly parseHeaders: (raw: Buffer[]) => Record<string, string | string[] | undefined>,
    private readonly listener: AnswerHeadListener,
  ) {
    // The answer itself listens (no closure of its own to hold while the call waits).
    source.listen(this);
  }

  /** The attempt was aborted. */
  sourceAborted(): void {
    this.abort(this.source.reason);
  }

  // undici's handler interface (the one `request()` itself implements).

  onConnect(abort: (reason: Error) => void): void {
    if (this.source.aborted) abort(this.source.reason as Error);
    else this.abortRequest = abort;
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    // 1xx (100-continue, 103 early hints) precede the answer.
    if (status < 200) return true;
    this.headed = true;
    this.resumeReading = resume;
    this.listener.answerHeaded({ status, headers: this.parseHeaders(raw) });
    return true;
  }

  onData(part: Uint8Array): boolean {
    const waiter = this.waiter;
    if (waiter && this.whole === undefined) {
      this.waiter = undefined;
      waiter.resolve({ done: false, value: part });
      return true;
    }
    this.parts.push(part);
    this.size += part.length;
    // A whole-body read has its length bounded already; only an iteration needs the brake.
    if (this.whole === undefined && this.parts.length >= highWaterMark) this.paused = true;
    return !this.paused;
  }

  onComplete(): void {
    this.ended = true;
    this.source.unlisten(this);
    const waiter = this.waiter;
    if (!waiter) return;
    this.waiter = undefined;
    if (this.whole) waiter.resolve(this.whole(this.parts, this.size));
    else waiter.resolve({ done: true, value: undefined });
  }

  onError(error: Error): void {
    this.failure = { error };
    this.source.unlisten(this);
    if (!this.headed) {
      this.headed = true;
      this.listener.answerFailed(error);
      return;
    }
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(error);
  }

  // The body.

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Uint8Array, undefined>> {
    const part = this.parts.shift();
    if (part !== undefined) {
      this.size -= part.length;
      if (this.paused && this.parts.length < highWaterMark / 2) this.resume();
      return Promise.resolve({ done: false, value: part });
    }
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.ended) return Promise.resolve({ done: true, value: undefined });
    if (this.paused) this.resume();
    return new Promise((resolve, reject) => {
      this.waiter = { resolve: resolve as (value: IteratorResult<Uint8Array, undefined> | string) => void, reject };
    });
  }

  /** Stopped early (a `break`, a size limit): the socket is dropped, not pooled half-read. */
  return(): Promise<IteratorResult<Uint8Array, undefined>> {
    if (!this.ended && !this.failure) this.abort(new Error('the response body was not read to its end'));
    return Promise.resolve({ done: true, value: undefined });
  }

  /**
   * The whole body as text, once it has all arrived. Only for a body whose
   * declared length is within the limit: nothing here counts bytes.
   *
   * @param decode - joins the parts into text
   */
  text(decode: (parts: Uint8Array[], size: number) => string): Promise<string> {
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.ended) return Promise.resolve(decode(this.parts, this.size));
    this.whole = decode;
    if (this.paused) this.resume();
    return new Promise((resolve, reject) => {
      this.waiter = { resolve: resolve as (value: IteratorResult<Uint8Array, undefined> | string) => void, reject };
    });
  }

  private resume(): void {
    this.paused = false;
    this.resumeReading?.();
  }

  private abort(reason: unknown): void {
    if (this.ended || this.failure) return;
    const error = reason instanceof Error ? reason : new Error(String(reason));
    if (this.abortRequest) this.abortRequest(error);
    // Not connected yet: onConnect aborts it. Either way, nobody waits past the abort.
    else this.onError(error);
  }
}
