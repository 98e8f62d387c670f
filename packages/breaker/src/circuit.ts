/*
 * The circuit as pure functions over a plain-JSON record, so any Store can
 * hold it (a Redis store as well as the memory one) and every change goes
 * through `store.update`, which may run them more than once: nothing here
 * mutates its input or reads a clock.
 */
import { aheadOfClock } from '@sluice/core/kit';
import type { CircuitStateName, CloseReason, OpenReason } from './events.js';
import { countCall, type FailureRateRules, uncount } from './failure-window.js';

/**
 * The rules a circuit follows, every default filled in; internal.
 *
 * @example
 * ```ts
 * const rules: CircuitRules = { failures: 10, failureRate: undefined, openMs: 30_000, backoff: undefined, probes: 1 };
 * ```
 */
export interface CircuitRules {
  failures: number | false;
  failureRate: FailureRateRules | undefined;
  openMs: number;
  backoff: { factor: number; maxMs: number } | undefined;
  probes: number;
}

/**
 * One circuit as stored: plain JSON, constant size; internal.
 *
 * @example
 * ```ts
 * const record = await store.get<CircuitRecord>(`breaker:${key}`);
 * ```
 */
export interface CircuitRecord {
  state: CircuitStateName;
  /**
   * When it last closed or was reset (null: never): results of calls
   * admitted before then are dropped. A time rather than a counter, so a
   * call can be admitted without reading the record (see `breaker`).
   */
  closedAt: number | null;
  /** Consecutive failures. */
  failures: number;
  /** The failure-rate window: at most `buckets` entries of `[slice index, calls, failures]`. */
  window: Array<[slice: number, calls: number, failures: number]>;
  openedAt: number | null;
  /** When an open circuit turns half-open; null when closed or isolated. */
  openUntil: number | null;
  /** The current (or last) open time. */
  openMs: number | null;
  reason: OpenReason | null;
  /** Openings since the last close, for `backoff`. */
  trips: number;
  /** Probes in flight: `[id, admitted at]`. */
  probes: Array<[id: string, at: number]>;
  /** Probes that succeeded in this half-open spell. */
  passed: number;
  /** Results counted since the circuit last closed; a stream's later cut checks it (see {@link Mark}). */
  judged: number;
}

/**
 * What a call was admitted as: a normal call of a closed circuit, or a probe; internal.
 *
 * @example
 * ```ts
 * const ticket: Ticket = { kind: 'call', at: Date.now() };
 * ```
 */
export type Ticket = { kind: 'call'; at: number } | { kind: 'probe'; id: string };

/**
 * A state change, turned into an event by the middleware; internal.
 *
 * @example
 * ```ts
 * const change: Transition = { to: 'closed', reason: 'probe-succeeded' };
 * ```
 */
export type Transition =
  | { to: 'open'; reason: OpenReason; failures: number; openMs: number }
  | { to: 'half-open' }
  | { to: 'closed'; reason: CloseReason };

/**
 * How a call ended, for the circuit; internal.
 *
 * @example
 * ```ts
 * const outcome: CallOutcome = 'ignore'; // a 429: neither way
 * ```
 */
export type CallOutcome = 'success' | 'failure' | 'ignore';

/**
 * The result of one transition function; internal.
 *
 * @example
 * ```ts
 * const { record, transitions }: Step = isolate(undefined, Date.now());
 * ```
 */
export interface Step {
  record: CircuitRecord;
  transitions: Transition[];
  /** Set when a normal call's success was counted: what a later failure of the same call amends. */
  mark?: Mark;
}

/**
 * Where a success was counted, so a failure of the same call found later
 * (a stream cut after the upstream accepted it) replaces it rather than
 * counting a second call; internal.
 *
 * @example
 * ```ts
 * const { mark } = settle(current, ticket, 'success', now, rules);
 * settle(later, ticket, 'failure', now + 5_000, rules, { amends: mark });
 * ```
 */
export interface Mark {
  /** The clock's time it was counted at: its slice of the window. */
  at: number;
  /** The record's `judged` right after it, to tell whether anything was counted since. */
  judged: number;
  /** The consecutive failures it interrupted. */
  run: number;
}

/**
 * A probe slot held this long is taken back: with a shared store, the
 * process holding it may have died; in-process, a stream nobody reads.
 * Internal.
 *
 * @example
 * ```ts
 * const abandoned = now - at >= probeLeaseMs;
 * ```
 */
export const probeLeaseMs = 5 * 60_000;

const fresh = (closedAt: number | null = null): CircuitRecord => ({
  state: 'closed', closedAt, failures: 0, window: [], openedAt: null, openUntil: null,
  openMs: null, reason: null, trips: 0, probes: [], passed: 0, judged: 0,
});

// Written out rather than spread (a clone, then three fields written
// again): every call a breaker settles copies its circuit. The window's
// slices and the probes are copied too, since settling changes them in place.
const copy = (record: CircuitRecord | undefined): CircuitRecord =>
  record && isCircuitRecord(record)
    ? {
        state: record.state, closedAt: record.closedAt, failures: record.failures,
        window: record.window.length === 0 ? [] : record.window.map(copySlice),
        openedAt: record.openedAt, openUntil: record.openUntil, openMs: record.openMs, reason: record.reason,
        trips: record.trips, probes: record.probes.length === 0 ? [] : record.probes.map(copyProbe),
        passed: record.passed, judged: record.judged ?? 0,
      }
    : fresh();

/**
 * The record a change works on: the stored one itself when the store hands
 * it over to be changed in place (a record a breaker's settlement wrote
 * through the memory store, checked still), else a copy.
 */
const own = (current: CircuitRecord | undefined, inPlace: true | undefined): CircuitRecord => {
  if (!inPlace || current === undefined || !isCircuitRecord(current)) return copy(current);
  current.judged ??= 0;
  return current;
};

const states: ReadonlySet<unknown> = new Set(['closed', 'open', 'half-open', 'isolated']);
const reasons: ReadonlySet<unknown> = new Set(['consecutive', 'failure-rate', 'probe-failed', 'isolated']);
const count = (value: unknown) => typeof value === 'number' && value >= 0 && value < Infinity;
const timeOrNull = (value: unknown) => value === null || (typeof value === 'number' && Number.isFinite(value));

/**
 * Whether a stored value is a circuit this version can trust; internal.
 * Anything else (another build's record in a shared store, a hand edit, a
 * bad write) is read as no record, a closed circuit, which the calls'
 * results then open again if the upstream is down. Before, an open circuit
 * whose `openUntil` was not a number was never due, and a half-open one
 * whose `passed` was 1e308 never took a probe: the circuit refused every
 * call for as long as calls kept its record alive.
 *
 * @param value - what the store holds
 */
export function isCircuitRecord(value: unknown): value is CircuitRecord {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const { window, probes } = record;
  if (!states.has(record.state) || !(record.reason === null || reasons.has(record.reason))) return false;
  if (!timeOrNull(record.closedAt) || !timeOrNull(record.openedAt) || !timeOrNull(record.openUntil) || !timeOrNull(record.openMs)) return false;
  if (!count(record.failures) || !count(record.trips) || !count(record.passed) || !(record.judged === undefined || count(record.judged))) return false;
  // An open circuit turns half-open at its openUntil: without one it would never be due.
  if (record.state === 'open' && record.openUntil === null) return false;
  if (!Array.isArray(window) || !Array.isArray(probes)) return false;
  for (const slice of window as unknown[]) {
    if (!Array.isArray(slice) || !Number.isFinite(slice[0]) || !count(slice[1]) || !count(slice[2])) return false;
  }
  for (const probe of probes as unknown[]) {
    if (!Array.isArray(probe) || typeof probe[0] !== 'string' || !Number.isFinite(probe[1])) return false;
  }
  return true;
}

const copySlice = (slice: [number, number, number]): [number, number, number] => [slice[0], slice[1], slice[2]];
const copyProbe = (probe: [string, number]): [string, number] => [probe[0], probe[1]];

/**
 * An open circuit whose time is over is half-open, whether or not a call
 * has noticed yet; internal. So is one that opened, by the clock, well in
 * the future: the clock stepped back past its opening, and waiting for
 * `openUntil` would keep it open for as long as the step.
 */
export const isDue = (record: CircuitRecord, now: number) =>
  record.state === 'open' && record.openUntil !== null && (now >= record.openUntil || (record.openedAt !== null && aheadOfClock(record.openedAt, now)));

/** Whether a probe that started at `at` still holds its slot: not abandoned, and not stamped past a clock that stepped back; internal. */
export const probeHeld = (at: number, now: number) => now - at < probeLeaseMs && !aheadOfClock(at, now);

/**
 * Lets a call in or not; internal. `changed` says whether the record must
 * be written (a probe slot taken, or the turn to half-open); a closed or
 * still-open circuit admits or rejects from a plain read.
 *
 * @param current - the stored circuit, if any
 * @param id - a unique id for this call, naming its probe slot
 * @param now - the clock's time
 * @param rules - the breaker's rules
 * @returns the new record, the ticket (undefined: fail fast) and the transitions
 * @example
 * ```ts
 * const { ticket } = admit(await store.get(key), 'call_1#1', Date.now(), rules);
 * ```
 */
export function admit(
  current: CircuitRecord | undefined,
  id: string,
  now: number,
  rules: CircuitRules,
): Step & { ticket: Ticket | undefined; changed: boolean } {
  const record = copy(current);
  const transitions: Transition[] = [];
  if (isDue(record, now)) {
    Object.assign(record, { state: 'half-open', probes: [], passed: 0 });
    transitions.push({ to: 'half-open' });
  }
  if (record.state === 'closed') return { record, transitions, ticket: { kind: 'call', at: now }, changed: false };
  if (record.state !== 'half-open') return { record, transitions, ticket: undefined, changed: false };
  record.probes = record.probes.filter(([, at]) => probeHeld(at, now));
  // As many passed as it takes and none in flight, yet not closed: no record this code writes (another
  // process's with more probes, or a bad write). Counted afresh, or it would refuse every call for good.
  if (record.probes.length === 0 && record.passed >= rules.probes) record.passed = 0;
  if (record.probes.length + record.passed >= rules.probes) {
    return { record, transitions, ticket: undefined, changed: transitions.length > 0 };
  }
  record.probes.push([id, now]);
  return { record, transitions, ticket: { kind: 'probe', id }, changed: true };
}

/**
 * What the middleware knows about a call beyond its outcome; internal.
 *
 * - `pending`: the other calls of this circuit still in flight in this
 *   process, admitted and not yet judged. The failure rate trips only when
 *   it would be reached even if every one of them succeeded (see `settle`).
 * - `amends`: set when a failure replaces the success this call was
 *   counted as earlier (a stream judged when the upstream accepted it, then
 *   cut): the {@link Mark} that success left.
 */
export interface SettleContext {
  pending?: number;
  amends?: Mark;
}

/**
 * Records how an admitted call ended; internal.
 *
 * Why the rate guard: failures often come back faster than successes (a
 * 503 or a reset returns at once, an answer takes its generation time), so
 * with many calls in flight the first calls judged are mostly failures
 * even when the upstream fails a few of them. The window's rate is the
 * share of failures among calls judged so far, and `minimumCalls` counts
 * judged calls only; on top of that, the circuit opens on the rate only
 * when `failures / (calls + pending) >= threshold`: the threshold is
 * reached even if every call still in flight turned out a success. A
 * circuit that must open still does, as soon as the failures alone prove it.
 *
 * @param current - the stored circuit, if any
 * @param ticket - what {@link admit} gave the call
 * @param outcome - success, failure, or neither
 * @param now - the clock's time
 * @param rules - the breaker's rules
 * @param context - calls still in flight, and the success a failure replaces
 * @param inPlace - `current` may be changed and returned (see `InPlaceReducer` in core); else it is copied
 * @example
 * ```ts
 * const { record, transitions } = settle(current, ticket, 'failure', Date.now(), rules, { pending: 3 });
 * ```
 */
export function settle(
  current: CircuitRecord | undefined,
  ticket: Ticket,
  outcome: CallOutcome,
  now: number,
  rules: CircuitRules,
  context: SettleContext = {},
  inPlace?: true,
): Step {
  const record = own(current, inPlace);
  if (ticket.kind === 'probe') return settleProbe(record, ticket.id, outcome, now, rules);
  // A result from before the circuit last opened, closed or was reset says nothing about it now.
  const stale = record.closedAt !== null && ticket.at < record.closedAt;
  if (record.state !== 'closed' || stale || outcome === 'ignore') return { record, transitions: [] };
  const failed = outcome === 'failure';
  const { amends } = context;
  const run = record.failures;
  // A failure replacing a success that was the last result counted rejoins
  // the run that success interrupted: cut after cut still trips the circuit.
  if (failed && amends && amends.judged === record.judged) record.failures = amends.run + 1;
  else record.failures = failed ? record.failures + 1 : 0;
  record.judged += 1;
  const mark: Mark | undefined = failed ? undefined : { at: now, judged: record.judged, run };
  if (rules.failures !== false && failed && record.failures >= rules.failures) {
    return { record, transitions: [open(record, now, 'consecutive', record.failures, rules)] };
  }
  const rate = rules.failureRate;
  if (!rate) return { record, transitions: [], mark };
  if (amends) uncount(record, amends.at, rate);
  const tally = countCall(record, now, failed, rate);
  const pending = Math.max(0, context.pending ?? 0);
  if (tally.calls >= rate.minimumCalls && tally.failures / (tally.calls + pending) >= rate.threshold) {
    return { record, transitions: [open(record, now, 'failure-rate', tally.failures, rules)] };
  }
  return { record, transitions: [], mark };
}

function settleProbe(record: CircuitRecord, id: string, outcome: CallOutcome, now: number, rules: CircuitRules): Step {
  const index = record.probes.findIndex(([probe]) => probe === id);
  // Reset, isolated, or its slot taken back meanwhile: nothing to release.
  if (record.state !== 'half-open' || index < 0) return { record, transitions: [] };
  record.probes.splice(index, 1);
  if (outcome === 'failure') {
    record.failures += 1;
    return { record, transitions: [open(record, now, 'probe-failed', record.failures, rules)] };
  }
  if (outcome === 'success') {
    record.passed += 1;
    record.failures = 0;
    if (record.passed >= rules.probes) {
      Object.assign(record, fresh(now));
      return { record, transitions: [{ to: 'closed', reason: 'probe-succeeded' }] };
    }
  }
  return { record, transitions: [] };
}

/**
 * Holds the circuit open until {@link reset}; internal.
 *
 * @param current - the stored circuit, if any
 * @param now - the clock's time
 * @example
 * ```ts
 * isolate(undefined, Date.now()).record.state; // 'isolated'
 * ```
 */
export function isolate(current: CircuitRecord | undefined, now: number): Step {
  const record = copy(current);
  if (record.state === 'isolated') return { record, transitions: [] };
  Object.assign(record, { state: 'isolated', openedAt: now, openUntil: null, openMs: null, reason: 'isolated', probes: [], passed: 0 });
  return { record, transitions: [{ to: 'open', reason: 'isolated', failures: record.failures, openMs: Infinity }] };
}

/**
 * Closes the circuit and forgets its history; internal.
 *
 * @param current - the stored circuit, if any
 * @param now - the clock's time
 * @example
 * ```ts
 * reset(current, Date.now()).record.state; // 'closed'
 * ```
 */
export function reset(current: CircuitRecord | undefined, now: number): Step {
  const record = fresh(now);
  const wasClosed = current === undefined || current.state === 'closed';
  return { record, transitions: wasClosed ? [] : [{ to: 'closed', reason: 'reset' }] };
}

/**
 * A closed circuit holding a run of consecutive failures keeps it this long
 * after its last result: a run is about consecutive calls, not about time,
 * so a slow trickle of failures still adds up, yet a circuit nobody calls
 * is forgotten. Internal.
 *
 * @example
 * ```ts
 * lifetimeMs(record, now, rules) <= runMemoryMs;
 * ```
 */
export const runMemoryMs = 60 * 60_000;

/**
 * An isolated circuit is held open until it is reset by hand, yet every
 * record in a store expires: one left isolated this long closes. Internal.
 *
 * @example
 * ```ts
 * lifetimeMs(isolate(undefined, now).record, now, rules) === isolationMs;
 * ```
 */
export const isolationMs = 7 * 24 * 60 * 60_000;

/**
 * How long the store keeps a circuit after a change, by its state, so no
 * record lives forever; internal.
 *
 * - closed, with nothing to remember but its window: the window (`windowMs`),
 *   or `openMs` without one: long enough to drop late results of calls sent
 *   before it last closed;
 * - closed with a run of failures: {@link runMemoryMs} (or the window, if longer);
 * - open: until it turns half-open, plus a margin (the longest open time, at
 *   least the probe lease) for a probe to come and for `backoff` to remember
 *   its trips; a circuit nobody calls in that margin is forgotten, closed;
 * - half-open: that margin again from its last change (a probe taken);
 * - isolated: {@link isolationMs}.
 *
 * @param record - the circuit after the change
 * @param now - the clock's time
 * @param rules - the breaker's rules
 * @example
 * ```ts
 * await store.update(key, reducer, (next) => lifetimeMs(next, now, rules));
 * ```
 */
export function lifetimeMs(record: CircuitRecord, now: number, rules: CircuitRules): number {
  const windowMs = rules.failureRate?.windowMs ?? 0;
  const marginMs = Math.max(probeLeaseMs, rules.backoff?.maxMs ?? rules.openMs);
  switch (record.state) {
    case 'closed':
      return Math.max(windowMs, record.failures > 0 ? runMemoryMs : rules.openMs);
    case 'open':
      return Math.max(0, (record.openUntil ?? now) - now) + marginMs;
    case 'half-open':
      return marginMs;
    default:
      return isolationMs;
  }
}

function open(record: CircuitRecord, now: number, reason: OpenReason, failures: number, rules: CircuitRules): Transition {
  const trips = record.trips + 1;
  const { backoff } = rules;
  const openMs = backoff ? Math.min(rules.openMs * backoff.factor ** (trips - 1), backoff.maxMs) : rules.openMs;
  // The window starts empty after the circuit closes again, as in Resilience4j.
  Object.assign(record, { state: 'open', openedAt: now, openUntil: now + openMs, openMs, reason, trips, window: [], probes: [], passed: 0 });
  return { to: 'open', reason, failures, openMs };
}
