import { StoreError, type TimeToLive } from '@sluice/core';
import type { CasOutcome, CasRequest, CasSend } from './cas-batcher.js';
import { DeadlineNode, type DeadlineQueue } from './store-deadline.js';

/*
 * One record's life in this process, without a promise or a closure of its
 * own per decision: the record's last known value and the updates queued
 * on it live on one object (its lane), and the batch in flight is one
 * attempt object that the batcher prepares, sends and answers by method
 * calls, and that the deadline queue links into its list. At tens of
 * thousands of decisions a second, the async functions, closures and
 * per-write objects this replaced were most of a decision's CPU and
 * garbage. The rules are the ones at the top of redis-store.ts.
 */

/** One caller's update, waiting for its outcome. */
export interface Pending {
  reducer: (current: unknown) => unknown;
  ttl: TimeToLive<unknown> | undefined;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /** The reducer's result, or what it threw when `failed`. */
  result: unknown;
  failed: boolean;
}

/** What an attempt needs of its store. */
export interface LaneContext {
  readonly cas: CasSend;
  readonly deadlines: DeadlineQueue;
  /** A version no other write of any process has used. */
  nextVersion(): string;
  /** The error of a write Redis did not answer in time. */
  timedOut(): StoreError;
  /** The error of a failed write, with its cause. */
  unavailable(message: string, cause?: unknown): StoreError;
}

/**
 * A record's JSON as its value; `undefined` (no record) when it does not
 * parse: text another program or a bad write left at the key. Read as
 * absent, it is replaced by the next write, which compares its version as
 * usual; thrown, it failed every call on the key for good (a budget's
 * `STORE_UNAVAILABLE`, "Redis failed", while Redis was fine); internal.
 *
 * @param json - the text after the version bar
 */
export function parseRecord(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}

/** Where a stored `<version>|<json>` splits: the bar's index, or -1 for an absent or foreign value (no version before a bar). */
export function recordBar(raw: unknown): number {
  const bar = typeof raw === 'string' ? raw.indexOf('|') : -1;
  return bar < 1 ? -1 : bar;
}

/** Conflicts in a row before a batch fails: another process writing the record without pause. */
const maxConflicts = 64;
/** Updates of one record written as one batch at most. */
const maxBatch = 512;

/** One record: the last `<version>|<json>` this process wrote or read, and the updates queued on it. */
export class Lane {
  /** Whether `version` and `json` hold what Redis last had as far as this process knows. */
  known = false;
  version = '';
  json = '';
  /**
   * `json` parsed, once something needed it (or the value it was written
   * from): reducers get it as the memory store gives them its values, to
   * read, never to change; parsing it again for every decision was a fifth
   * of a decision's CPU.
   */
  value: unknown = undefined;
  parsed = false;
  /** Updates waiting for the batch in flight. */
  queue: Pending[] = [];
  /** An emptied batch array, for the next batch. */
  spare: Pending[] = [];
  /** The batch being written, if any. */
  inFlight: Attempt | undefined = undefined;
  /** Used since the eviction hand last passed it. */
  used = true;

  constructor(readonly key: string) {}

  /** Takes what Redis answered (`<version>|<json>`, or '' for absent) as the record's latest value. */
  remember(raw: unknown): void {
    const bar = recordBar(raw);
    if (bar === -1) return this.forget();
    this.known = true;
    this.version = (raw as string).slice(0, bar);
    this.json = (raw as string).slice(bar + 1);
    this.value = undefined;
    this.parsed = false;
  }

  /** Drops the remembered value: the next update writes against an absent record and learns the real one. */
  forget(): void {
    this.known = false;
    this.version = this.json = '';
    this.value = undefined;
    this.parsed = false;
  }

  /** Queues `pending`, and starts a batch when none is in flight. */
  push(context: LaneContext, pending: Pending): void {
    this.queue.push(pending);
    if (!this.inFlight) this.next(context);
  }

  /** Starts the next batch from the queue, if any. */
  next(context: LaneContext): void {
    if (this.queue.length === 0) return;
    let batch = this.queue;
    if (batch.length <= maxBatch) {
      // The emptied array of the last batch takes the queue's place (finish() gives it back).
      this.queue = this.spare;
    } else {
      batch = this.queue.splice(0, maxBatch);
    }
    const attempt = new Attempt(context, this, batch);
    this.inFlight = attempt;
    context.cas(attempt);
  }
}

/**
 * The write of one batch of one record's updates, retried on conflict:
 * the request the batcher prepares and sends, and the deadline node that
 * bounds the batch's wait from its first write.
 */
class Attempt extends DeadlineNode implements CasRequest {
  readonly key: string;
  expected = '';
  record = '';
  ttl = '';
  private conflicts = 0;
  /** The lane's value was just read by the script (a conflict's answer). */
  private fresh = false;
  private done = false;
  private started = false;
  private version = '';
  private json = '';
  private value: unknown = undefined;

  constructor(
    private readonly context: LaneContext,
    private readonly lane: Lane,
    private readonly batch: Pending[],
  ) {
    super();
    this.key = lane.key;
  }

  /** Runs the reducers over the remembered value: as the write is about to go, not when it queued. */
  prepare(): boolean {
    if (this.done) return false;
    const { lane, batch } = this;
    let value: unknown;
    if (lane.known) {
      if (!lane.parsed) {
        lane.value = parseRecord(lane.json);
        lane.parsed = true;
      }
      value = lane.value;
    }
    let ttl: TimeToLive<unknown> | undefined;
    let changed = false;
    for (const pending of batch) {
      try {
        const next = pending.reducer(value);
        pending.result = value = next;
        pending.failed = false;
        ttl = pending.ttl;
        changed = true;
      } catch (error) {
        // A reducer that throws fails its own caller and writes nothing, as in the memory store.
        pending.result = error;
        pending.failed = true;
      }
    }
    if (!changed) {
      // Every reducer threw: nothing to write.
      this.finish();
      return false;
    }
    const ttlMs = typeof ttl === 'function' ? ttl(value) : ttl;
    const ttlArg = (this.ttl = ttlMs === undefined || !(ttlMs >= 0) ? '' : String(Math.ceil(ttlMs)));
    const json = (this.json = JSON.stringify(value) ?? 'null');
    this.value = value;
    // Unchanged: no new version, so other processes' remembered one stays good and they do not conflict.
    if (lane.known && json === lane.json && ttlArg !== '' && ttlMs! > 0) {
      if (this.fresh) {
        // Decided at the moment of the read that just answered: no round trip.
        this.finish();
        return false;
      }
      this.version = this.expected = lane.version;
      this.record = '';
      return true;
    }
    this.version = this.context.nextVersion();
    this.expected = lane.known ? lane.version : '';
    this.record = `${this.version}|${json}`;
    return true;
  }

  sent(): void {
    // The batch's time with Redis starts at its first write; a retry runs on the same deadline.
    if (this.started) return;
    this.started = true;
    this.context.deadlines.start(this);
  }

  resolve(outcome: CasOutcome): void {
    if (this.done) return;
    const { lane } = this;
    if (!outcome.written) {
      lane.remember(outcome.current);
      if (++this.conflicts >= maxConflicts) {
        return this.fail(this.context.unavailable(`Redis record ${this.key} changed under ${maxConflicts} attempts in a row`));
      }
      this.fresh = true;
      this.context.cas(this);
      return;
    }
    if (this.ttl !== '' && Number(this.ttl) <= 0) {
      lane.forget();
    } else {
      lane.known = true;
      lane.version = this.version;
      lane.json = this.json;
      lane.value = this.value;
      lane.parsed = true;
    }
    this.finish();
  }

  reject(error: unknown): void {
    if (this.done) return;
    this.fail(error instanceof StoreError ? error : this.context.unavailable('Redis failed', error));
  }

  /** The batch's deadline passed: its callers fail, and the lane moves on without waiting for the reply. */
  expire(): void {
    if (!this.done) this.fail(this.context.timedOut());
  }

  /** Fails every caller of the batch. The write may still land: the lane forgets its version and reads what is there next time. */
  private fail(error: StoreError): void {
    this.lane.forget();
    for (const pending of this.batch) {
      pending.result = error;
      pending.failed = true;
    }
    this.finish();
  }

  /** Answers every caller with its outcome, and starts the lane's next batch. */
  private finish(): void {
    this.done = true;
    if (this.started) this.context.deadlines.cancel(this);
    const { lane, batch } = this;
    for (const pending of batch) {
      if (pending.failed) pending.reject(pending.result);
      else pending.resolve(pending.result);
    }
    batch.length = 0;
    lane.spare = batch;
    lane.inFlight = undefined;
    lane.next(this.context);
  }
}
