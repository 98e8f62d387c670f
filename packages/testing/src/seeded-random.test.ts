import { describe, expect, it } from 'vitest';
import { seededRandom } from './seeded-random.js';

const take = (random: () => number, count: number) => Array.from({ length: count }, () => random());

describe('seededRandom', () => {
  it('repeats the same sequence for the same seed', () => {
    expect(take(seededRandom(42), 100)).toEqual(take(seededRandom(42), 100));
  });

  it('gives another sequence for another seed', () => {
    expect(take(seededRandom(42), 10)).not.toEqual(take(seededRandom(43), 10));
  });

  it('stays in [0, 1) and spreads evenly', () => {
    const values = take(seededRandom(1), 10_000);
    expect(values.every((value) => value >= 0 && value < 1)).toBe(true);
    const belowHalf = values.filter((value) => value < 0.5).length;
    expect(belowHalf).toBeGreaterThan(4_800);
    expect(belowHalf).toBeLessThan(5_200);
  });
});
