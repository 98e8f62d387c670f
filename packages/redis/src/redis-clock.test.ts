import type { Clock } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import { redisClock } from './redis-clock.js';

/** A local clock read from `time.now`, which a test moves (and steps) by hand. */
function localClock(start: number): Clock & { time: number } {
  const clock = { time: start, now: () => clock.time, setTimeout, clearTimeout } as Clock & { time: number };
  return clock;
}

describe('redisClock', () => {
  it('reads Redis time from the tightest sample, and never runs backwards', () => {
    const local = localClock(1_000_000);
    const clock = redisClock(local);
    local.time = 1_000_010;
    clock.sample(1_000_000, 1_000_010, 1_005_005); // Redis 5 s ahead, a 10 ms round trip
    expect(clock.offsetMs).toBe(5_000);
    expect(clock.uncertaintyMs).toBe(5);
    // A looser sample later is not taken; a tighter one is.
    local.time += 1_000;
    clock.sample(1_001_000, 1_001_100, 1_006_000);
    expect(clock.offsetMs).toBe(5_000);
    clock.sample(1_001_000, 1_001_002, 1_005_999);
    expect(clock.offsetMs).toBe(4_998);
    const before = clock.now();
    expect(clock.now()).toBeGreaterThanOrEqual(before);
  });

  it('takes the next sample after the local clock stepped back, rather than stand still for the step', () => {
    const local = localClock(1_000_000_000);
    let server = 1_000_005_000;
    const clock = redisClock(local);
    clock.sample(local.time - 2, local.time, server);
    const before = clock.now();
    local.time -= 3_600_000; // an hour's step back; Redis's time goes on
    local.time += 1_000;
    server += 1_000;
    // Before, the aged sample looked tighter than any new one (its age negative): none was taken,
    // and the clock, which never runs backwards, held at `before` for the hour.
    clock.sample(local.time - 20, local.time, server - 10);
    expect(clock.offsetMs).toBe(server - local.time);
    expect(clock.now()).toBe(server);
    expect(clock.now()).toBeGreaterThan(before);
    local.time += 1_000;
    expect(clock.now()).toBe(server + 1_000);
  });
});
