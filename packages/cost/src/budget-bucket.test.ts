import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type BudgetBucket, type Hold, heldUsd, holdSlot, releaseHold, reserveHold, settleHold, slotsOf } from './budget-bucket.js';

const minute = 60_000;
const holdMs = 15 * minute;
const start = Date.UTC(2026, 10, 25, 10);

/** Applies reducers as a store would: each one to the last result, through JSON like a shared store. */
function apply(bucket: BudgetBucket | undefined, reducer: (current: BudgetBucket | undefined) => BudgetBucket): BudgetBucket {
  return JSON.parse(JSON.stringify(reducer(bucket))) as BudgetBucket;
}

const hold = (id: string, usd: number, now: number, deadline?: number): Hold => ({ id, usd, slot: holdSlot(now, holdMs, deadline) });

describe('budget bucket', () => {
  it('stays the same size with 1,000 holds in flight, however they are spread over the hold time', () => {
    let bucket: BudgetBucket | undefined;
    const holds: Hold[] = [];
    for (let i = 0; i < 1_000; i++) {
      const now = start + i * 900; // one every 0.9 s, 15 minutes in all
      const each = hold(`call-${i}`, 0.001, now);
      bucket = apply(bucket, reserveHold(each, 10, false, now));
      expect(bucket.admitted).toBe(each.id);
      holds.push(each);
    }
    const slots = slotsOf(bucket!).length;
    expect(slots).toBeLessThanOrEqual(18);
    expect(JSON.stringify(bucket).length).toBeLessThan(1_000);
    expect(heldUsd(bucket!)).toBeCloseTo(1, 9);
    // Every hold settled, in any order: nothing is left held, not even floating-point dust.
    const now = start + 1_000 * 900;
    for (const each of holds.reverse()) bucket = apply(bucket, settleHold(each, true, 0.0005, 10, [], now));
    expect(bucket!.holds).toEqual([]);
    expect(bucket!.spentUsd).toBeCloseTo(0.5, 9);
  });

  it('releases the holds of a process that never settles once they expire', () => {
    const crashed = hold('crashed', 4, start);
    let bucket = apply(undefined, reserveHold(crashed, 5, false, start));
    const later = start + 5 * minute;
    bucket = apply(bucket, reserveHold(hold('refused', 2, later), 5, false, later));
    expect(bucket.admitted).toBe('crashed');
    const expired = crashed.slot;
    bucket = apply(bucket, reserveHold(hold('admitted', 2, expired), 5, false, expired));
    expect(bucket.admitted).toBe('admitted');
    expect(heldUsd(bucket)).toBe(2);
  });

  it('ends a hold at the call deadline (plus a slot), never past holdMs', () => {
    const width = holdMs / 16;
    expect(holdSlot(start, holdMs, start + 30_000)).toBeGreaterThan(start + 30_000);
    expect(holdSlot(start, holdMs, start + 30_000)).toBeLessThanOrEqual(start + 30_000 + 2 * width);
    expect(holdSlot(start, holdMs, start + 3_600_000)).toBeLessThanOrEqual(start + holdMs + width);
    expect(holdSlot(start, holdMs, start - 1)).toBeGreaterThan(start);
  });

  it('subtracts nothing when a call settles after its hold expired, and charges what it cost', () => {
    const late = hold('late', 1, start);
    let bucket = apply(undefined, reserveHold(late, 5, false, start));
    const after = late.slot + minute;
    const other = hold('other', 3, after);
    bucket = apply(bucket, reserveHold(other, 5, false, after));
    bucket = apply(bucket, settleHold(late, true, 0.5, 5, [], after));
    expect(bucket.holds).toEqual([other.slot, 3, 1]);
    expect(bucket.spentUsd).toBe(0.5);
    // The other call's hold still counts against the limit: $0.5 + $3 + $2 does not fit in $5.
    expect(apply(bucket, reserveHold(hold('third', 2, after), 5, false, after)).admitted).toBeUndefined();
  });

  it('never takes a hold below zero, and drops a slot once its last hold is settled', () => {
    const now = start;
    const [a, b] = [hold('a', 0.1, now), hold('b', 0.2, now)];
    let bucket = apply(undefined, reserveHold(a, 5, false, now));
    bucket = apply(bucket, reserveHold(b, 5, false, now));
    // Settled at more than was held (a caller's mistake): clamped, never negative.
    bucket = apply(bucket, settleHold({ ...a, usd: 1 }, true, 0.1, 5, [], now));
    expect(slotsOf(bucket)).toEqual([[a.slot, 0, 1]]);
    bucket = apply(bucket, settleHold(b, true, 0.2, 5, [], now));
    expect(bucket.holds).toEqual([]);
  });

  it('does not touch the holds for a call that was not held here (the store failed open when it was admitted)', () => {
    const now = start;
    const held = hold('held', 1, now);
    let bucket = apply(undefined, reserveHold(held, 5, false, now));
    bucket = apply(bucket, settleHold(hold('unmetered', 1, now), false, 0.4, 5, [], now));
    expect(bucket.holds).toEqual([held.slot, 1, 1]);
    expect(bucket.spentUsd).toBe(0.4);
  });

  it('claims each threshold once, by the settlement that crossed it', () => {
    let bucket: BudgetBucket | undefined;
    const claims: string[] = [];
    for (let i = 0; i < 20; i++) {
      const each = hold(`call-${i}`, 0.1, start);
      bucket = apply(bucket, reserveHold(each, 1, false, start));
      if (bucket.admitted !== each.id) break;
      bucket = apply(bucket, settleHold(each, true, 0.1, 1, [0.5, 0.8, 1], start));
      for (const [threshold, by] of Object.entries(bucket.warned)) if (by === each.id) claims.push(threshold);
    }
    expect(claims).toEqual(['0.5', '0.8', '1']);
    expect(bucket!.warned).toEqual({ '0.5': 'call-4', '0.8': 'call-7', '1': 'call-9' });
  });

  it('reads a record of the earlier shape (a hold per call id) as one slot that expires', () => {
    const legacy = { spentUsd: 1, holds: { x: 0.5, y: 0.25, z: null }, warned: { '0.8': 'w' } } as unknown as BudgetBucket;
    const refused = hold('big', 0.5, start);
    expect(apply(legacy, reserveHold(refused, 2, false, start)).admitted).toBeUndefined(); // 1 + 0.75 + 0.5 > 2
    const fits = hold('small', 0.25, start);
    const bucket = apply(legacy, reserveHold(fits, 2, false, start));
    expect(bucket).toEqual({ v: 3, spentUsd: 1, holds: [fits.slot, 1, 4], warned: { '0.8': 'w' }, admitted: 'small' });
    const after = fits.slot;
    expect(apply(bucket, releaseHold(hold('next', 0, after), after)).holds).toEqual([]);
  });

  it('reads a record of the first slotted shape (v: 2) slot for slot, dropping the expired and the corrupt', () => {
    const [a, b] = [hold('a', 0.5, start), hold('b', 0.25, start + 2 * minute)];
    const earlier = {
      v: 2,
      spentUsd: 1,
      holds: { [a.slot]: [0.5, 2], [b.slot]: [0.25, 1], [start - 1]: [9, 9], [start + holdMs]: [null, 1] },
      warned: { '0.8': 'w' },
    } as unknown as BudgetBucket;
    const refused = hold('big', 0.3, start);
    expect(apply(earlier, reserveHold(refused, 2, false, start)).admitted).toBeUndefined(); // 1 + 0.75 + 0.3 > 2
    const fits = hold('small', 0.25, start);
    const bucket = apply(earlier, reserveHold(fits, 2, false, start));
    expect(bucket.admitted).toBe('small');
    expect(heldUsd(bucket)).toBeCloseTo(1, 9);
    expect(slotsOf(bucket)).toEqual(expect.arrayContaining([[b.slot, 0.25, 1]]));
    // Settling the two old holds of a's slot and the new one empties it; b's slot expires on its own.
    let settled = bucket;
    for (const each of [a, a, fits]) settled = apply(settled, settleHold(each, true, 0.1, 2, [], start));
    expect(fits.slot).toBe(a.slot);
    expect(slotsOf(settled)).toEqual([[b.slot, 0.25, 1]]);
    expect(apply(settled, releaseHold(hold('late', 0, b.slot), b.slot)).holds).toEqual([]);
  });

  it('is pure: the same update of the same record gives the same result and leaves the record as it was', () => {
    const now = start;
    const current = apply(undefined, reserveHold(hold('a', 0.1, now), 5, false, now));
    const frozen = JSON.stringify(current);
    const update = settleHold(hold('a', 0.1, now), true, 0.05, 5, [0.01], now);
    expect(update(current)).toEqual(update(current));
    expect(JSON.stringify(current)).toBe(frozen);
  });

  it('never admits past the limit, keeps holds ≥ 0 and bounded, and ends with nothing held, whatever the order', () => {
    const step = fc.record({
      usd: fc.double({ min: 0, max: 2, noNaN: true }),
      advanceMs: fc.integer({ min: 0, max: 5 * minute }),
      settleFirst: fc.integer({ min: 0, max: 3 }),
      costShare: fc.double({ min: 0, max: 1, noNaN: true }),
    });
    fc.assert(
      fc.property(fc.double({ min: 0.5, max: 10, noNaN: true }), fc.array(step, { maxLength: 60 }), (limit, steps) => {
        let bucket: BudgetBucket | undefined;
        let now = start;
        const open: Hold[] = [];
        steps.forEach((each, index) => {
          now += each.advanceMs;
          for (let i = 0; i < each.settleFirst && open.length > 0; i++) {
            const settled = open.shift() as Hold;
            bucket = apply(bucket, settleHold(settled, true, settled.usd * each.costShare, limit, [0.8], now));
          }
          const candidate = hold(`h${index}`, each.usd, now);
          const before = bucket;
          bucket = apply(bucket, reserveHold(candidate, limit, false, now));
          if (bucket.admitted === candidate.id) {
            open.push(candidate);
            expect(bucket.spentUsd + heldUsd(bucket)).toBeLessThanOrEqual(limit + 1e-9);
          } else {
            expect(bucket.spentUsd).toBe(before?.spentUsd ?? 0);
          }
          for (const [, usd, count] of slotsOf(bucket)) {
            expect(usd).toBeGreaterThanOrEqual(0);
            expect(count).toBeGreaterThan(0);
          }
          expect(slotsOf(bucket).length).toBeLessThanOrEqual(18);
        });
        for (const settled of open) bucket = apply(bucket, releaseHold(settled, now));
        expect(bucket?.holds ?? []).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });
  it('changes a record in place as the copying updates would, and the copying updates change nothing they were given', () => {
    const op = fc.record({
      kind: fc.constantFrom('reserve', 'force', 'settle', 'release', 'unheld'),
      usd: fc.double({ min: 0, max: 2, noNaN: true }),
      advanceMs: fc.integer({ min: 0, max: 3 * minute }),
      costShare: fc.double({ min: 0, max: 1.5, noNaN: true }),
    });
    const deepFreeze = <T>(value: T): T => {
      if (typeof value === 'object' && value !== null) {
        for (const inner of Object.values(value)) deepFreeze(inner);
        Object.freeze(value);
      }
      return value;
    };
    fc.assert(
      fc.property(fc.double({ min: 0.5, max: 10, noNaN: true }), fc.array(op, { maxLength: 60 }), (limit, ops) => {
        let copied: BudgetBucket | undefined;
        let changed: BudgetBucket | undefined;
        let now = start;
        const open: Hold[] = [];
        ops.forEach((each, index) => {
          now += each.advanceMs;
          let update: (current: BudgetBucket | undefined, inPlace?: true) => BudgetBucket;
          if (each.kind === 'reserve' || each.kind === 'force' || open.length === 0) {
            const candidate = hold(`h${index}`, each.usd, now, index % 3 === 0 ? now + 30_000 : undefined);
            update = reserveHold(candidate, limit, each.kind === 'force', now);
            open.push(candidate);
          } else {
            const settled = open.shift() as Hold;
            update =
              each.kind === 'release' ? releaseHold(settled, now) : settleHold(settled, each.kind === 'settle', settled.usd * each.costShare, limit, [0.5, 0.8], now);
          }
          // The copying update, on a record nobody may change: it throws if it tries.
          const given = copied === undefined ? undefined : deepFreeze(structuredClone(copied));
          const next = update(given);
          if (given !== undefined && next !== given) expect(next.holds).not.toBe(given.holds);
          copied = JSON.parse(JSON.stringify(next)) as BudgetBucket;
          // The same update in place, on the record the last one returned.
          const before = changed;
          changed = changed === undefined ? update(undefined) : update(changed, true);
          // The record itself, unless a slot had ended (dropped, into a record read afresh).
          if (before !== undefined && slotsOf(before).every(([slot]) => slot > now)) expect(changed).toBe(before);
          expect(JSON.parse(JSON.stringify(changed))).toEqual(copied);
        });
      }),
      { numRuns: 300 },
    );
  });
});
