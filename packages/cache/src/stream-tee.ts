import { AbortError, type ChatCompletionChunk, type CompletionContext, type SluiceError, StreamCutError, type Usage } from '@sluice/core';
import { abortReason, type EndAware, onAbort, type ReadingAware, type StreamObserver, streamEnd, streamReading, toSluiceError, type TransportStream } from '@sluice/core/kit';
import { answerJson } from './cache-entry.js';

/** What a {@link StreamTee} tells its owner; internal. */
export interface TeeHooks {
  /** The upstream stream ended cleanly: every chunk, serialised as it arrived. */
  complete(chunks: readonly string[]): void;
  /** It broke, or every reader left before its end: nothing of it may be kept. */
  abandon(): void;
}

type Result = IteratorResult<ChatCompletionChunk, undefined>;

/** A stream that may be able to outlive the call it was made for (core's transport stream, a router's hop). */
interface Outlivable {
  outliveCall?: () => boolean;
}

const end = (): Result => ({ done: true, value: undefined });

/**
 * One upstream stream read by several callers (the call that sent it and
 * the identical calls that joined it): each reader gets every chunk, with
 * its boundaries, from the first; the upstream is pulled at the pace of
 * the fastest reader and cancelled only when every reader has left.
 *
 * Each chunk's JSON is taken once as it arrives, before any caller holds
 * it: the upstream's own text where the transport's stream comes straight
 * to the cache (core's `transportStream`: nothing inside read or wrapped
 * it, so the text is the chunk), else the chunk serialised (or, with
 * `raw`, the text the transport kept on it):
 * the reader that pulled it gets the upstream's object, the others fresh
 * copies, so no caller's mutation reaches another caller or the stored
 * entry. Most streams are never joined, and their one reader pulls every
 * chunk itself: that path is a plain `then` on the upstream's promise with
 * handlers made once per stream, so a chunk costs its serialisation and
 * one promise, where an async function per layer would cost three; and
 * over the transport's own stream, neither: the stream runs the tee's step
 * as its observer and the reader gets the stream's own promise; internal.
 */
export class StreamTee implements StreamObserver {
  /** The chunks so far, serialised. */
  readonly chunks: string[] = [];
  private pulling = false;
  private ended = false;
  private error: SluiceError | undefined = undefined;
  /**
   * What the joined readers get instead of `error` when the stream failed
   * because its sender's own call was aborted (its caller's abort, its
   * deadline): a reason that is not theirs, so a retryable cut, not a final abort.
   */
  private cut: SluiceError | undefined = undefined;
  /** The reader whose pull is out: it gets the upstream's object and moves past it. */
  private puller: TeeReader | undefined = undefined;
  /** Settles when the pull in progress lands; made only when a reader catches up with it and must wait. */
  private landed: Promise<void> | undefined = undefined;
  private wake: (() => void) | undefined = undefined;
  private readonly iterator: AsyncIterator<ChatCompletionChunk>;
  // Bound once per stream, not made per chunk (and not as arrow fields, which a keep-names build names one by one).
  private readonly onPulled = this.pulled.bind(this);
  private readonly onPullFailed = this.pullRejected.bind(this);
  /** The stream as the call inside left it: core's transport stream and the router's can outlive their call. */
  private readonly source: Outlivable;
  /** The reader of the call that sent the stream, once it subscribed. */
  private senderReader: TeeReader | undefined = undefined;
  /**
   * The upstream request no longer ends at the sender's abort: another
   * reader joined, so the sender's reader watches its own call's abort,
   * and the request ends when the last reader leaves.
   */
  private shared = false;
  /** The source was asked to outlive the sender's call (once, whatever it answered). */
  private askedToOutlive = false;
  /** The sender left early while others read on: a joined reader takes the request's cost (see {@link passBill}). */
  private billOpen = false;

  /**
   * @param source - the upstream stream (the transport's, as the middleware inside saw it)
   * @param readers - how many readers will subscribe (the sender and the calls that joined it so far)
   * @param sender - the call that sent it: its usage is known once the stream ended, its abort ends its reader once the stream is shared, and it is marked when another call carries its cost
   * @param hooks - told when the stream ended cleanly or was abandoned
   * @param raw - keep each chunk's upstream text where the transport kept it, rather than serialise it (the cache's `rawJson`)
   * @param upstream - `source` as core's `transportStream` gave it, when it did: each chunk's text is then the upstream's
   */
  constructor(
    source: AsyncIterable<ChatCompletionChunk>,
    private readers: number,
    private readonly sender: CompletionContext,
    private readonly hooks: TeeHooks,
    private readonly raw = false,
    private readonly upstream?: TransportStream,
  ) {
    this.iterator = source[Symbol.asyncIterator]();
    this.source = source as Outlivable;
    // The transport's stream runs the tee's step inside its own, so the one reader
    // gets the stream's promise for each chunk, not a `then` on it (a promise and a microtask).
    upstream?.observe(this);
  }

  /** The stream's usage, a copy for each reader that asks (once it ended). */
  usage(): Usage | undefined {
    const usage = this.sender.usage;
    return usage === undefined ? undefined : (JSON.parse(JSON.stringify(usage)) as Usage);
  }

  /** One more reader will subscribe (a call joined while the stream runs). */
  join(): void {
    this.readers++;
    this.share();
  }

  /**
   * Once a second reader is coming, the upstream request is let outlive
   * the call that sent it (core's `outliveCall`): that call's abort (its
   * caller leaving, its deadline) then ends its own reader, not the
   * stream the others read, which ends when the last of them leaves. A
   * stream no other call joined ends with its sender's abort, as before,
   * at no cost. Only on a stream that can (`outliveCall`: core's transport
   * stream, a router's hop): a stream something inside wrapped is not the
   * upstream request's, and is cut for the joined calls as a retryable
   * `STREAM_CUT` when its sender is aborted. Asked once.
   */
  private share(): void {
    const reader = this.senderReader;
    if (this.askedToOutlive || reader === undefined || this.readers < 2) return;
    if (this.ended || this.error !== undefined || abortReason(this.sender) !== undefined) return;
    this.askedToOutlive = true;
    // A stream that cannot: the sender's abort still ends it, and the joined calls get a cut.
    if (typeof this.source.outliveCall !== 'function' || this.source.outliveCall() !== true) return;
    this.shared = true;
    // A read the sender has out already is the upstream's own promise: it lands with the next
    // chunk (or the idle limit), not at the abort; every later read is one its abort can reject.
    reader.watch(this.sender);
  }

  /**
   * A reader's own iterator over every chunk from the first.
   *
   * @param onEnd - runs once when the stream ended cleanly, before the end is reported
   * @param caller - a joined call: its reader leaves at the call's own abort or deadline, its next read rejecting with it (the sender's reader, given none, watches its call once the stream is shared; until then its abort reaches the upstream request itself)
   */
  subscribe(onEnd?: () => void, caller?: CompletionContext): AsyncIterableIterator<ChatCompletionChunk> {
    const reader = new TeeReader(this, onEnd, caller);
    if (caller === undefined) {
      this.senderReader = reader;
      this.share();
    }
    return reader;
  }

  /** What a joined reader is rejected with for `error`: the cut, when the sender's own abort failed the stream. */
  forJoiner(error: unknown): unknown {
    return this.cut ?? error;
  }

  /** The next result for `reader`, at its `index`: pulled from upstream when it is the first to ask, else caught up. */
  read(reader: TeeReader, index: number): Promise<Result> {
    if (index === this.chunks.length && !this.pulling && !this.ended && this.error === undefined) return this.pull(reader);
    return this.catchUp(reader, index);
  }

  /**
   * A reader leaves (it ended, broke off, or never subscribed); the last one to leave early cancels the upstream.
   *
   * @param reader - the reader, when it subscribed
   * @param early - it left before the end (not {@link TeeReader.finish})
   */
  leave(reader?: TeeReader, early = true): void {
    this.readers--;
    this.passBill(reader, early);
    if (this.readers > 0 || this.ended || this.error) return;
    // Nobody is reading any more: the upstream request is given up, and what came of it is not kept.
    this.error = new AbortError('Every reader of the stream left before its end');
    this.hooks.abandon();
    void this.iterator.return?.()?.catch?.(() => {});
  }

  /**
   * Who is charged for the upstream request. The sender, as a rule; but a
   * sender that leaves before the end while others read on (its abort,
   * its deadline, a break) leaves them a request that goes on being
   * produced and billed. It is then recorded at nothing
   * (`costCarriedBy: 'cache'`), and the request's cost goes to the first
   * joined call that reads it to its end (the whole usage), or, if none
   * does, to the last one to leave (what it read, estimated): so the
   * ledger counts the request once, as the upstream bills it.
   */
  private passBill(reader: TeeReader | undefined, early: boolean): void {
    if (reader === undefined) return;
    if (reader === this.senderReader) {
      if (early && this.readers > 0 && !this.ended && this.error === undefined) {
        this.billOpen = true;
        this.sender.state.costCarriedBy = 'cache';
      }
      return;
    }
    if (this.billOpen && (!early || this.readers === 0)) {
      this.billOpen = false;
      reader.carry();
    }
  }

  /** For a reader behind the others: copies of what is stored, then a wait for the pull in progress. */
  private async catchUp(reader: TeeReader, index: number): Promise<Result> {
    for (;;) {
      if (index < this.chunks.length) {
        reader.index++;
        return { done: false, value: JSON.parse(this.chunks[index] as string) as ChatCompletionChunk };
      }
      if (this.error) {
        reader.leave();
        throw reader.joined ? (this.cut ?? this.error) : this.error;
      }
      if (this.ended) {
        reader.finish();
        return end();
      }
      if (!this.pulling) return this.pull(reader);
      await (this.landed ??= new Promise<void>((resolve) => (this.wake = resolve)));
    }
  }

  private pull(reader: TeeReader): Promise<Result> {
    this.pulling = true;
    this.puller = reader;
    let pulled: Promise<IteratorResult<ChatCompletionChunk>>;
    try {
      pulled = this.iterator.next();
    } catch (caught) {
      return Promise.reject(this.pullFailed(reader, caught));
    }
    if (this.upstream) return pulled as Promise<Result>;
    return pulled.then(this.onPulled, this.onPullFailed);
  }

  /** The transport's stream handed on a result (its observer): the tee's step for it, as {@link pulled}. */
  result(result: Result): void {
    this.pulled(result);
  }

  /** The transport's stream failed (its observer): the tee's step for it, as a pull that rejected. */
  failed(error: SluiceError): void {
    this.pullFailed(this.puller as TeeReader, error);
  }

  /** A pull landed: the chunk is serialised before anyone holds it, and handed to the reader in `puller`. */
  private pulled(result: IteratorResult<ChatCompletionChunk>): Result {
    const reader = this.puller as TeeReader;
    this.puller = undefined;
    if (result.done) {
      this.ended = true;
      this.land();
      // A stream abandoned while its last pull was out is not kept, even if that pull ended it.
      if (this.error === undefined) this.hooks.complete(this.chunks);
      reader.finish();
      return end();
    }
    let text: string;
    try {
      text = this.upstream?.lastJson() ?? answerJson(result.value, this.raw);
    } catch (caught) {
      // A chunk JSON cannot write (a BigInt a middleware put in it): the stream fails as UNEXPECTED for
      // every reader, as a broken upstream would, and nothing of it is kept; left alone, a reader that
      // joined it would wait for a pull that never lands.
      throw this.pullFailed(reader, caught);
    }
    this.chunks.push(text);
    reader.index++;
    this.land();
    return result;
  }

  private pullRejected(caught: unknown): never {
    throw this.pullFailed(this.puller as TeeReader, caught);
  }

  private pullFailed(reader: TeeReader, caught: unknown): SluiceError {
    this.puller = undefined;
    this.error = toSluiceError(caught);
    // Shared, the sender's abort no longer reaches the upstream: whatever failed it is everyone's.
    if (!this.shared && abortReason(this.sender) !== undefined) {
      this.cut = new StreamCutError('the call that sent the shared stream was aborted before its end', this.chunks.length, { cause: this.error });
    }
    this.land();
    this.hooks.abandon();
    reader.leave();
    return reader.joined ? (this.cut ?? this.error) : this.error;
  }

  /** The pull in progress is over: readers waiting for it go round again. */
  private land(): void {
    this.pulling = false;
    const wake = this.wake;
    if (wake === undefined) return;
    this.wake = undefined;
    this.landed = undefined;
    wake();
  }
}

/**
 * One reader's iterator over a {@link StreamTee}: a class rather than an
 * object of closures, and no async function: the tee hands over each
 * result and does the reader's bookkeeping (`index`, `finish`, `leave`),
 * so a chunk makes no promise here beyond the one the tee returns.
 */
class TeeReader implements AsyncIterableIterator<ChatCompletionChunk>, EndAware, ReadingAware {
  /** The next chunk this reader gets; moved on by the tee as it hands one over. */
  index = 0;
  /** Reads asked for: ahead of `index` while one is out. */
  private asked = 0;
  /** What the last `next()` returned, which a `next()` asked before it landed waits for. */
  private last: Promise<Result> | undefined = undefined;
  private again: (() => Promise<Result>) | undefined = undefined;
  private left = false;
  /** A joined call's own abort or deadline, once it came: every read from then on rejects with it. */
  private failure: SluiceError | undefined = undefined;
  /** Rejects the read in progress of a joined call (its own abort); set while one is out. */
  private pending: ((error: unknown) => void) | undefined = undefined;
  private unwatch: (() => void) | undefined = undefined;
  /** Whether this reader is a call that joined the flight, not the one that sent it. */
  readonly joined: boolean;
  /** The call whose abort ends this reader: a joined call's from the start, the sender's once the stream is shared. */
  private caller: CompletionContext | undefined;
  /** Told once when this reader is done, however (see {@link streamEnd}): the pipeline keeps its call in flight until then. */
  private ended: (() => void) | undefined = undefined;

  constructor(
    private readonly tee: StreamTee,
    private readonly onEnd: (() => void) | undefined,
    caller: CompletionContext | undefined,
  ) {
    this.joined = caller !== undefined;
    this.caller = undefined;
    // Watched from the start, read or not: a joined call that is aborted stops holding the tee (and its buffer) at once.
    if (caller) this.watch(caller);
  }

  /** From now on `caller`'s abort ends this reader, its read in progress rejecting with it. */
  watch(caller: CompletionContext): void {
    if (this.left || this.caller !== undefined) return;
    this.caller = caller;
    this.unwatch = onAbort(caller, () => this.aborted());
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Whether a read is under way. A `next()` asked meanwhile waits its turn
   * here, so the iterator `stream()` returns can pass each one straight
   * through (it reads this, as it does of core's own readers; see
   * `streamReading`) instead of chaining it behind the last with a `then` of its own.
   */
  get [streamReading](): boolean {
    return this.asked !== this.index;
  }

  [streamEnd](callback: () => void): boolean {
    if (this.left || this.ended !== undefined) return false;
    this.ended = callback;
    return true;
  }

  next(): Promise<Result> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.left) return Promise.resolve(end());
    // Asked again before the last read landed (a consumer reading ahead, as an async generator
    // allows): it waits its turn, in order; read at once, it would get the same chunk again.
    if (this.asked !== this.index) {
      const again = (this.again ??= this.next.bind(this));
      return (this.last = (this.last as Promise<Result>).then(again, again));
    }
    this.asked++;
    const read = this.tee.read(this, this.index);
    if (!this.caller) return (this.last = read);
    // A joined call's read waits on another call's upstream, which its own abort does not reach: it
    // gets a promise its abort can reject (joined calls are few; the sender's chunks make none of
    // these until the stream is shared).
    return (this.last = new Promise<Result>((resolve, reject) => {
      this.pending = reject;
      read.then(
        (result) => {
          this.pending = undefined;
          resolve(result);
        },
        (error: unknown) => {
          this.pending = undefined;
          reject(this.joined ? this.tee.forJoiner(error) : error);
        },
      );
    }));
  }

  async return(): Promise<Result> {
    this.leave();
    return end();
  }

  /** The stream ended cleanly: this reader is done, and hears it before the end is reported. */
  finish(): void {
    if (this.left) return;
    // Said after onEnd, which completes the call's record of the stream.
    const ended = this.ended;
    this.ended = undefined;
    this.leave(false);
    this.onEnd?.();
    ended?.();
  }

  /** This reader is done with the stream (its end, an error, or its own choice: `early`). */
  leave(early = true): void {
    if (this.left) return;
    this.left = true;
    this.unwatch?.();
    this.unwatch = undefined;
    this.tee.leave(this, early);
    const ended = this.ended;
    this.ended = undefined;
    ended?.();
  }

  /** A joined call takes the cost of the upstream request its sender left early: it is recorded as sent, not as answered. */
  carry(): void {
    const state = this.caller?.state;
    if (state === undefined) return;
    state.answeredBy = undefined;
    if (state.cache) {
      state.cache.carries = true;
      state.cache.savedUsage = undefined;
    }
  }

  /** The joined call was aborted (its caller, its deadline, its pipeline closing): it leaves with its own reason. */
  private aborted(): void {
    if (this.left || this.caller === undefined) return;
    this.failure = toSluiceError(abortReason(this.caller));
    this.leave();
    const pending = this.pending;
    this.pending = undefined;
    pending?.(this.failure);
  }
}
