import { AbortSource } from './abort-source.js';
import { abortReason, onAbort } from './call.js';
import type { Clock } from './clock.js';
import type { CompletionContext } from './context.js';
import { AbortError, SluiceError, TimeoutError } from './errors.js';

/**
 * One HTTP attempt's abort source and its one timer. The timer is armed
 * for the nearest deadline and, when it fires early for a phase that has
 * moved on, re-arms for what is left: one timer per attempt instead of
 * one per phase (and none reset per chunk).
 *
 * Every path through the transport ends an attempt with `done()` (the
 * timer cleared, the caller's abort unlinked), and every early end of a
 * body with `abort()` (the socket destroyed rather than pooled half-read).
 */
export class Attempt {
  private readonly source = new AbortSource();
  private readonly unlink: () => void;
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

  constructor(
    ctx: CompletionContext,
    private readonly clock: Clock,
    private readonly firstByteMs: number,
    private readonly attemptMs: number,
  ) {
    this.unlink = onAbort(ctx, () => this.abort(abortReason(ctx)));
    const now = clock.now();
    this.firstByteAt = now + firstByteMs;
    this.attemptAt = now + attemptMs;
    this.arm(Math.min(firstByteMs, attemptMs));
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
    this.timer = this.clock.setTimeout(() => this.check(), Math.max(0, ms));
  }

  private check(): void {
    this.timer = undefined;
    if (this.source.aborted) return;
    const now = this.clock.now();
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
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.source.abort(reason instanceof SluiceError ? reason : new AbortError('The call was aborted', { cause: reason }));
    const aborted = this.onAborted;
    this.onAborted = undefined;
    aborted?.();
  }

  /** The typed reason this attempt was aborted for, if it was. */
  reason(): SluiceError | undefined {
    return this.source.aborted ? (this.source.reason as SluiceError) : undefined;
  }

  done(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.onAborted = undefined;
    this.unlink();
  }
}

