import { usdAmount } from './usage-tokens.js';

/*
 * The stored state of one budget limit for one key and period, and the
 * pure updates the budget applies to it with `store.update` (atomic; a
 * distributed store may run an update more than once, so each is a pure
 * function of the current value and of its arguments, `now` included).
 * Plain JSON.
 *
 * Calls in flight are not kept one by one: a call's hold is added to the
 * *slot* its hold expires in (slots are a fixed width on the clock), and
 * the call remembers its own amount and slot to settle. A record therefore
 * holds at most (longest hold / slot width) + 2 slots however many calls
 * are in flight, and reserving or settling reads and copies that many
 * numbers: the cost of a call is flat in the number of calls in flight.
 * Why each guarantee of the per-call design survives:
 *
 * - No overspend: admission still compares spent + held + the call's
 *   worst case with the limit in one atomic update, and the sum over
 *   slots is the sum over the holds they aggregate.
 * - A crashed process's holds expire: every update first drops the slots
 *   whose end has passed, which releases what they held.
 * - Nothing is released twice: a dropped slot never comes back, since a
 *   new hold always ends after `now`, so a settlement that finds its slot
 *   gone (expired, hence already released) subtracts nothing. A slot
 *   counts its holds and disappears when the last is settled, so
 *   floating-point residue never accumulates, and its amount is clamped
 *   at 0. Each hold is settled once: the middleware settles once per call.
 * - `warned` thresholds are claimed by the hold id whose settlement
 *   crossed them, so `budget-warning` fires once per threshold per period,
 *   across processes too; `admitted` names the hold the update admitted,
 *   which is how the caller learns that its reservation went through.
 *
 * In place. On the memory store, `budget` lets these updates change the
 * record they wrote last rather than copy it (`keyedState`'s `inPlace`):
 * told so, {@link reserveHold} and {@link settleHold} change the record's
 * `holds` and numbers where they are. What they return otherwise shares
 * nothing they might change with the record they were given: `holds` is
 * always a new array then, and `warned` is never changed in place (a
 * threshold claimed gets a new object; that happens a few times a period).
 *
 * Records written before slots (`{ spentUsd, holds: { [id]: usd }, warned }`,
 * no `v`) are read as one slot, ending where the caller's hold ends, that
 * holds all of their holds: they are then released on that slot's expiry.
 * Records of the first slotted shape (`v: 2`, `holds: { [slot end]: [usd,
 * count] }`) are read slot for slot.
 */

/** One limit's spend in one period; internal. */
export interface BudgetBucket {
  v: 3;
  spentUsd: number;
  /**
   * What calls in flight hold, by slot, flat: `[slot end (epoch ms), usd,
   * number of holds, …]`, three numbers a slot. Flat rather than an object
   * keyed by slot: a copy is one array of numbers, where an object with
   * timestamps for keys was rebuilt key by key and each key parsed back
   * into a number on every read.
   */
  holds: number[];
  /** Thresholds crossed this period, each with the hold id that crossed it. */
  warned: Record<string, string>;
  /**
   * The hold id the update that wrote this record admitted, if it admitted
   * one. A settlement changing the record in place sets it to `undefined`
   * (which JSON leaves out) rather than deleting it.
   */
  admitted?: string | undefined;
}

/** One call's reservation in one limit, as the call remembers it to settle; internal. */
export interface Hold {
  id: string;
  /** What was reserved. */
  usd: number;
  /** The end of the slot it is held in (epoch ms). */
  slot: number;
}

// Floating-point sums of prices must not refuse a call that fits exactly.
const tolerance = 1e-9;

/** Slots per hold lifetime: the record holds at most this many slots, plus 2. */
const slotsPerHold = 16;

const empty = (): BudgetBucket => ({ v: 3, spentUsd: 0, holds: [], warned: {} });

/**
 * Where a hold made at `now` ends: at the call's deadline (and one slot of
 * grace for the settlement to land) when it has one, never later than
 * `holdMs`, rounded up to the end of a slot `holdMs / 16` wide; internal.
 *
 * @param now - `ctx.clock.now()`
 * @param holdMs - the longest a hold lives
 * @param deadline - `ctx.deadline`, if the call has one
 * @example
 * ```ts
 * holdSlot(Date.UTC(2026, 10, 25, 10, 0, 10), 960_000, undefined); // 10:16:00 (slots of 60 s)
 * ```
 */
export function holdSlot(now: number, holdMs: number, deadline: number | undefined): number {
  const width = Math.max(1_000, Math.ceil(holdMs / slotsPerHold));
  const ends = deadline === undefined ? now + holdMs : Math.min(Math.max(deadline, now) + width, now + holdMs);
  return Math.ceil((ends + 1) / width) * width;
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value > 0;

/** Whether a stored slot is a slot end still ahead of `now`, an amount ≥ 0 and a count ≥ 1. */
function cleanSlot(slot: unknown, usd: unknown, count: unknown, now: number): boolean {
  return typeof slot === 'number' && slot > now && usdAmount(usd) === usd && isCount(count);
}

function cleanWarned(warned: unknown): Record<string, string> {
  const clean: Record<string, string> = {};
  if (typeof warned !== 'object' || warned === null) return clean;
  for (const [threshold, by] of Object.entries(warned)) if (typeof by === 'string') clean[threshold] = by;
  return clean;
}

/** Whether every stored `warned` entry is a hold id (checked without copying). */
function isCleanWarned(warned: unknown): warned is Record<string, string> {
  if (typeof warned !== 'object' || warned === null) return false;
  for (const threshold in warned) if (typeof (warned as Record<string, unknown>)[threshold] !== 'string') return false;
  return true;
}

/**
 * The stored record, validated, without the slots that ended by `now`.
 * A store that lost precision, a corrupted record (JSON turns NaN into
 * null) or a record of an earlier shape must not turn the limit's
 * arithmetic into NaN, where no comparison refuses anything. A clean
 * record with nothing expired is returned as it is, checked in one pass
 * that copies nothing: this runs twice on every call a budget admits.
 */
function readBucket(current: BudgetBucket | undefined, now: number, legacySlot: number): BudgetBucket {
  if (current === undefined || current === null || typeof current !== 'object') return empty();
  const spentUsd = usdAmount(current.spentUsd) ?? 0;
  const stored: unknown = current.holds;
  if (current.v !== 3) return earlierShape(current as { v?: unknown; warned?: unknown }, stored, spentUsd, now, legacySlot);
  const flat: unknown[] = Array.isArray(stored) ? stored : [];
  let clean = spentUsd === current.spentUsd && flat === stored && flat.length % 3 === 0 && isCleanWarned(current.warned);
  for (let at = 0; clean && at < flat.length; at += 3) clean = cleanSlot(flat[at], flat[at + 1], flat[at + 2], now);
  if (clean) return current;
  const holds: number[] = [];
  for (let at = 0; at + 2 < flat.length; at += 3) {
    if (cleanSlot(flat[at], flat[at + 1], flat[at + 2], now)) holds.push(flat[at] as number, flat[at + 1] as number, flat[at + 2] as number);
  }
  return { v: 3, spentUsd, holds, warned: cleanWarned(current.warned) };
}

/** A record of an earlier shape, read into the current one: slot by slot (`v: 2`), or all its holds in one slot (before slots). */
function earlierShape(current: { v?: unknown; warned?: unknown }, stored: unknown, spentUsd: number, now: number, legacySlot: number): BudgetBucket {
  const holds: number[] = [];
  const warned = cleanWarned(current.warned);
  if (typeof stored !== 'object' || stored === null) return { v: 3, spentUsd, holds, warned };
  if (current.v === 2) {
    for (const [slot, entry] of Object.entries(stored)) {
      const [usd, count] = Array.isArray(entry) && entry.length === 2 ? entry : [];
      if (cleanSlot(Number(slot), usd, count, now)) holds.push(Number(slot), usd as number, count as number);
    }
    return { v: 3, spentUsd, holds, warned };
  }
  // Before slots: one hold per call id, with no end of its own.
  let usd = 0;
  let count = 0;
  for (const amount of Object.values(stored)) {
    usd += usdAmount(amount) ?? 0;
    count += 1;
  }
  if (count > 0) holds.push(legacySlot, usd, count);
  return { v: 3, spentUsd, holds, warned };
}

/** Where `slot`'s three numbers start in `holds`, or -1. */
function slotAt(holds: readonly number[], slot: number): number {
  for (let at = 0; at < holds.length; at += 3) if (holds[at] === slot) return at;
  return -1;
}

/**
 * `holds` with the slot at `at` (from {@link slotAt}) holding `usd` and
 * `count`, or left out when count is 0: a new array, the stored one untouched.
 */
function withSlot(holds: readonly number[], at: number, usd: number, count: number): number[] {
  const copy = holds.slice();
  if (count > 0) {
    copy[at + 1] = usd;
    copy[at + 2] = count;
  } else {
    copy.splice(at, 3);
  }
  return copy;
}

/**
 * The worst-case cost held by calls in flight, as stored; internal.
 *
 * @param bucket - a limit's stored state
 * @example
 * ```ts
 * heldUsd({ v: 3, spentUsd: 1, holds: [1764064560000, 0.3, 2], warned: {} }); // 0.3
 * ```
 */
export function heldUsd(bucket: BudgetBucket): number {
  let sum = 0;
  for (let at = 1; at < bucket.holds.length; at += 3) sum += bucket.holds[at] as number;
  return sum;
}

/**
 * Each slot a bucket holds, as `[slot end, usd, count]`; internal (for tests and reports).
 *
 * @param bucket - a limit's stored state
 */
export function slotsOf(bucket: Pick<BudgetBucket, 'holds'>): Array<[slot: number, usd: number, count: number]> {
  const slots: Array<[number, number, number]> = [];
  for (let at = 0; at + 2 < bucket.holds.length; at += 3) slots.push([bucket.holds[at] as number, bucket.holds[at + 1] as number, bucket.holds[at + 2] as number]);
  return slots;
}

/**
 * Adds `hold` if it fits under `limitUsd` (or always, with `force`); the
 * result's `admitted` is `hold.id` exactly when it was admitted; internal.
 *
 * @param hold - the call's hold id, worst-case cost and slot
 * @param limitUsd - the limit
 * @param force - hold even past the limit (`onExceed: 'warn'`)
 * @param now - the caller's `clock.now()`: slots that ended by then are dropped
 * @example
 * ```ts
 * const bucket = await store.update(key, reserveHold(hold, 5, false, now), ttlMs);
 * const admitted = bucket.admitted === hold.id;
 * ```
 */
export function reserveHold(hold: Hold, limitUsd: number, force: boolean, now: number) {
  return (current: BudgetBucket | undefined, inPlace?: true): BudgetBucket => {
    const bucket = readBucket(current, now, hold.slot);
    // An amount that is not a price is never admitted, even forced: held, it would disable the limit.
    if (usdAmount(hold.usd) === undefined || !(hold.slot > now)) return bucket;
    if (!force && bucket.spentUsd + heldUsd(bucket) + hold.usd > limitUsd + tolerance) return bucket;
    const at = slotAt(bucket.holds, hold.slot);
    // A record read afresh (an expired slot dropped, an earlier shape) is this update's own too.
    if (inPlace || bucket !== current) {
      const { holds } = bucket;
      if (at < 0) holds.push(hold.slot, hold.usd, 1);
      else {
        holds[at + 1] = (holds[at + 1] as number) + hold.usd;
        holds[at + 2] = (holds[at + 2] as number) + 1;
      }
      bucket.admitted = hold.id;
      return bucket;
    }
    const holds =
      at < 0
        ? [...bucket.holds, hold.slot, hold.usd, 1]
        : withSlot(bucket.holds, at, (bucket.holds[at + 1] as number) + hold.usd, (bucket.holds[at + 2] as number) + 1);
    return { v: 3, spentUsd: bucket.spentUsd, holds, warned: bucket.warned, admitted: hold.id };
  };
}

/**
 * Settles a call: takes its hold out of its slot (when `held`: the call
 * did reserve here, and the slot has not expired) and adds the real cost
 * `usd` to the spend, claiming every threshold in `warnAt` the new spend
 * crosses; internal. A cost that is not a finite amount ≥ 0 is charged as
 * what the hold reserved: never NaN, and never less than the call may have cost.
 *
 * @param hold - the call's hold
 * @param held - whether the reservation was written here (false when the store failed open at admission)
 * @param usd - what the call really cost (0 releases the hold)
 * @param limitUsd - the limit
 * @param warnAt - thresholds, as shares of the limit
 * @param now - the caller's `clock.now()`
 * @example
 * ```ts
 * const bucket = await store.update(key, settleHold(hold, true, 0.03, 5, [0.8], now), ttlMs);
 * const crossed = Object.entries(bucket.warned).filter(([, by]) => by === hold.id);
 * ```
 */
export function settleHold(hold: Hold, held: boolean, usd: number, limitUsd: number, warnAt: readonly number[], now: number) {
  return (current: BudgetBucket | undefined, inPlace?: true): BudgetBucket => {
    const bucket = readBucket(current, now, hold.slot);
    // A record read afresh (an expired slot dropped, an earlier shape) is this update's own too.
    const own = inPlace === true || bucket !== current;
    let holds = bucket.holds;
    const at = held ? slotAt(holds, hold.slot) : -1;
    if (at >= 0) {
      const count = (holds[at + 2] as number) - 1;
      const left = count > 0 ? Math.max(0, (holds[at + 1] as number) - (usdAmount(hold.usd) ?? 0)) : 0;
      if (!own) holds = withSlot(holds, at, left, count);
      else if (count > 0) {
        holds[at + 1] = left;
        holds[at + 2] = count;
      } else holds.splice(at, 3);
    } else if (!own) {
      // Returned in a new record, the given one's array would be changed in place by the next update.
      holds = holds.slice();
    }
    const spentUsd = bucket.spentUsd + (usdAmount(usd) ?? usdAmount(hold.usd) ?? 0);
    let warned = bucket.warned;
    for (const threshold of warnAt) {
      // The spend first: below every threshold (most calls), no key is made or looked up.
      if (spentUsd < threshold * limitUsd - tolerance) continue;
      const key = String(threshold);
      // A new object, never a change to the stored one: another record may share it.
      if (!Object.hasOwn(warned, key)) warned = { ...warned, [key]: hold.id };
    }
    if (!own) return { v: 3, spentUsd, holds, warned };
    bucket.spentUsd = spentUsd;
    bucket.warned = warned;
    // Set to undefined, not deleted: JSON leaves it out all the same, and a
    // delete is a runtime call (about a third of this reducer's profile
    // samples at 64 JSON calls in flight over HTTP), after which the next
    // admission adds the property back.
    if (bucket.admitted !== undefined) bucket.admitted = undefined;
    return bucket;
  };
}

/**
 * Drops `hold` without spending anything (a refused or failed call); internal.
 *
 * @param hold - the hold to drop
 * @param now - the caller's `clock.now()`
 * @example
 * ```ts
 * await store.update(key, releaseHold(hold, now), ttlMs);
 * ```
 */
export function releaseHold(hold: Hold, now: number) {
  return settleHold(hold, true, 0, Infinity, [], now);
}
