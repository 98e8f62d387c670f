/**
 * A seeded pseudo-random generator (mulberry32): the same seed always yields
 * the same sequence of numbers in [0, 1).
 *
 * It is what makes the mock's probabilistic faults reproducible; use it
 * for anything else a test or benchmark wants random but repeatable (a
 * retry's jitter, generated texts).
 *
 * @param seed - any number; only its low 32 bits matter
 * @returns a function returning the next number of the sequence
 * @example
 * ```ts
 * const random = seededRandom(42);
 * random(); // always the same first number for seed 42
 * ```
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return function next(): number {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
