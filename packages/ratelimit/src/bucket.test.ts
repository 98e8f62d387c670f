import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { book, bookInPlace, emptyLog, liveTotal, type Log, maxEntries, ownCopy, prune, pruneInPlace, refund, refundInPlace, waitMs, type SlidingWindow } from './bucket.js';

/** The largest total booked in any window [t, t + W) (bookings sorted by time). */
function worstWindow(bookings: ReadonlyArray<{ at: number; amount: number }>, windowMs: number): number {
  let worst = 0;
  for (let i = 0; i < bookings.length; i++) {
    let sum = 0;
    const start = bookings[i]?.at ?? 0;
    for (let j = i; j < bookings.length && (bookings[j]?.at ?? 0) < start + windowMs; j++) sum += bookings[j]?.amount ?? 0;
    worst = Math.max(worst, sum);
  }
  return worst;
}

const windows = fc.record({
  limit: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 500 })),
  windowMs: fc.integer({ min: 1, max: 5_000 }),
});

/** Deep-freezes a log, so a reducer that mutated its input would throw. */
function frozen(log: Log): Log {
  return Object.freeze({ total: log.total, flat: Object.freeze([...log.flat]) });
}

/**
 * The log as pairs, written the plain way (prune, push, merge the closest
 * pair of neighbours into the later one, splice a refund): the reference
 * the flat log must follow entry for entry.
 */
const pairs = {
  prune(window: SlidingWindow, entries: Array<[number, number]>, now: number) {
    return entries.filter(([at]) => at > now - window.windowMs);
  },
  book(window: SlidingWindow, log: Array<[number, number]>, amount: number, at: number) {
    const entries = pairs.prune(window, log, at).map(([t, n]) => [t, n] as [number, number]);
    const last = entries[entries.length - 1];
    if (last && last[0] >= at) last[1] += amount;
    else entries.push([at, amount]);
    if (entries.length > maxEntries) {
      let best = 0;
      for (let i = 1; i + 1 < entries.length; i++) if (entries[i + 1]![0] - entries[i]![0] < entries[best + 1]![0] - entries[best]![0]) best = i;
      entries.splice(best, 2, [entries[best + 1]![0], entries[best]![1] + entries[best + 1]![1]]);
    }
    return entries;
  },
  refund(window: SlidingWindow, log: Array<[number, number]>, amount: number, bookedAt: number, now: number) {
    const entries = pairs.prune(window, log, now).map(([t, n]) => [t, n] as [number, number]);
    if (bookedAt <= now - window.windowMs) return entries;
    const index = entries.findIndex(([at]) => at >= bookedAt);
    if (index < 0) return entries;
    const entry = entries[index]!;
    entry[1] -= Math.min(amount, entry[1]);
    if (entry[1] === 0) entries.splice(index, 1);
    return entries;
  },
};

describe('sliding window log', () => {
  it('admits at most the limit in every window, each wait exactly as long as needed', () => {
    fc.assert(
      fc.property(
        windows,
        fc.array(fc.record({ gap: fc.nat({ max: 3_000 }), share: fc.double({ min: 0, max: 1, noNaN: true }) }), { maxLength: 150 }),
        (window, arrivals) => {
          let log = emptyLog;
          let now = 0;
          const admitted: Array<{ at: number; amount: number }> = [];
          for (const { gap, share } of arrivals) {
            now += gap;
            const cost = Math.max(1, Math.ceil(window.limit * share));
            // A greedy client: each request waits exactly as long as the log says.
            const wait = waitMs(window, log, cost, now);
            const at = now + wait;
            expect(liveTotal(window, log, at) + cost).toBeLessThanOrEqual(window.limit);
            // Exact: one millisecond earlier it would not have fitted.
            if (wait > 0) expect(liveTotal(window, log, at - 1) + cost).toBeGreaterThan(window.limit);
            log = book(window, frozen(log), cost, at);
            now = at;
            admitted.push({ at, amount: cost });
          }
          expect(worstWindow(admitted, window.windowMs)).toBeLessThanOrEqual(window.limit);
          expect(log.total).toBe(liveTotal(window, log, now));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('books at most the limit in every window when unused reservations are given back', () => {
    fc.assert(
      fc.property(
        windows,
        fc.array(
          fc.record({ gap: fc.nat({ max: 3_000 }), share: fc.double({ min: 0, max: 1, noNaN: true }), used: fc.double({ min: 0, max: 1, noNaN: true }), holdMs: fc.nat({ max: 4_000 }) }),
          { maxLength: 80 },
        ),
        (window, arrivals) => {
          // The ledger: every booking at its time, net of what was refunded from it.
          const bookings: Array<{ at: number; amount: number }> = [];
          const refunds: Array<{ at: number; amount: number; booking: { at: number; amount: number } }> = [];
          let log = emptyLog;
          let now = 0;
          const applyRefundsUntil = (time: number) => {
            refunds.sort((a, b) => a.at - b.at);
            while (refunds.length > 0 && (refunds[0]?.at ?? Infinity) <= time) {
              const { at, amount, booking } = refunds.shift() as (typeof refunds)[number];
              log = refund(window, frozen(log), amount, booking.at, at);
              booking.amount -= amount;
            }
          };
          for (const { gap, share, used, holdMs } of arrivals) {
            now += gap;
            const cost = Math.max(1, Math.ceil(window.limit * share));
            for (;;) {
              applyRefundsUntil(now);
              const wait = waitMs(window, log, cost, now);
              if (wait === 0) break;
              const nextRefund = refunds.reduce((min, item) => Math.min(min, item.at), Infinity);
              now = Math.min(now + wait, nextRefund);
            }
            log = book(window, frozen(log), cost, now);
            const booking = { at: now, amount: cost };
            bookings.push(booking);
            const unused = cost - Math.floor(cost * used);
            if (unused > 0) refunds.push({ at: now + holdMs, amount: unused, booking });
          }
          applyRefundsUntil(Infinity);
          expect(worstWindow(bookings, window.windowMs)).toBeLessThanOrEqual(window.limit);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('keeps, books, merges and refunds entry for entry as the plain log of pairs does', () => {
    fc.assert(
      fc.property(
        windows,
        fc.array(fc.record({ gap: fc.nat({ max: 60 }), amount: fc.integer({ min: 1, max: 20 }), refund: fc.nat({ max: 4 }), back: fc.nat({ max: 6_000 }) }), { minLength: 150, maxLength: 300 }),
        (window, steps) => {
          let log = emptyLog;
          let reference: Array<[number, number]> = [];
          let now = 0;
          for (const step of steps) {
            now += step.gap;
            if (step.refund === 0) {
              log = refund(window, frozen(log), step.amount, now - step.back, now);
              reference = pairs.refund(window, reference, step.amount, now - step.back, now);
            } else {
              log = book(window, frozen(log), step.amount, now);
              reference = pairs.book(window, reference, step.amount, now);
            }
            expect(log.flat).toEqual(reference.flat());
            expect(liveTotal(window, log, now)).toBe(reference.reduce((sum, [, amount]) => sum + amount, 0));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('books, prunes and refunds in place entry for entry as the copying functions do, and changes no other log', () => {
    fc.assert(
      fc.property(
        windows,
        fc.array(fc.record({ gap: fc.nat({ max: 60 }), amount: fc.integer({ min: 1, max: 20 }), prune: fc.nat({ max: 6 }), back: fc.nat({ max: 6_000 }) }), { minLength: 150, maxLength: 300 }),
        (window, steps) => {
          let copied = emptyLog;
          let inPlace = emptyLog;
          let now = 0;
          for (const step of steps) {
            now += step.gap;
            if (step.prune === 0) {
              copied = prune(window, frozen(copied), now);
              inPlace = pruneInPlace(window, inPlace, now);
            } else if (step.prune === 1) {
              copied = refund(window, frozen(copied), step.amount, now - step.back, now);
              inPlace = refundInPlace(window, inPlace, step.amount, now - step.back, now);
            } else if (step.prune === 2) {
              // A refund goes through the pure path; the in-place log starts again from its own copy,
              // which it may change while the log it was copied from stays frozen (changing it would throw).
              copied = frozen(refund(window, frozen(copied), step.amount, now - step.back, now));
              inPlace = ownCopy(copied);
            } else {
              copied = book(window, frozen(copied), step.amount, now);
              inPlace = bookInPlace(window, inPlace, step.amount, now);
            }
            expect(inPlace.flat).toEqual(copied.flat);
            expect(inPlace.total).toBe(copied.total);
          }
          expect(emptyLog).toEqual({ total: 0, flat: [] });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps the log bounded by merging the closest entries into the later one, never admitting more', () => {
    const window: SlidingWindow = { limit: 5_000, windowMs: 60_000 };
    let log = emptyLog;
    let now = 0;
    const admitted: Array<{ at: number; amount: number }> = [];
    for (let i = 0; i < 6_000; i++) {
      now += 1 + (i % 7);
      const cost = 1 + (i % 3);
      now += waitMs(window, log, cost, now);
      log = book(window, log, cost, now);
      admitted.push({ at: now, amount: cost });
      expect(log.flat.length).toBeLessThanOrEqual(maxEntries * 2);
    }
    expect(worstWindow(admitted, window.windowMs)).toBeLessThanOrEqual(window.limit);
    // Merging only delays: the log never counts less than was really admitted in the window.
    expect(log.total).toBeGreaterThanOrEqual(admitted.filter(({ at }) => at > now - window.windowMs).reduce((sum, { amount }) => sum + amount, 0));
  });

  it('admits the whole limit at once, then waits until the first entries leave the window', () => {
    const window: SlidingWindow = { limit: 100, windowMs: 60_000 };
    let log = emptyLog;
    for (let i = 0; i < 100; i++) log = book(window, log, 1, 0);
    // Same-millisecond bookings share one entry.
    expect(log).toEqual({ total: 100, flat: [0, 100] });
    expect(waitMs(window, log, 1, 0)).toBe(60_000);
    expect(waitMs(window, log, 1, 59_999)).toBe(1);
    expect(prune(window, log, 60_000)).toBe(emptyLog);
  });

  it('takes a refund from the booking it belongs to, and none from a booking that has left the window', () => {
    const window: SlidingWindow = { limit: 10, windowMs: 1_000 };
    let log = book(window, book(window, emptyLog, 4, 100), 3, 200);
    log = refund(window, log, 2, 200, 300);
    expect(log).toEqual({ total: 5, flat: [100, 4, 200, 1] });
    expect(refund(window, log, 4, 100, 1_100)).toEqual({ total: 1, flat: [200, 1] });
    // A whole booking given back leaves nothing recorded.
    expect(refund(window, log, 4, 100, 300)).toEqual({ total: 1, flat: [200, 1] });
  });
});
