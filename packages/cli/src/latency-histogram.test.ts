import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from './latency-histogram.js';

const exact = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] as number;
};

describe('LatencyHistogram', () => {
  it('reports 0 with nothing recorded', () => {
    const histogram = new LatencyHistogram();
    expect([histogram.count, histogram.mean(), histogram.quantile(0.5)]).toEqual([0, 0, 0]);
  });

  it('gives every quantile within 2% of the exact one, whatever the latencies', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1, max: 3_600_000, noNaN: true }), { minLength: 1, maxLength: 500 }),
        fc.constantFrom(0.5, 0.9, 0.99, 1),
        (values, q) => {
          const histogram = new LatencyHistogram();
          for (const value of values) histogram.add(value);
          const truth = exact(values, q);
          expect(Math.abs(histogram.quantile(q) - truth) / truth).toBeLessThanOrEqual(0.02);
        },
      ),
    );
  });

  it('merges two histograms into the histogram of both', () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    const both = new LatencyHistogram();
    for (let i = 1; i <= 100; i++) {
      (i % 2 ? a : b).add(i * 10);
      both.add(i * 10);
    }
    a.merge(b);
    expect([a.count, a.mean(), a.quantile(0.5), a.quantile(0.99)]).toEqual([both.count, both.mean(), both.quantile(0.5), both.quantile(0.99)]);
  });

  it('ignores a latency that is not a number', () => {
    const histogram = new LatencyHistogram();
    histogram.add(Number.NaN);
    expect(histogram.count).toBe(0);
  });
});
