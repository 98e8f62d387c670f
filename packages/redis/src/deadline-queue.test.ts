// The deadline queue runs every call's deadline of one store on one timer,
// each by the rules at the top of store-deadline.ts.
// Fake time: a stall is the system time jumping while no timer runs.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { deadlineQueue } from './store-deadline.js';

describe('deadlineQueue', () => {
  beforeEach(() => void vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'Date'] }));
  afterEach(() => void vi.useRealTimers());

  it('expires each deadline once, after its own timeout, in the order they started', async () => {
    const start = deadlineQueue(50).after;
    const expired: string[] = [];
    start(() => expired.push('a'));
    await vi.advanceTimersByTimeAsync(20);
    start(() => expired.push('b'));
    await vi.advanceTimersByTimeAsync(29);
    expect(expired).toEqual([]);
    // (a timer's due work runs in the next check phase: a millisecond later on fake time)
    await vi.advanceTimersByTimeAsync(2);
    expect(expired).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(20);
    expect(expired).toEqual(['a', 'b']);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(expired).toEqual(['a', 'b']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never expires a cancelled deadline, and keeps no timer for it', async () => {
    const start = deadlineQueue(50).after;
    const expired: string[] = [];
    const a = start(() => expired.push('a'));
    const b = start(() => expired.push('b'));
    start(() => expired.push('c'));
    b.cancel();
    a.cancel();
    await vi.advanceTimersByTimeAsync(60);
    expect(expired).toEqual(['c']);
    const d = start(() => expired.push('d'));
    d.cancel();
    d.cancel();
    await vi.advanceTimersByTimeAsync(60);
    expect(expired).toEqual(['c']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('expires a deadline on time when the wall clock stepped back while it ran', async () => {
    const start = deadlineQueue(50).after;
    const expired: string[] = [];
    start(() => expired.push('before the step'));
    await vi.advanceTimersByTimeAsync(10);
    // An hour's step back: before, the deadline waited for the wall clock to catch up, an hour.
    vi.setSystemTime(Date.now() - 3_600_000);
    start(() => expired.push('after the step'));
    await vi.advanceTimersByTimeAsync(42);
    expect(expired).toEqual(['before the step']);
    await vi.advanceTimersByTimeAsync(10);
    expect(expired).toEqual(['before the step', 'after the step']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('gives a deadline its time back once when the process stalled past it', async () => {
    const start = deadlineQueue(40).after;
    const expired: string[] = [];
    start(() => expired.push('stalled'));
    // The process runs nothing for 100 ms: the timer fires 60 ms late.
    vi.setSystemTime(Date.now() + 100);
    await vi.advanceTimersByTimeAsync(41);
    expect(expired).toEqual([]);
    // Given min(late, timeout) = 40 ms more, once; a deadline started meanwhile keeps its own time.
    start(() => expired.push('later'));
    await vi.advanceTimersByTimeAsync(38);
    expect(expired).toEqual([]);
    await vi.advanceTimersByTimeAsync(3);
    expect(expired).toEqual(['stalled', 'later']);
  });
});
