import { type AbortListener, AbortSource } from './abort-source.js';
import { abortReason, Call, onAbort } from './call.js';
import { aheadOfClock, type Clock } from './clock.js';
import type { CompletionContext } from './context.js';
import { AbortError, SluiceError, TimeoutError } from './errors.js';

/**
 * The attempts of one transport on one clock, waiting for their first
 * deadline, under one timer. Every attempt of a transport starts with the
 * same limit (the nearer of first byte and attempt), so attempts join in
 * order of their deadlines and the queue is a list: joining and leaving are
 * a few pointer writes, and the timer is armed for the oldest attempt only.
 * When it fires, the attempts whose deadline has come are checked and the
 * timer is armed again for the oldest left. A timer of its own per attempt
 * cost every call a runtime timer object made and cleared, and about 230
 * bytes held while the call waited on its upstream (what the collector copies
 * for every call in flight). The timer runs while any attempt waits, so a
 * call waiting on it keeps the process alive, and is cleared when none does.
 *
 * Should the clock step back (an NTP step, a resumed VM) by more than
 * `clockSkewMs`, the attempts that joined before it would wait for the
 * clock to catch up, and those behind them too: when the timer finds them,
 * they leave the queue and time themselves from the clock's new time (see
 * {@link Attempt.deadline}), each enforced late by at most its own limit.
 */
export class DeadlineQueue {
  /** The attempt that joined first (its deadline is the nearest). */
  private oldest: Attempt | undefined = undefined;
  private newest: Attempt | undefined = undefined;
  private timer: unknown = undefined;

  constructor(readonly clock: Clock) {}

  /** Adds `attempt`, due at `dueAt` on the clock, which read `now` just before. */
  join(attempt: Attempt, dueAt: number, now: number): void {
    attempt.dueAt = dueAt;
    attempt.queue = this;
    attempt.older = this.newest;
    if (this.newest) this.newest.newer = attempt;
    else this.oldest = attempt;
    this.newest = attempt;
    if (this.timer === undefined) this.arm(dueAt - now);
  }

  /** Takes `attempt` out (its deadline is no longer this queue's to keep). */
  leave(attempt: Attempt): void {
    if (attempt.queue !== this) return;
    const { older, newer } = attempt;
    if (older) older.newer = newer;
    else this.oldest = newer;
    if (newer) newer.older = older;
    else this.newest = older;
    attempt.queue = attempt.older = attempt.newer = undefined;
    if (this.oldest === undefined && this.timer !== undefined) {
      // Nothing left to wait for: a timer left running would hold the process open.
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private arm(ms: number): void {
    this.timer = this.clock.setTimeout(this.fire, Math.max(0, ms));
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    const now = this.clock.now();
    for (let attempt = this.oldest; attempt !== undefined && (attempt.dueAt <= now || attempt.steppedBack(now)); attempt = this.oldest) {
      this.leave(attempt);
      attempt.deadline();
    }
    if (this.oldest !== undefined && this.timer === undefined) this.arm(this.oldest.dueAt - now);
  };
}

/**
 * The deadline queue of each clock a transport's calls run on (one, almost
 * always: the pipeline's).
 */
export class DeadlineQueues {
  private lastClock: Clock | undefined;
  private lastQueue: DeadlineQueue | undefined;
  private readonly queues = new WeakMap<Clock, DeadlineQueue>();

  /** The queue for `clock`. */
  of(clock: Clock): DeadlineQueue {
    if (clock === this.lastClock) return this.lastQueue as DeadlineQueue;
    let queue = this.queues.get(clock);
    if (queue === undefined) {
      queue = new DeadlineQueue(clock);
      this.queues.set(clock, queue);
    }
    this.lastClock = clock;
    this.lastQueue = queue;
    return queue;
  }
}

/**
 * One HTTP attempt's abort source and its deadlines. The first deadline
 * (the nearer of first byte and attempt) is kept by the transport's
 * {@link DeadlineQueue}; when it comes for a phase that has moved on, the
 * attempt arms a timer of its own for what is left, as it does for the idle
 * limit of a stream: one timer at a time per attempt at most, none reset per chunk.
 *
 * Every path through the transport ends an attempt with `done()` (the
 * timer cleared, the caller's abort unlinked), and every early end of a
 * body with `abort()` (the socket destroyed rather than pooled half-read).
 */
export class Attempt implements AbortListener {
  private readonly source = new AbortSource();
  /** The call's own source, which this attempt listens to (no closure), or the unlinking of a listener on another context's signal. */
  private readonly callSource: AbortSource | undefined;
  private readonly unlink: (() => void) | undefined;
  private timer: unknown;
  private firstByteAt: number | undefined;
  private attemptAt: number | undefined;
  private idleMs: number | undefined;
  /**
   * When the stream last made progress (idle phase only): a complete SSE
   * event. Bytes alone are not progress, so a drip cannot hold the stream open.
   */
  lastActivity = 0;
  /** The consumer holds a chunk and has not asked for the next: its time is not upstream silence. */
  private held = false;
  /** Told once when the attempt is aborted (its stream's reader, for a stream handed over unwatched). */
  onAborted: (() => void) | undefined = undefined;
  /** The deadline queue it waits in, while it does; its place there and its deadline. For {@link DeadlineQueue}. */
  queue: DeadlineQueue | undefined = undefined;
  older: Attempt | undefined = undefined;
  newer: Attempt | undefined = undefined;
  dueAt = 0;
  private readonly clock: Clock;

  /**
   * @param ctx - the call, whose abort aborts the attempt
   * @param deadlines - the transport's deadline queue for the call's clock
   * @param firstByteMs - the limit until the response's headers
   * @param attemptMs - the limit on the whole exchange
   */
  constructor(
    ctx: CompletionContext,
    deadlines: DeadlineQueue,
    private readonly firstByteMs: number,
    private readonly attemptMs: number,
  ) {
    this.clock = deadlines.clock;
    const now = this.clock.now();
    this.firstByteAt = now + firstByteMs;
    this.attemptAt = now + attemptMs;
    deadlines.join(this, now + Math.max(0, Math.min(firstByteMs, attemptMs)), now);
    // Last: a call aborted already aborts the attempt here, which takes it out of the queue again.
    if (ctx instanceof Call) {
      const source = ctx.abortSource;
      this.callSource = source;
      if (source.aborted) this.abort(source.reason);
      else source.listen(this);
    } else this.unlink = onAbort(ctx, () => this.abort(abortReason(ctx)));
  }

  /** The call was aborted. */
  sourceAborted(): void {
    this.abort((this.callSource as AbortSource).reason);
  }

  /** What undici watches; it accepts any object with `aborted` and `addEventListener`. */
  get signal(): AbortSource {
    return this.source;
  }

  /** The headers are in: the first-byte limit is met. */
  headersReceived(): void {
    this.firstByteAt = undefined;
  }

  /** A stream has started: the attempt limit gives way to the idle limit between chunks. */
  streaming(idleMs: number): void {
    this.firstByteAt = undefined;
    this.attemptAt = undefined;
    this.idleMs = idleMs;
    this.lastActivity = this.clock.now();
    this.queue?.leave(this);
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.arm(idleMs);
  }

  /** A chunk went to the consumer: the idle limit waits until it asks for the next. */
  hold(): void {
    this.held = true;
  }

  /** The consumer asked for the next chunk: the idle limit counts again from now. */
  release(): void {
    this.held = false;
    this.lastActivity = this.clock.now();
  }

  private arm(ms: number): void {
    this.timer = this.clock.setTimeout(() => this.deadline(), Math.max(0, ms));
  }

  /** Whether it joined its queue before the clock stepped back past its start (its deadline further ahead than its limit). */
  steppedBack(now: number): boolean {
    return aheadOfClock(this.dueAt - Math.max(0, Math.min(this.firstByteMs, this.attemptMs)), now);
  }

  /** A deadline came (the queue's first one, or its own timer's): times the attempt out, or waits for what is left. */
  deadline(): void {
    this.timer = undefined;
    if (this.source.aborted) return;
    const now = this.clock.now();
    // The clock stepped back past this attempt's start (or its last progress): counted from the
    // clock's new time, its limits would wait for the step; they start again from now instead.
    let since = this.idleMs !== undefined ? this.lastActivity : Number.NEGATIVE_INFINITY;
    if (this.attemptAt !== undefined && Number.isFinite(this.attemptMs)) since = Math.max(since, this.attemptAt - this.attemptMs);
    if (this.firstByteAt !== undefined && Number.isFinite(this.firstByteMs)) since = Math.max(since, this.firstByteAt - this.firstByteMs);
    if (aheadOfClock(since, now)) {
      const step = since - now;
      if (this.attemptAt !== undefined) this.attemptAt -= step;
      if (this.firstByteAt !== undefined) this.firstByteAt -= step;
      this.lastActivity -= step;
    }
    // The attempt limit wins a tie: it is the one a caller configures for the whole exchange.
    if (this.attemptAt !== undefined && now >= this.attemptAt) return this.abort(new TimeoutError('attempt', this.attemptMs));
    if (this.firstByteAt !== undefined && now >= this.firstByteAt) {
      return this.abort(new TimeoutError('first-byte', this.firstByteMs));
    }
    if (this.idleMs !== undefined && !this.held && now - this.lastActivity >= this.idleMs) {
      return this.abort(new TimeoutError('idle', this.idleMs));
    }
    const next = Math.min(
      this.firstByteAt ?? Infinity,
      this.attemptAt ?? Infinity,
      // While held, look again one idle period on (cheaper than re-arming on every release).
      this.idleMs === undefined ? Infinity : (this.held ? now : this.lastActivity) + this.idleMs,
    );
    if (next !== Infinity) this.arm(next - now);
  }

  abort(reason: unknown): void {
    if (this.source.aborted) return;
    // Nothing is left for the timer to enforce, and a stream nobody reads again would never reach
    // `done()`: left armed, it would keep the process alive until it fired.
    this.queue?.leave(this);
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.source.abort(reason instanceof SluiceError ? reason : new AbortError('The call was aborted', { cause: reason }));
    const aborted = this.onAborted;
    this.onAborted = undefined;
    aborted?.();
  }

  /**
   * From now on the call's abort (its caller, its deadline, a hedge it
   * lost) no longer reaches this attempt: its own limits, its reader's
   * `return()` and its transport's close still end it. For a stream that
   * outlives its call (see `TransportStream.outliveCall`).
   */
  detach(): void {
    this.callSource?.unlisten(this);
    this.unlink?.();
  }

  /** The typed reason this attempt was aborted for, if it was. */
  reason(): SluiceError | undefined {
    return this.source.aborted ? (this.source.reason as SluiceError) : undefined;
  }

  done(): void {
    this.queue?.leave(this);
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.onAborted = undefined;
    this.callSource?.unlisten(this);
    this.unlink?.();
  }
}

