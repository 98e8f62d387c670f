import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { admits, correct, createBucket, decay, take, waitMs, type Bucket } from './bucket.js';

function bucketOf(limit: number, windowMs: number, burst: number): Bucket {
  const bucket = createBucket({ limit, windowMs, burst });
  if (typeof bucket === 'string') throw new Error(bucket);
  return bucket;
}

/** The largest total booked in any window [t, t + W) (bookings at integer times, sorted). */
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

const specs = fc
  .record({ limit: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 500 })), windowMs: fc.integer({ min: 1, max: 5_000 }), share: fc.double({ min: 0, max: 1, noNaN: true }) })
  .map(({ limit, windowMs, share }) => ({ limit, windowMs, burst: Math.min(limit - 1, Math.floor(limit * share)) }));

describe('bucket', () => {
  it('admits at most the limit in every window, bursts and oversize costs included', () => {
    fc.assert(
      fc.property(
        specs,
        fc.array(fc.record({ gap: fc.nat({ max: 3_000 }), share: fc.double({ min: 0, max: 1, noNaN: true }) }), { maxLength: 120 }),
        (spec, arrivals) => {
          const bucket = bucketOf(spec.limit, spec.windowMs, spec.burst);
          let debt = 0;
          let at = 0;
          let now = 0;
          const admitted: Array<{ at: number; amount: number }> = [];
          for (const { gap, share } of arrivals) {
            now += gap;
            const cost = Math.max(1, Math.ceil(spec.limit * share));
            // A greedy client: each request waits exactly as long as the bucket says.
            const current = decay(bucket, debt, at, now);
            const admitAt = now + waitMs(bucket, current, cost, now);
            const then = decay(bucket, debt, at, admitAt);
            expect(admits(bucket, then, cost)).toBe(true);
            debt = take(bucket, then, cost);
            at = admitAt;
            now = admitAt;
            admitted.push({ at: admitAt, amount: cost });
          }
          expect(worstWindow(admitted, spec.windowMs)).toBeLessThanOrEqual(spec.limit);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('books at most the limit in every window when unused reservations are given back', () => {
    fc.assert(
      fc.property(
        specs,
        fc.array(
          fc.record({ gap: fc.nat({ max: 3_000 }), share: fc.double({ min: 0, max: 1, noNaN: true }), used: fc.double({ min: 0, max: 1, noNaN: true }), holdMs: fc.nat({ max: 4_000 }) }),
          { maxLength: 80 },
        ),
        (spec, arrivals) => {
          const bucket = bucketOf(spec.limit, spec.windowMs, spec.burst);
          // Events in time order: admissions as they arrive, refunds when their request settles.
          const bookings: Array<{ at: number; amount: number }> = [];
          let debt = 0;
          let at = 0;
          let now = 0;
          const refunds: Array<{ at: number; amount: number }> = [];
          const applyRefundsUntil = (time: number) => {
            refunds.sort((a, b) => a.at - b.at);
            while (refunds.length > 0 && (refunds[0]?.at ?? Infinity) <= time) {
              const refund = refunds.shift() as { at: number; amount: number };
              const before = decay(bucket, debt, at, refund.at);
              debt = correct(bucket, before, -refund.amount);
              at = refund.at;
              // What the bucket actually gave back is what the ledger books.
              bookings.push({ at: refund.at, amount: -(Math.max(before, 0) - Math.max(debt, 0)) / bucket.span });
            }
          };
          for (const { gap, share, used, holdMs } of arrivals) {
            now += gap;
            const cost = Math.max(1, Math.ceil(spec.limit * share));
            for (;;) {
              applyRefundsUntil(now);
              const current = decay(bucket, debt, at, now);
              const wait = waitMs(bucket, current, cost, now);
              const nextRefund = refunds.reduce((min, refund) => Math.min(min, refund.at), Infinity);
              if (wait === 0) break;
              now = Math.min(now + wait, nextRefund);
            }
            debt = take(bucket, decay(bucket, debt, at, now), cost);
            at = now;
            bookings.push({ at: now, amount: cost });
            const unused = cost - Math.floor(cost * used);
            if (unused > 0) refunds.push({ at: now + holdMs, amount: unused });
          }
          applyRefundsUntil(Infinity);
          bookings.sort((a, b) => a.at - b.at);
          // A refund booked at the same instant as an admission lowers that instant's total: the ledger is net.
          expect(worstWindow(bookings, spec.windowMs)).toBeLessThanOrEqual(spec.limit + 1e-9);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('explains limits it cannot count exactly', () => {
    expect(createBucket({ limit: 10, windowMs: 1_000, burst: 10 })).toMatch(/burst/);
    expect(createBucket({ limit: 1e9, windowMs: 86_400_000, burst: 1 })).toMatchObject({ unit: 100 });
    expect(createBucket({ limit: 1e12, windowMs: 86_400_001, burst: 1 })).toMatch(/too large/);
  });

  it('waits the exact time the next admission needs', () => {
    const bucket = bucketOf(100, 60_000, 10);
    let debt = 0;
    for (let i = 0; i < 10; i++) debt = take(bucket, debt, 1);
    expect(waitMs(bucket, debt, 1, 0)).toBe(667);
    expect(admits(bucket, decay(bucket, debt, 0, 666), 1)).toBe(false);
    expect(admits(bucket, decay(bucket, debt, 0, 667), 1)).toBe(true);
  });
});
