import fc from 'fast-check';
import { ServerError } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import { constantBackoff, exponentialBackoff } from './backoff.js';

const error = new ServerError('503 overloaded', { status: 503 });

describe('exponentialBackoff', () => {
  it('doubles from 1 s up to a 10 s maximum by default, without jitter', () => {
    const backoff = exponentialBackoff({ jitter: 'none' });
    expect([1, 2, 3, 4, 5, 6, 20].map((attempt) => backoff(attempt, error))).toEqual([
      1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000,
    ]);
  });

  it('draws full jitter from [0, ceiling) with the injected random', () => {
    const backoff = exponentialBackoff({ random: () => 0.25 });
    expect([1, 2, 3, 4, 5].map((attempt) => backoff(attempt, error))).toEqual([250, 500, 1_000, 2_000, 2_500]);
  });

  it('draws equal jitter from [ceiling/2, ceiling)', () => {
    const backoff = exponentialBackoff({ jitter: 'equal', random: () => 0.5 });
    expect([1, 2, 5].map((attempt) => backoff(attempt, error))).toEqual([750, 1_500, 7_500]);
  });

  it('follows baseMs, factor and maxMs', () => {
    const backoff = exponentialBackoff({ baseMs: 100, factor: 3, maxMs: 2_000, jitter: 'none' });
    expect([1, 2, 3, 4].map((attempt) => backoff(attempt, error))).toEqual([100, 300, 900, 2_000]);
  });

  it('gives the same waits for the same random sequence', () => {
    const seeded = () => {
      let state = 7;
      return () => ((state = (state * 16807) % 2147483647) - 1) / 2147483646;
    };
    const first = exponentialBackoff({ random: seeded() });
    const second = exponentialBackoff({ random: seeded() });
    const waits = (backoff: typeof first) => [1, 2, 3, 4].map((attempt) => backoff(attempt, error));
    expect(waits(first)).toEqual(waits(second));
  });

  it('never waits less than 0 or more than the cap, nor below half the ceiling with equal jitter', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000 }),
        fc.double({ min: 1, max: 10, noNaN: true }),
        fc.integer({ min: 0, max: 60_000 }),
        fc.integer({ min: 1, max: 2_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.constantFrom('full' as const, 'equal' as const, 'none' as const),
        (baseMs, factor, maxMs, attempt, draw, jitter) => {
          const wait = exponentialBackoff({ baseMs, factor, maxMs, jitter, random: () => draw })(attempt, error);
          const ceiling = baseMs === 0 ? 0 : Math.min(maxMs, baseMs * factor ** (attempt - 1));
          expect(wait).toBeGreaterThanOrEqual(0);
          expect(wait).toBeLessThanOrEqual(ceiling);
          if (jitter === 'equal') expect(wait).toBeGreaterThanOrEqual(ceiling / 2);
          if (jitter === 'none') expect(wait).toBe(ceiling);
        },
      ),
    );
  });

  it('keeps a misbehaving random source inside [0, ceiling]', () => {
    expect(exponentialBackoff({ random: () => 5 })(1, error)).toBe(1_000);
    expect(exponentialBackoff({ random: () => -1 })(1, error)).toBe(0);
    expect(exponentialBackoff({ random: () => Number.NaN })(1, error)).toBe(0);
  });

  it('names the bad option', () => {
    expect(() => exponentialBackoff({ factor: 0.5 })).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'exponentialBackoff.factor' }));
    expect(() => exponentialBackoff({ baseMs: -1 })).toThrow(expect.objectContaining({ field: 'exponentialBackoff.baseMs' }));
    expect(() => exponentialBackoff({ jitter: 'decorrelated' as 'full' })).toThrow(
      expect.objectContaining({ field: 'exponentialBackoff.jitter' }),
    );
  });
});

describe('constantBackoff', () => {
  it('waits the same after every failure', () => {
    const backoff = constantBackoff(250);
    expect([1, 2, 9].map((attempt) => backoff(attempt, error))).toEqual([250, 250, 250]);
  });

  it('rejects a negative wait', () => {
    expect(() => constantBackoff(-5)).toThrow(expect.objectContaining({ field: 'constantBackoff.ms' }));
  });
});
