import type { SettleListener, Settlement } from './context.js';
import { AbortError, type SluiceError, toSluiceError } from './errors.js';
import type { ChatCompletionChunk, Usage } from './schemas.js';
import { type EndAware, isEndAware, type ReadingAware, streamEnd, streamReading } from './stream-end.js';

/** What runs a scope's listeners: a throw becomes an event, never the call's error. */
export interface ListenerRunner {
  /** Returns a promise only for a listener that returned one. */
  runListener(listener: SettleListener, settlement: Settlement): Promise<void> | undefined;
}

/**
 * The listeners waiting for one response (or for the whole call) to be
 * completely done. Settles once; a listener added afterwards runs at once
 * and its promise is returned, so the call can wait for it.
 */
export class SettleScope {
  /**
   * One listener as it is, more in an array made at their number: most
   * scopes have one or none, and an array pushed to from empty takes room
   * for 17 (184 bytes a call, held while the call is in flight).
   */
  private listeners: SettleListener | SettleListener[] | undefined;
  private settlement: Settlement | (() => Settlement) | undefined;

  /** @param owner - runs each listener (the call, so that no closure is made per scope) */
  constructor(private readonly owner: ListenerRunner) {}

  get hasListeners(): boolean {
    return this.listeners !== undefined;
  }

  /** What the scope settled with, built on first need. */
  private get settled(): Settlement | undefined {
    if (typeof this.settlement === 'function') this.settlement = this.settlement();
    return this.settlement;
  }

  add(listener: SettleListener): Promise<void> | undefined {
    const settled = this.settled;
    if (settled) return this.owner.runListener(listener, settled);
    const { listeners } = this;
    if (listeners === undefined) this.listeners = listener;
    else if (typeof listeners === 'function') this.listeners = [listeners, listener];
    else if (listeners.length < 8) this.listeners = [...listeners, listener];
    else listeners.push(listener);
    return undefined;
  }

  /**
   * Settles the scope; returns a promise only when there are listeners to
   * wait for. `settlement` may be a function: with nobody listening (the
   * common case), the settlement object is then never built.
   */
  settle(settlement: Settlement | (() => Settlement)): Promise<void> | undefined {
    if (this.settlement !== undefined) return undefined;
    this.settlement = settlement;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (!listeners) return undefined;
    const settled = this.settled as Settlement;
    if (typeof listeners === 'function') return this.owner.runListener(listeners, settled);
    let running: Array<Promise<void>> | undefined;
    for (const listener of listeners) {
      const run = this.owner.runListener(listener, settled);
      if (run) (running ??= []).push(run);
    }
    return running && Promise.all(running).then(() => undefined);
  }
}

/** The text a chunk carries, for costing streams cut before their usage arrived. */
export function chunkText(chunk: ChatCompletionChunk): string {
  let text = '';
  for (const choice of chunk.choices) {
    const { delta } = choice;
    if (delta.content) text += delta.content;
    if (delta.refusal) text += delta.refusal;
    if (delta.tool_calls) for (const call of delta.tool_calls) text += call.function?.arguments ?? '';
  }
  return text;
}

const ended = (): IteratorResult<ChatCompletionChunk, undefined> => ({ done: true, value: undefined });

/**
 * What a reader of a transport stream runs on each result inside the step
 * that hands the result on, before whoever asked for it gets it (see
 * transport-stream.ts).
 */
export interface StreamObserver {
  /** A chunk, or the end (once the stream settled). A throw fails that read with what was thrown. */
  result(result: IteratorResult<ChatCompletionChunk, undefined>): void;
  /** Reading failed with `error`, once the stream settled with it; the read then rejects with it. */
  failed(error: SluiceError): void;
}

/** What a stream's observer needs from its call. */
export interface StreamWatch {
  /** Whether anyone will read `streamedText` (it is only accumulated then). */
  wantsText(): boolean;
  /** The call's usage when the stream ends. */
  usage(): Usage | undefined;
  /** Why the call was aborted, if it was (to tell a cancel from an abort). */
  abortReason(): unknown;
  now(): number;
  done(settlement: Settlement): Promise<void> | undefined;
}

/**
 * Passes a stream through, calling `watch.done` once when it ends
 * (success), throws (error) or is stopped early by its consumer
 * (cancelled). A hand-written iterator rather than an async generator: it
 * sits on every chunk of every stream, and a generator's queue costs more.
 *
 * The pipeline wraps the transport's stream in one for the attempt, and a
 * call with listeners of its own (`trackCost`, registered before the call
 * was sent) needs a second for the call. When the call's stream is still
 * its last attempt's, unread, the attempt's stream settles the call too
 * ({@link SettlingStream.adopt}): each chunk then passes one layer, not two
 * (a `then` and the text of every chunk, counted once).
 */
export class SettlingStream implements AsyncIterableIterator<ChatCompletionChunk>, EndAware, ReadingAware {
  private iterator: AsyncIterator<ChatCompletionChunk> | undefined;
  private finished = false;
  /** A read of the source is under way (what `stream()`'s iterator checks before passing a `next()` straight on). */
  [streamReading] = false;
  /** Set when the call was aborted while nobody was reading: what a later read throws. */
  private failure: SluiceError | undefined;
  /** The pull `abandon` started, which a read arriving meanwhile waits for. */
  private pulling: Promise<unknown> | undefined;
  private chunks = 0;
  private streamedText = '';
  /** The result `peek` read ahead, until the first `next()` takes it. */
  private held: IteratorResult<ChatCompletionChunk, undefined> | undefined = undefined;
  /** Told of every result as it passes (see transport-stream.ts); at most one. */
  private observer: StreamObserver | undefined = undefined;
  /** The call this stream settles too, after its attempt (see {@link SettlingStream.adopt}); cleared once settled. */
  private call: { readonly watch: StreamWatch; readonly startedAt: number } | undefined = undefined;
  /** A chunk passed while nobody wanted its text: `streamedText` lacks it. */
  private textSkipped = false;

  /**
   * @param source - the stream to pass through
   * @param scope - the scope `watch.done` settles, if any: with no
   *   listener on it before reading starts, the wrapper can be dropped
   */
  constructor(
    readonly source: AsyncIterable<ChatCompletionChunk>,
    private readonly watch: StreamWatch,
    private readonly startedAt: number,
    private readonly scope?: SettleScope,
  ) {}

  /** True when nothing has been read yet and nobody listens for the end or observes the results. */
  unobserved(): boolean {
    return this.iterator === undefined && this.observer === undefined && this.scope !== undefined && !this.scope.hasListeners;
  }

  /**
   * Settles the call as well, as a second stream around this one would
   * have, once this one has settled its attempt: what the pipeline does
   * instead of wrapping it again. Only for the stream of `scope`, the
   * call's last attempt, while it has not ended and nobody has been handed
   * a chunk of it (so the call counts every chunk this one does); false,
   * changing nothing, otherwise.
   *
   * @param scope - the call's current attempt
   * @param watch - the call's
   * @param startedAt - when the call started (its settlement's duration runs from there)
   */
  adopt(scope: SettleScope | undefined, watch: StreamWatch, startedAt: number): boolean {
    if (scope === undefined || this.scope !== scope || this.call !== undefined || this.finished || this.pulling || !this.unread()) return false;
    // The chunk read ahead passed while nobody wanted its text; the call may.
    const held = this.held;
    if (this.textSkipped && held !== undefined && !held.done && this.chunks === 1) {
      this.streamedText = chunkText(held.value);
      this.textSkipped = false;
    }
    if (this.textSkipped) return false;
    this.call = { watch, startedAt };
    return true;
  }

  /** True when nobody has been handed a chunk of it yet (a chunk read ahead and still held counts as unread). */
  unread(): boolean {
    return this.iterator === undefined || this.held !== undefined;
  }

  /**
   * Reads the first result ahead and holds it for the first `next()`
   * (see transport-stream.ts); rejects with what reading it threw, the
   * stream then settled with that error.
   */
  async peek(): Promise<void> {
    if (this.held === undefined) this.held = await this.next();
  }

  /** The upstream's text of the chunk read last, where the source keeps it (see transport-stream.ts). */
  lastJson(): string | undefined {
    return (this.source as { lastJson?: () => string | undefined }).lastJson?.();
  }

  /** The upstream request goes on past its call's abort, where the source can (see transport-stream.ts); whether it will. */
  outliveCall(): boolean {
    return !this.finished && (this.source as { outliveCall?: () => boolean }).outliveCall?.() === true;
  }

  /**
   * Says when the stream ends, as its source does, if its source does (see
   * stream-end.ts): it passes every result of the source through, and its
   * `return()` is the source's. So a call handed over unwatched with its
   * attempt's wrapper still around its stream (read ahead, by `retry`)
   * stays in flight until the stream ends, as one with the transport's own
   * stream does, and `close()` gives it its grace and then aborts it.
   */
  [streamEnd](callback: () => void): boolean {
    const source = this.source;
    return !this.finished && isEndAware(source) && source[streamEnd](callback);
  }

  /** Tells `observer` of every result from now on, before whoever asked for it gets it (see transport-stream.ts). */
  observe(observer: StreamObserver): void {
    this.observer = observer;
  }

  private get inner(): AsyncIterator<ChatCompletionChunk> {
    this.iterator ??= this.source[Symbol.asyncIterator]();
    return this.iterator;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    if (this.held !== undefined) return this.call === undefined ? this.handHeld(this.held) : this.handHeld(this.held).then(undefined, this.callFailed);
    // A read arriving while `abandon` pulls waits for that pull.
    if (this.pulling) return this.pulling.then(() => this.read());
    return this.read();
  }

  /** The result `peek` read: the observer hears of it now, as of any result, before the reader gets it. */
  private handHeld(held: IteratorResult<ChatCompletionChunk, undefined>): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    this.held = undefined;
    try {
      this.observer?.result(held);
    } catch (caught) {
      return Promise.reject(caught);
    }
    return Promise.resolve(held);
  }

  private read(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    if (this.finished) {
      // An observer hears of every read, a read after the end too.
      if (this.observer !== undefined) return this.failure ? this.failed(this.failure) : Promise.resolve(this.passed({ done: true, value: undefined }));
      return this.failure ? Promise.reject(this.failure) : Promise.resolve(ended());
    }
    this[streamReading] = true;
    let read: Promise<IteratorResult<ChatCompletionChunk>>;
    try {
      read = this.inner.next();
    } catch (caught) {
      return this.call === undefined ? this.failed(caught) : this.failedForCall(caught);
    }
    // Not async: each chunk costs this layer one `then`, not an async
    // function's promise and an await (a third of a stream's CPU per layer).
    return this.call === undefined ? read.then(this.passed, this.failed) : read.then(this.passedForCall, this.failedForCall);
  }

  /** {@link SettlingStream.passed}, then the call's settlement at the end, or on a throw. */
  private readonly passedForCall = (result: IteratorResult<ChatCompletionChunk>): IteratorResult<ChatCompletionChunk, undefined> | Promise<IteratorResult<ChatCompletionChunk, undefined>> => {
    let passed;
    try {
      passed = this.passed(result);
    } catch (caught) {
      return this.callFailed(caught);
    }
    if (!result.done) return passed;
    return passed instanceof Promise ? passed.then(this.callEnded, this.callFailed) : this.callEnded();
  };

  /** {@link SettlingStream.failed}, then the call's settlement with the same error. */
  private readonly failedForCall = (caught: unknown): Promise<never> => {
    let failed;
    try {
      failed = this.failed(caught);
    } catch (thrown) {
      return this.callFailed(thrown);
    }
    return failed.then(undefined, this.callFailed);
  };

  /** The attempt ended, read to its end: so did the call. */
  private readonly callEnded = (): IteratorResult<ChatCompletionChunk, undefined> | Promise<IteratorResult<ChatCompletionChunk, undefined>> => {
    const finishing = this.finishCall('success', undefined);
    return finishing ? finishing.then(ended) : ended();
  };

  /** Reading failed (or what heard a result threw): the call settles with the error, which is then rethrown. */
  private readonly callFailed = (caught: unknown): Promise<never> => {
    const error = toSluiceError(caught);
    const finishing = this.finishCall('error', error);
    return finishing ? finishing.then(() => Promise.reject(error)) : Promise.reject(error);
  };

  /** A chunk (or the end) read from the source. */
  private readonly passed = (result: IteratorResult<ChatCompletionChunk>): IteratorResult<ChatCompletionChunk, undefined> | Promise<IteratorResult<ChatCompletionChunk, undefined>> => {
    this[streamReading] = false;
    if (result.done) {
      const finishing = this.finish('success', undefined);
      if (this.observer === undefined) return finishing ? finishing.then(ended) : ended();
      return finishing ? finishing.then(this.observedEnd) : this.observedEnd();
    }
    this.chunks++;
    if (this.watch.wantsText() || this.call?.watch.wantsText() === true) this.streamedText += chunkText(result.value);
    else this.textSkipped = true;
    this.observer?.result(result);
    return result;
  };

  private readonly observedEnd = (): IteratorResult<ChatCompletionChunk, undefined> => {
    const end = ended();
    this.observer?.result(end);
    return end;
  };

  /** Reading the source threw: settles with the error, then rethrows it. */
  private readonly failed = (caught: unknown): Promise<never> => {
    this[streamReading] = false;
    const error = toSluiceError(caught);
    const finishing = this.finish('error', error);
    if (this.observer === undefined) return finishing ? finishing.then(() => Promise.reject(error)) : Promise.reject(error);
    const observer = this.observer;
    const fail = (): Promise<never> => {
      observer.failed(error);
      return Promise.reject(error);
    };
    return finishing ? finishing.then(fail) : fail();
  };

  /**
   * Ends the source early. Settles as `cancelled`, the consumer's choice;
   * or, once the call was aborted (its caller, its deadline, `close()`, a
   * hedge it lost), as `error` with the abort's error, as the same abort
   * settles a stream being read and a call not yet answered: a ledger or
   * a span must not tell one abort two ways by when it came.
   */
  async return(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    // A chunk read ahead and never taken is dropped with the stream: a later `next()` says done.
    this.held = undefined;
    try {
      if (!this.finished) {
        try {
          await this.iterator?.return?.();
        } finally {
          await this.finish(...stoppedEarly(this.watch));
        }
      }
    } finally {
      // The call it settles too, as a stream of the call's own around this one would on its `return()`.
      if (this.call !== undefined) await this.finishCall(...stoppedEarly(this.call.watch));
    }
    return { done: true, value: undefined };
  }

  /**
   * The call was aborted (deadline, caller, `close()`) while nobody was
   * reading: pull once, so the abort surfaces through every wrapper and
   * each settles with it (slots, reservations and the socket are given
   * back now, not when the consumer gets round to reading, if ever). A
   * later read throws the abort's error.
   */
  abandon(): void {
    if (this.finished || this[streamReading]) return;
    const reason = this.watch.abortReason();
    this.failure = reason === undefined ? undefined : toSluiceError(reason);
    const pull = this.next();
    this.pulling = pull.then(
      (result) => (result.done ? undefined : this.return()),
      () => {},
    );
  }

  private finish(outcome: Settlement['outcome'], error: Settlement['error']): Promise<void> | undefined {
    if (this.finished) return undefined;
    this.finished = true;
    return this.report(this.watch, this.startedAt, outcome, error);
  }

  /** Settles the call this stream settles too, once: what it read, timed from the call's start. */
  private finishCall(outcome: Settlement['outcome'], error: Settlement['error']): Promise<void> | undefined {
    const call = this.call;
    if (call === undefined) return undefined;
    this.call = undefined;
    return this.report(call.watch, call.startedAt, outcome, error);
  }

  /** Tells `watch` how the stream ended: what it read, timed from `startedAt`. */
  private report(watch: StreamWatch, startedAt: number, outcome: Settlement['outcome'], error: Settlement['error']): Promise<void> | undefined {
    return watch.done({
      outcome,
      error,
      usage: watch.usage(),
      response: undefined,
      streamedText: this.streamedText,
      chunks: this.chunks,
      stream: true,
      durationMs: Math.max(0, watch.now() - startedAt),
      // A stream exists only once the upstream accepted the request.
      accepted: true,
    });
  }
}

/**
 * How a stream stopped early by `return()` ends for `watch`: with the
 * call's abort when there was one (its caller, its deadline, `close()`, a
 * hedge it lost), else cancelled by its consumer.
 */
function stoppedEarly(watch: StreamWatch): [Settlement['outcome'], SluiceError] {
  const reason = watch.abortReason();
  return reason !== undefined ? ['error', toSluiceError(reason)] : ['cancelled', new AbortError('The stream was cancelled by its consumer')];
}
