import { afterEach, describe, expect, it, vi } from 'vitest';
import { systemClock, unrefTimer } from './clock.js';

afterEach(() => {
  vi.useRealTimers();
});

const maxDelayMs = 2_147_483_647;

describe('systemClock', () => {
  it('waits a delay over 2^31 - 1 ms in full, where a runtime timer alone would fire after 1 ms', () => {
    vi.useFakeTimers();
    const fired = vi.fn();
    systemClock.setTimeout(fired, 3e9);
    vi.advanceTimersByTime(1);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(maxDelayMs);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(3e9 - maxDelayMs - 2);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledOnce();
  });

  it('clears a long timer before its first step and after it, and unrefs it', () => {
    vi.useFakeTimers();
    const early = vi.fn();
    const late = vi.fn();
    systemClock.clearTimeout(systemClock.setTimeout(early, 1e12));
    const handle = systemClock.setTimeout(late, 1e12);
    unrefTimer(handle);
    vi.advanceTimersByTime(maxDelayMs + 10);
    systemClock.clearTimeout(handle);
    vi.advanceTimersByTime(1e12);
    expect(early).not.toHaveBeenCalled();
    expect(late).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('sets an ordinary delay as the runtime timer it is', () => {
    vi.useFakeTimers();
    const fired = vi.fn();
    const handle = systemClock.setTimeout(fired, 1_000);
    expect(typeof (handle as { unref?: unknown }).unref).toBe('function');
    vi.advanceTimersByTime(1_000);
    expect(fired).toHaveBeenCalledOnce();
  });
});
