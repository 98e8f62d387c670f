import { usdAmount } from './usage-tokens.js';

/*
 * The stored state of one budget limit for one key and period, and the
 * pure updates the budget applies to it with `store.update` (atomic; a
 * distributed store may run an update more than once, so each is a pure
 * function of the current value). Plain JSON.
 *
 * Each call in flight holds its worst-case cost under its own id, so
 * admission sees every reservation, settling is idempotent, and a threshold
 * is claimed by exactly one call (the one whose settlement crossed it), which
 * is how `budget-warning` fires once per threshold per period even across
 * processes.
 */

/** One limit's spend in one period; internal. */
export interface BudgetBucket {
  spentUsd: number;
  /** Worst-case cost reserved by each call in flight, by hold id. */
  holds: Record<string, number>;
  /** Thresholds crossed this period, each with the hold id that crossed it. */
  warned: Record<string, string>;
}

// Floating-point sums of prices must not refuse a call that fits exactly.
const tolerance = 1e-9;

const empty = (): BudgetBucket => ({ spentUsd: 0, holds: {}, warned: {} });

/**
 * The stored bucket with every amount a finite number: a store that lost
 * precision or a corrupted record (JSON turns NaN into null) must not turn
 * the limit's arithmetic into NaN, where no comparison refuses anything.
 */
function readBucket(current: BudgetBucket | undefined): BudgetBucket {
  if (!current) return empty();
  let clean = usdAmount(current.spentUsd) === current.spentUsd;
  for (const usd of Object.values(current.holds ?? {})) if (usdAmount(usd) !== usd) clean = false;
  if (clean && current.holds && current.warned) return current;
  const holds: Record<string, number> = {};
  for (const [id, usd] of Object.entries(current.holds ?? {})) holds[id] = usdAmount(usd) ?? 0;
  return { spentUsd: usdAmount(current.spentUsd) ?? 0, holds, warned: { ...current.warned } };
}

/**
 * The worst-case cost held by calls in flight; internal.
 *
 * @param bucket - a limit's stored state
 * @example
 * ```ts
 * reservedUsd({ spentUsd: 1, holds: { a: 0.1, b: 0.2 }, warned: {} }); // 0.3
 * ```
 */
export function reservedUsd(bucket: BudgetBucket): number {
  let sum = 0;
  for (const usd of Object.values(bucket.holds)) sum += usd;
  return sum;
}

/**
 * Adds a hold of `amountUsd` if it fits under `limitUsd` (or always, with
 * `force`); the result holds `id` exactly when it was admitted; internal.
 *
 * @param id - the call's hold id
 * @param amountUsd - its worst-case cost
 * @param limitUsd - the limit
 * @param force - hold even past the limit (`onExceed: 'warn'`)
 * @example
 * ```ts
 * const bucket = await store.update(key, reserveHold('h1', 0.25, 5, false), ttlMs);
 * const admitted = 'h1' in bucket.holds;
 * ```
 */
export function reserveHold(id: string, amountUsd: number, limitUsd: number, force: boolean) {
  return (current: BudgetBucket | undefined): BudgetBucket => {
    const bucket = readBucket(current);
    if (Object.hasOwn(bucket.holds, id)) return bucket;
    // An amount that is not a price is never admitted, even forced: held, it would disable the limit.
    if (usdAmount(amountUsd) === undefined) return bucket;
    if (!force && bucket.spentUsd + reservedUsd(bucket) + amountUsd > limitUsd + tolerance) return bucket;
    return { ...bucket, holds: { ...bucket.holds, [id]: amountUsd } };
  };
}

/**
 * Replaces the hold `id` by the real cost `usd` (0 releases it), claiming
 * every threshold in `warnAt` the new spend crosses; internal. A cost that
 * is not a finite amount ≥ 0 is charged as what the hold reserved: never
 * NaN, and never less than the call may have cost.
 *
 * @param id - the call's hold id
 * @param usd - what the call really cost
 * @param limitUsd - the limit
 * @param warnAt - thresholds, as shares of the limit
 * @example
 * ```ts
 * const bucket = await store.update(key, settleHold('h1', 0.03, 5, [0.8]), ttlMs);
 * const crossed = Object.entries(bucket.warned).filter(([, by]) => by === 'h1');
 * ```
 */
export function settleHold(id: string, usd: number, limitUsd: number, warnAt: readonly number[]) {
  return (current: BudgetBucket | undefined): BudgetBucket => {
    const bucket = readBucket(current);
    const { [id]: held, ...holds } = bucket.holds;
    const spentUsd = bucket.spentUsd + (usdAmount(usd) ?? held ?? 0);
    const warned = { ...bucket.warned };
    for (const threshold of warnAt) {
      const key = String(threshold);
      if (!Object.hasOwn(warned, key) && spentUsd >= threshold * limitUsd - tolerance) warned[key] = id;
    }
    return { spentUsd, holds, warned };
  };
}

/**
 * Drops the hold `id` without spending anything (a refused or failed call); internal.
 *
 * @param id - the hold to drop
 * @example
 * ```ts
 * await store.update(key, releaseHold('h1'), ttlMs);
 * ```
 */
export function releaseHold(id: string) {
  return settleHold(id, 0, Infinity, []);
}
