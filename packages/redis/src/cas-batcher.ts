import type { RedisCommands } from './redis-client.js';
import { compareAndSet, compareAndSetSha } from './scripts.js';

/*
 * Why writes to different records share one command. A process deciding
 * over many keys at once (a limit per tenant, a circuit per model) has
 * many records' writes ready in the same turn of the event loop. Sent one
 * by one, each is a command of its own: its own socket write in the
 * client, its own read, parse and script call in Redis, its own reply;
 * on a busy machine that per-command cost, not the network, is what
 * bounds decisions per second. So the writes that become ready together
 * (in one task and the continuations it sets off: see `endOfTurn`) go out
 * as EVALSHAs of up to 16 keys each: a command per 16 decisions, not one
 * per decision. Nothing is lost for
 * exactness: each key still gets its own compare-and-set inside the
 * script, and a conflict on one never touches another.
 *
 * A cluster client sends each key alone: the keys of one script must
 * share a slot, and records are spread over slots on purpose.
 */

/** What the script said about one write: written, or the record it found instead. */
export type CasOutcome = { written: true } | { written: false; current: unknown };

/** Options of {@link casBatcher}. */
export interface CasBatcherOptions {
  /** Send each key in a command of its own (a cluster client). */
  oneKeyPerCall: boolean;
  /** Whether the next command should read the server's `TIME`. */
  wantsTime(): boolean;
  /** Receives the `TIME` a command read, with the local times around its round trip. */
  onTime(sentAt: number, receivedAt: number, serverMs: number): void;
}

/**
 * One queued compare-and-set of one record, and who waits for it; the
 * batcher reads the write from its fields once `prepare` said there is one,
 * and calls its methods. The request is its own write, so a decision
 * allocates nothing here.
 */
export interface CasRequest {
  /** The record's full Redis key. */
  readonly key: string;
  /** The version the new value was computed from; '' when the record was absent. */
  readonly expected: string;
  /** The new `<version>|<json>`; '' to only check the version (and refresh the TTL): the value is unchanged. */
  readonly record: string;
  /** The TTL in ms as the script reads it: '' for none, 0 or less to delete. */
  readonly ttl: string;
  /**
   * Computes the write as its command is about to go, so that what it
   * decides is decided as late as possible (after the rest of the turn);
   * false when there is nothing to write, and the request is done.
   */
  prepare(): boolean;
  /** Called when the write's command goes to the client: where its time with Redis starts. */
  sent(): void;
  /** Gets the write's outcome. */
  resolve(outcome: CasOutcome): void;
  /** Gets the failure of its command (the write may still have landed). */
  reject(error: unknown): void;
}

/** Queues one write. */
export type CasSend = (request: CasRequest) => void;

/**
 * Keys per command. Enough to make the per-command cost small beside the
 * per-key one; few enough that a turn's writes go out as several commands,
 * so Redis runs the first while the process still reads the replies to
 * others (one command for everything would leave one of the two idle
 * while the other works), and one script holds Redis only briefly.
 */
const maxKeysPerCall = 16;

const nextTick = (globalThis as { process?: { nextTick?: (callback: () => void) => void } }).process?.nextTick;

/**
 * When the writes queued so far go out: once the task that queued them and
 * every promise continuation it set off have run (Node's `nextTick` runs
 * after the microtask queue is drained). The replies to a whole batch
 * arrive in one socket read, and every decision they wake up queues its
 * next write within that drain, so they all still go out together; but in
 * the same turn of the event loop, not the next one. That matters for
 * node-redis, which defers its own socket write to `setImmediate`: flushed
 * at `setImmediate` too, a batch reached the socket a whole turn later than
 * over ioredis, which writes at once, and each of those turns is a pass of
 * the event loop (timers, I/O poll) that 64 callers wait through. Where
 * there is no `nextTick`, the end of the turn.
 */
const endOfTurn: (callback: () => void) => void =
  typeof nextTick === 'function'
    ? (callback) => nextTick(callback)
    : typeof globalThis.setImmediate === 'function'
      ? (callback) => void globalThis.setImmediate(callback)
      : (callback) => void setTimeout(callback, 0);

const int = (value: unknown): number => Number(value);
/** Every written outcome is alike: one object for all. */
const wrote: CasOutcome = Object.freeze({ written: true });

/**
 * Collects compare-and-set writes and sends those that became ready in
 * the same turn of the event loop as one script call.
 *
 * @param commands - the client's commands
 * @param options - cluster mode and the clock's sampling
 * @returns the function that queues one write
 */
export function casBatcher(commands: RedisCommands, options: CasBatcherOptions): CasSend {
  let queue: CasRequest[] = [];

  async function send(batch: CasRequest[]): Promise<void> {
    const time = options.wantsTime();
    const keys: string[] = [];
    const args: string[] = [time ? '1' : ''];
    for (const request of batch) {
      keys.push(request.key);
      args.push(request.expected, request.record, request.ttl);
    }
    const sentAt = Date.now();
    let reply: unknown[];
    try {
      const answer = commands.script(compareAndSet, compareAndSetSha, keys, args);
      for (const request of batch) request.sent();
      reply = (await answer) as unknown[];
    } catch (error) {
      for (const request of batch) request.reject(error);
      return;
    }
    if (time) options.onTime(sentAt, Date.now(), int(reply[0]) * 1000 + int(reply[1]) / 1000);
    for (let index = 0; index < batch.length; index++) {
      const request = batch[index] as CasRequest;
      const written = int(reply[2 + 2 * index]);
      const detail = reply[3 + 2 * index];
      if (written === 1) request.resolve(wrote);
      else if (written === 0) request.resolve({ written: false, current: detail });
      else request.reject(new Error(`Redis could not read ${request.key}: ${String(detail)}`));
    }
  }

  const flush = () => {
    // Requests queued by what runs below (a batch done at once starting the next) go in the next flush.
    const queued = queue;
    queue = [];
    const ready: CasRequest[] = [];
    for (const request of queued) {
      let write: boolean;
      try {
        write = request.prepare();
      } catch (error) {
        // Its own failure (a value JSON cannot write, say): the others of the turn still go.
        request.reject(error);
        continue;
      }
      if (write) ready.push(request);
    }
    const size = options.oneKeyPerCall ? 1 : maxKeysPerCall;
    if (ready.length <= size) {
      if (ready.length > 0) void send(ready);
      return;
    }
    for (let start = 0; start < ready.length; start += size) void send(ready.slice(start, start + size));
  };

  return (request) => {
    if (queue.length === 0) endOfTurn(flush);
    queue.push(request);
  };
}
