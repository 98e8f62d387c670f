import { createParser, type EventSourceMessage, type EventSourceParser, type ParseError } from 'eventsource-parser';
import type { Attempt } from './attempt.js';
import type { CompletionContext } from './context.js';
import { AbortError, MalformedResponseError, ResponseTooLargeError, SluiceError, StreamCutError } from './errors.js';
import type { ChatCompletionChunk } from './schemas.js';
import { errorFromUpstream, excerpt, redact } from './upstream-errors.js';
import { keepRawJson } from './raw-json.js';
import { editCount, isErrorBody, parseJson, toChunk } from './validate-response.js';
import { type EndAware, type ReadingAware, streamEnd, streamReading } from './stream-end.js';

/** What {@link readEvents} needs besides the body. */
export interface ReadEventsOptions {
  /** Drop the usage-only chunk (the caller did not ask for usage; the transport did). */
  hideUsage: boolean;
  /** Response headers, for errors (already redacted). */
  headers: Record<string, string>;
  secrets: readonly string[];
  /** Largest single event, in characters once decoded. */
  maxEventSize: number;
  /** Decodes the bytes, keeping a character split across reads whole. */
  decoder: { write(bytes: Uint8Array): string };
  /** Keep each chunk's `data:` text for `rawJson()` when its check changed nothing. */
  keepRawJson?: boolean;
}

/**
 * Reads an SSE body into checked chunks (see validate-response.ts).
 *
 * The attempt's idle timer counts events, not bytes: it restarts on each
 * complete event or `:` comment line (the keep-alive that OpenRouter and
 * others send while a model thinks), and stands still while the consumer
 * holds a chunk (a slow consumer is not a silent upstream; the call's
 * deadline still runs). Bytes that do not finish a line leave it running,
 * so an upstream that trickles a byte a second still hits its idle limit.
 *
 * Whatever ends the stream early (an error event, a malformed or oversized
 * event, a timeout, the consumer's `break`) aborts the attempt, which
 * destroys the socket instead of returning it half-read to the pool, and
 * clears the attempt's timer.
 *
 * @param ctx - the call; its `usage` is set from the usage chunk
 * @param body - the response body, status 200, `text/event-stream`
 * @param attempt - the attempt whose timer and abort govern the body
 * @param options - see {@link ReadEventsOptions}
 * @throws the upstream's typed error for an SSE error event; MalformedResponseError
 *   for a malformed event, ResponseTooLargeError for an oversized one; StreamCutError when the stream ends
 *   without `[DONE]` or breaks; the attempt's TimeoutError or AbortError
 */
export function readEvents(
  ctx: CompletionContext,
  body: AsyncIterable<Uint8Array>,
  attempt: Attempt,
  options: ReadEventsOptions,
): AsyncIterableIterator<ChatCompletionChunk> {
  return new EventReader(ctx, body, attempt, options);
}

/**
 * {@link readEvents}' iterator. Hand-written rather than an async
 * generator: it sits on every chunk of every stream, and a chunk already
 * parsed from the last read is handed over in a resolved promise, without
 * a generator's queue and resumption.
 */
export class EventReader implements AsyncIterableIterator<ChatCompletionChunk>, EndAware, ReadingAware {
  private readonly parser: EventSourceParser;
  /** Events parsed from the reads so far, and how many of them were handled. */
  private events: EventSourceMessage[] = [];
  private position = 0;
  private comments = 0;
  private overflow: ParseError | undefined;
  private source: AsyncIterator<Uint8Array> | undefined;
  /** `[DONE]` arrived (the rest of the body is read, and ignored). */
  private finished = false;
  private received = 0;
  /** The consumer holds a chunk: the idle limit waits until it asks for the next. */
  private holding = false;
  private closed = false;
  /** The `data:` text of the chunk handed over last, if its check left it as parsed. */
  private json: string | undefined = undefined;
  /** Told once when the stream ends, however it ends (see stream-end.ts). */
  private onEnded: (() => void) | undefined = undefined;
  /** Handed to its caller with nothing watching it: a read after an abort rejects at once. */
  private unwatched = false;
  /** Each choice seen, and whether it has had its finish_reason (made at the first chunk with a choice). */
  private choices: Map<number, boolean> | undefined = undefined;
  /** A read of the body is under way (what `stream()`'s iterator checks before passing a `next()` straight on). */
  [streamReading] = false;
  /** What the `next()` that started the read under way returns: a `next()` asked meanwhile waits for it. */
  private inflight: Promise<unknown> | undefined = undefined;

  constructor(
    private readonly ctx: CompletionContext,
    private readonly body: AsyncIterable<Uint8Array>,
    private readonly attempt: Attempt,
    private readonly options: ReadEventsOptions,
  ) {
    this.parser = createParser({
      // An event without data is not dispatched (the SSE spec; some relays
      // send `data:` alone as a keep-alive): like a comment, it neither
      // fails the stream nor counts as progress.
      onEvent: (event) => {
        if (event.data !== '') this.events.push(event);
      },
      onComment: () => {
        this.comments++;
      },
      onError: (error) => {
        if (error.type === 'max-buffer-size-exceeded') this.overflow = error;
      },
      maxBufferSize: options.maxEventSize,
    });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    // Asked again before the last read landed (a consumer reading ahead, as an async generator
    // allows): it waits its turn, in order, rather than start a second read of the body.
    if (this[streamReading]) {
      // Made the first time it is needed: most streams are read one next() at a time and never need it.
      const again = (this.again ??= this.next.bind(this));
      return (this.inflight as Promise<unknown>).then(again, again);
    }
    if (this.closed) return Promise.resolve({ done: true, value: undefined });
    // A stream the pipeline handed its caller unwatched, aborted (its pipeline closing) while the
    // caller held a chunk: events already parsed are not handed over after the abort. A watched
    // stream's wrapper settles an abort itself, by the result its one read gets.
    if (this.unwatched) {
      const aborted = this.attempt.reason();
      if (aborted !== undefined) return Promise.reject(this.fail(aborted));
    }
    if (this.holding) {
      this.holding = false;
      this.attempt.release();
    }
    let chunk: ChatCompletionChunk | undefined;
    try {
      chunk = this.take();
    } catch (error) {
      return Promise.reject(this.fail(error));
    }
    if (chunk !== undefined) return Promise.resolve(this.give(chunk));
    const pulled = this.pull();
    this.inflight = pulled;
    return pulled;
  }

  /**
   * The `data:` text of the chunk the last `next()` resolved with, when
   * the check left that chunk exactly as parsed; else undefined. Kept
   * whatever `keepRawJson` says: a field written per chunk, with no
   * property on the chunk (see transport-stream.ts).
   */
  lastJson(): string | undefined {
    return this.json;
  }

  /**
   * Runs `callback` once when the stream ends: read to its end, failed, or
   * stopped by its consumer. False, running nothing, when it has ended
   * already or another callback was given (see stream-end.ts).
   */
  [streamEnd](callback: () => void): boolean {
    if (this.closed || this.unwatched || this.attempt.reason() !== undefined) return false;
    this.unwatched = true;
    this.onEnded = callback;
    // Aborted, its request is torn down and it yields nothing more, whether or not anyone reads it again.
    this.attempt.onAborted = () => this.ended();
    return true;
  }

  private ended(): void {
    const onEnded = this.onEnded;
    this.onEnded = undefined;
    onEnded?.();
  }

  /**
   * The request goes on past its call's abort, until it ends, its own
   * limits end it or its consumer stops (see `TransportStream.outliveCall`).
   * A stream that ended or was aborted already stays as it is.
   */
  outliveCall(): boolean {
    if (this.closed || this.attempt.reason() !== undefined) return false;
    this.attempt.detach();
    return true;
  }

  /** The consumer stopped early (`break`): the attempt is aborted, so undici drops the socket. */
  return(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    this.close(undefined, false);
    return Promise.resolve({ done: true, value: undefined });
  }

  /**
   * Reads until an event yields a chunk, or the body ends. Not async, one
   * `then` a read: an async function's frame and its await cost each read
   * about 470 bytes, 10 KB a stream of 22 chunks, which arrive a read each.
   */
  private pull(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    let read: Promise<IteratorResult<Uint8Array>>;
    try {
      this.source ??= this.body[Symbol.asyncIterator]();
      read = this.source.next();
    } catch (error) {
      return Promise.reject(this.fail(error));
    }
    this[streamReading] = true;
    return read.then(this.onRead, this.onReadFailed);
  }

  // Bound once per stream, not made per read (and not as arrow fields, which a keep-names build names one by one).
  private readonly onRead = this.pulled.bind(this);
  private readonly onReadFailed = this.readFailed.bind(this);
  private again: (() => Promise<IteratorResult<ChatCompletionChunk, undefined>>) | undefined = undefined;

  /** A read came: its chunk, the end, or another read. */
  private pulled(read: IteratorResult<Uint8Array>): IteratorResult<ChatCompletionChunk, undefined> | Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    // Set again if this read brought no whole chunk and another is needed.
    this[streamReading] = false;
    if (read.done) {
      if (!this.finished && (this.doneAtEnd() || this.answered())) this.finished = true;
      if (!this.finished) {
        throw this.fail(new StreamCutError(`the stream ended without [DONE] after ${this.received} chunks`, this.received, { headers: this.options.headers }));
      }
      this.close(undefined, true);
      return { done: true, value: undefined };
    }
    let chunk: ChatCompletionChunk | undefined;
    try {
      this.feed(read.value);
      chunk = this.take();
    } catch (error) {
      throw this.fail(error);
    }
    return chunk !== undefined ? this.give(chunk) : this.pull();
  }

  /**
   * At the end of the body, whether what is left in the parser is a
   * `data: [DONE]` whose event was never closed: the body ended right after
   * it (no blank line, as a relay that trims its output sends), or after a
   * line end the parser was still holding (CR line endings, where a last
   * `\r` may yet be a `\r\n`). The answer was whole; reporting it cut would
   * have a retry pay for it again. Anything else left there (half a chunk)
   * is still a cut stream.
   */
  private doneAtEnd(): boolean {
    const before = this.events.length;
    this.parser.feed('\n\n');
    const closed = this.events.length - before;
    return closed === 1 && this.position === before && (this.events[before] as EventSourceMessage).data === '[DONE]';
  }

  /** Notes a choice of a chunk: written when first seen and when it finishes, not on every chunk. */
  private seen(index: number, finished: boolean): void {
    const choices = (this.choices ??= new Map());
    if (finished) choices.set(index, true);
    else if (!choices.has(index)) choices.set(index, false);
  }

  /**
   * Whether every choice the stream carried had its `finish_reason`: the
   * model said it was done, and the body then ended cleanly, with no
   * `[DONE]` (which some servers never send, and openai-node does not
   * require). A body that ends before that is a cut stream.
   */
  private answered(): boolean {
    const { choices } = this;
    if (choices === undefined) return false;
    for (const finished of choices.values()) if (!finished) return false;
    return true;
  }

  private readFailed(error: unknown): never {
    this[streamReading] = false;
    throw this.fail(error);
  }

  private feed(bytes: Uint8Array): void {
    const { clock } = this.ctx;
    this.parser.feed(this.options.decoder.write(bytes));
    if (this.overflow) throw tooLarge(this.options.maxEventSize, this.options.headers);
    if (this.comments > 0) {
      this.comments = 0;
      this.attempt.lastActivity = clock.now();
    }
    if (this.position < this.events.length) this.attempt.lastActivity = clock.now();
  }

  /** The next chunk from the events already parsed, if any; throws for an error or malformed event. */
  private take(): ChatCompletionChunk | undefined {
    const { ctx, options } = this;
    const { headers, secrets } = options;
    while (this.position < this.events.length) {
      const event = this.events[this.position++] as EventSourceMessage;
      if (this.finished) continue;
      // The parser bounds what it buffers across reads; an event that
      // arrived whole in one read is measured here.
      if (event.data.length > options.maxEventSize) throw tooLarge(options.maxEventSize, headers);
      if (isDone(event.data)) {
        this.finished = true;
        continue;
      }
      // A relay passing on Anthropic's keep-alive: progress (the feed counted it), not a chunk.
      if (event.event === 'ping') continue;
      const json = parseJson(event.data);
      if (event.event === 'error' || isErrorBody(json)) {
        throw errorFromUpstream({ status: undefined, body: json ?? event.data, headers, now: ctx.clock.now(), secrets });
      }
      if (json === undefined) {
        throw new MalformedResponseError(`malformed SSE event: ${excerpt(event.data, 100, secrets)}`, { headers });
      }
      const usageChunk = (json as { usage?: unknown }).usage != null;
      const edits = editCount();
      const chunk = toChunk(json, { headers, secrets });
      const unchanged = editCount() === edits;
      if (options.keepRawJson && unchanged) keepRawJson(chunk, event.data);
      if (chunk.usage) ctx.usage = chunk.usage;
      for (const choice of chunk.choices) this.seen(choice.index, choice.finish_reason != null);
      if (options.hideUsage && usageChunk && chunk.choices.length === 0) continue;
      this.json = unchanged ? event.data : undefined;
      return chunk;
    }
    this.events = [];
    this.position = 0;
    return undefined;
  }

  private give(chunk: ChatCompletionChunk): IteratorResult<ChatCompletionChunk, undefined> {
    this.received++;
    // The consumer's own time between chunks is not upstream silence.
    this.attempt.hold();
    this.holding = true;
    return { done: false, value: chunk };
  }

  /** The typed error a failure surfaces as (the attempt's own abort first); ends the stream. */
  private fail(error: unknown): SluiceError {
    let failure = this.attempt.reason();
    if (!failure) {
      if (error instanceof SluiceError) failure = error;
      else {
        const message = redact(String((error as Error)?.message ?? error), this.options.secrets);
        failure = new StreamCutError(`the stream broke after ${this.received} chunks: ${message}`, this.received, {
          cause: error,
          headers: this.options.headers,
        });
      }
    }
    this.close(failure, false);
    return failure;
  }

  /**
   * Ends the stream once. Stopped before the end (an error, the consumer's
   * break): the body is let go and the attempt aborted, so undici drops the
   * socket instead of leaving it half-read in the pool.
   */
  private close(failure: SluiceError | undefined, ended: boolean): void {
    if (this.closed) return;
    this.closed = true;
    if (!ended) this.source?.return?.()?.catch(() => {});
    if (!this.finished) this.attempt.abort(failure ?? new AbortError('The stream was cancelled by its consumer'));
    this.attempt.done();
    this.ended();
  }
}

/** `[DONE]`, as sent, or with spaces around it (an extra space after `data:`, a trailing one). */
function isDone(data: string): boolean {
  return data === '[DONE]' || (data.length <= 16 && data.trim() === '[DONE]');
}

function tooLarge(limit: number, headers: Record<string, string>): ResponseTooLargeError {
  return new ResponseTooLargeError(`an SSE event exceeded maxResponseBytes (${limit} characters)`, { headers });
}
