// Test helper (not published: `files` excludes src/**/test-*.ts).
import type { Clock } from '@sluice/core';

/** A clock whose `now` the test sets; timers are real (nothing here sleeps on them). */
export function manualClock(start = Date.UTC(2026, 10, 25, 9, 0, 0)): Clock & { time: number; advance(ms: number): void } {
  return {
    time: start,
    now() {
      return this.time;
    },
    advance(ms: number) {
      this.time += ms;
    },
    setTimeout: (callback, ms) => {
      const handle = setTimeout(callback, ms);
      handle.unref();
      return handle;
    },
    clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  };
}
