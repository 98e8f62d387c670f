import { type CompletionContext, SluiceError } from '@sluice/core';
import type { Keyed } from './flight-table.js';
import type { StreamTee, TeeHooks } from './stream-tee.js';

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

/** What a call that asks a landed flight for its answer gets: go round again. */
const landedFailure = new FlightFailure(new SluiceError('CACHE_FLIGHT_LANDED', 'the flight this call joined has landed'), true);

/** What a flight asks of the cache that started it; one per cache, so a flight holds no closures of its own; internal. */
export interface FlightOwner {
  /** The flight is over: identical calls from now on read the storage (or start their own). */
  land(flight: Flight): void;
  /** The flight's stream was read to its end: every chunk, serialised as it arrived. */
  recorded(flight: Flight, chunks: readonly string[]): void;
}

/**
 * One request in flight upstream for a cache key, which identical calls
 * join instead of sending their own (single flight). Most flights are
 * never joined, so nothing is made for joiners until the first of them
 * comes: the answer is kept in fields, and the promise joiners wait on is
 * made only when one asks.
 *
 * Once it has landed it lets go of everything it held (the sender's call,
 * the answer, the stream). The calls that joined have their answer by
 * then, and a landed flight that something still points at then costs
 * little: landed flights that still held their answers had them promoted
 * to the old generation on most misses while the flights were kept in a
 * Map (see flight-table.ts), about three times the heap growth per
 * scavenge; internal.
 */
export class Flight implements TeeHooks, Keyed {
  /** Calls that joined before a stream's tee existed; the tee counts them among its readers. */
  joiners = 0;
  tee: StreamTee | undefined = undefined;
  private response: string | undefined = undefined;
  private usage: string | undefined = undefined;
  private at = 0;
  private answered = false;
  private failure: FlightFailure | undefined = undefined;
  private waiting: Promise<FlightAnswer> | undefined = undefined;
  private resolve: ((answer: FlightAnswer) => void) | undefined = undefined;
  private reject: ((failure: FlightFailure) => void) | undefined = undefined;

  /**
   * @param key - the storage key it is in flight for
   * @param hash - the key's hash, by which the cache's flight table finds it
   * @param sender - the call that sent the request
   * @param owner - the cache that keeps track of it
   */
  constructor(
    readonly key: string,
    readonly hash: number,
    sender: CompletionContext,
    private readonly owner: FlightOwner,
  ) {
    this.sender = sender;
  }

  /** The call that sent the request; undefined once the flight landed. */
  sender: CompletionContext | undefined;
  private landed = false;

  /** The answer, or a {@link FlightFailure}, once the call that sent the request has it. */
  get answer(): Promise<FlightAnswer> {
    // Nothing asks once the flight left the map; if something did, it would go round again.
    if (this.landed) return Promise.reject(landedFailure);
    if (this.waiting) return this.waiting;
    if (this.answered) this.waiting = Promise.resolve(this.shared());
    else if (this.failure) this.waiting = Promise.reject(this.failure);
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
    if (this.tee) this.tee.leave();
    else if (!this.landed) this.joiners--;
  }

  /** The sender has its answer: a serialised completion (and usage), or the stream it tees. */
  succeed(response: string | undefined, usage: string | undefined, tee: StreamTee | undefined, at: number): void {
    this.response = response;
    this.usage = usage;
    this.tee = tee;
    this.at = at;
    this.answered = true;
    this.resolve?.(this.shared());
  }

  fail(error: SluiceError, own: boolean): void {
    this.failure = new FlightFailure(error, own);
    this.reject?.(this.failure);
  }

  /** The flight is over and out of the map: it drops what it holds. */
  land(): void {
    this.landed = true;
    this.sender = undefined;
    this.tee = undefined;
    this.response = undefined;
    this.usage = undefined;
    this.waiting = undefined;
    this.resolve = undefined;
    this.reject = undefined;
  }

  /** The tee's stream ended cleanly (the tee's hook). */
  complete(chunks: readonly string[]): void {
    this.owner.recorded(this, chunks);
  }

  /** The tee's stream broke or every reader left (the tee's hook): nothing to keep, the flight is over. */
  abandon(): void {
    this.owner.land(this);
  }

  private shared(): FlightAnswer {
    return this.tee ? { tee: this.tee, at: this.at } : { response: this.response, usage: this.usage, at: this.at };
  }
}

