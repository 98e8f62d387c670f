import { sleep } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import { manualClock } from './manual-clock.js';

describe('manualClock', () => {
  it('starts at the given time and moves only when advanced', async () => {
    const clock = manualClock(1_000);
    await new Promise((resolve) => setImmediate(resolve));
    expect(clock.now()).toBe(1_000);
    clock.advance(250);
    expect(clock.now()).toBe(1_250);
  });

  it('jumps the wall clock either way without moving timers, as an NTP step does', () => {
    const clock = manualClock(10_000);
    const ran: number[] = [];
    clock.setTimeout(() => ran.push(clock.now()), 500);
    clock.jump(-3_600_000);
    expect(clock.now()).toBe(10_000 - 3_600_000);
    expect(clock.nextAt()).toBe(10_500 - 3_600_000);
    clock.advance(499);
    expect(ran).toEqual([]);
    clock.advance(1);
    expect(ran).toEqual([10_500 - 3_600_000]);
    clock.jump(3_600_000);
    expect(clock.now()).toBe(10_500);
    expect(ran).toHaveLength(1);
    expect(() => clock.jump(Number.NaN)).toThrow(RangeError);
  });

  it('runs due timers in order of due time, then of scheduling, each at its own time', () => {
    const clock = manualClock(0);
    const ran: Array<[string, number]> = [];
    clock.setTimeout(() => ran.push(['c', clock.now()]), 300);
    clock.setTimeout(() => ran.push(['a', clock.now()]), 100);
    clock.setTimeout(() => ran.push(['b1', clock.now()]), 200);
    clock.setTimeout(() => ran.push(['b2', clock.now()]), 200);
    clock.setTimeout(() => ran.push(['late', clock.now()]), 301);

    clock.advance(300);

    expect(ran).toEqual([['a', 100], ['b1', 200], ['b2', 200], ['c', 300]]);
    expect(clock.pending).toBe(1);
    expect(clock.nextAt()).toBe(301);
  });

  it('runs a timer that a timer scheduled when it falls inside the same advance', () => {
    const clock = manualClock(0);
    const ran: number[] = [];
    clock.setTimeout(() => {
      ran.push(clock.now());
      clock.setTimeout(() => ran.push(clock.now()), 50);
    }, 100);
    clock.advance(200);
    expect(ran).toEqual([100, 150]);
    expect(clock.now()).toBe(200);
  });

  it('never runs a cleared timer', () => {
    const clock = manualClock(0);
    let ran = false;
    const handle = clock.setTimeout(() => (ran = true), 10);
    clock.clearTimeout(handle);
    clock.advance(100);
    expect(ran).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it('advanceAsync lets promise chains schedule their next timer in time', async () => {
    const clock = manualClock(0);
    const woke: number[] = [];
    const chain = (async () => {
      for (let i = 0; i < 3; i++) {
        await sleep(100, { clock });
        woke.push(clock.now());
      }
    })();
    await clock.advanceAsync(300);
    await chain;
    expect(woke).toEqual([100, 200, 300]);
  });

  it('run advances until the promise settles and returns its value', async () => {
    const clock = manualClock(0);
    const value = await clock.run(sleep(1_234, { clock }).then(() => clock.now()));
    expect(value).toBe(1_234);
    expect(clock.now()).toBeGreaterThanOrEqual(1_234);
  });

  it('run rejects when the promise is still pending after maxMs', async () => {
    const clock = manualClock(0);
    await expect(clock.run(new Promise(() => {}), { maxMs: 500 })).rejects.toThrow(/still pending after 500 ms/);
  });

  it('until waits for a condition without moving time', async () => {
    const clock = manualClock(0);
    let ready = false;
    setImmediate(() => setImmediate(() => (ready = true)));
    await clock.until(() => ready);
    expect(clock.now()).toBe(0);
  });

  it('refuses to go back in time', () => {
    const clock = manualClock(0);
    expect(() => clock.advance(-1)).toThrow(RangeError);
    expect(() => clock.advance(Number.NaN)).toThrow(RangeError);
  });

  it('stops a timer that keeps re-arming itself at 0 ms instead of spinning forever', () => {
    const clock = manualClock(0);
    const rearm = () => void clock.setTimeout(rearm, 0);
    rearm();
    expect(() => clock.advance(1)).toThrow(/timers ran/);
  });
});
