import type { SluiceError } from '@sluice/core';
import type { StreamTee } from './stream-tee.js';

/** What a call that sent a request upstream shares with the identical calls that joined it; internal. */
export interface FlightAnswer {
  /** The completion, serialised (non-stream). */
  response?: string;
  /** Its usage, serialised (non-stream; a stream's arrives at its end). */
  usage?: string;
  /** The stream every reader subscribes to (stream). */
  tee?: StreamTee;
  /** `clock.now()` when the answer came. */
  at: number;
}

/** A flight failed: `own` when its sender's call was aborted, a reason none of the joined calls shares; internal. */
export class FlightFailure {
  constructor(
    readonly error: SluiceError,
    readonly own: boolean,
  ) {}
}

/**
 * One request in flight upstream for a cache key, which identical calls
 * join instead of sending their own (single flight). Most flights are
 * never joined, so the promise joiners wait on is made only for the first
 * of them; internal.
 */
export class Flight {
  /** Calls that joined before a stream's tee existed; the tee counts them among its readers. */
  joiners = 0;
  tee: StreamTee | undefined;
  private outcome: { answer: FlightAnswer } | { failure: FlightFailure } | undefined;
  private waiting: Promise<FlightAnswer> | undefined;
  private resolve: ((answer: FlightAnswer) => void) | undefined;
  private reject: ((failure: FlightFailure) => void) | undefined;

  /** The answer, or a {@link FlightFailure}, once the call that sent the request has it. */
  get answer(): Promise<FlightAnswer> {
    if (this.waiting) return this.waiting;
    const outcome = this.outcome;
    if (outcome) this.waiting = 'answer' in outcome ? Promise.resolve(outcome.answer) : Promise.reject(outcome.failure);
    else {
      this.waiting = new Promise<FlightAnswer>((resolve, reject) => {
        this.resolve = resolve;
        this.reject = reject;
      });
    }
    return this.waiting;
  }

  /** A call joins: it will read the answer (and subscribe to the stream). */
  join(): void {
    if (this.tee) this.tee.join();
    else this.joiners++;
  }

  /** A call that joined gives up before reading (its own abort): it no longer holds the stream open. */
  leave(): void {
    if (this.tee) void this.tee.subscribe(() => {}).return?.();
    else this.joiners--;
  }

  succeed(answer: FlightAnswer): void {
    this.tee = answer.tee;
    this.outcome = { answer };
    this.resolve?.(answer);
  }

  fail(error: SluiceError, own: boolean): void {
    const failure = new FlightFailure(error, own);
    this.outcome = { failure };
    this.reject?.(failure);
  }
}
