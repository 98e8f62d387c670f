/**
 * What the fault tests share: real HTTP to a mock upstream, with every wait
 * (retry backoff, the limiter's queue, the upstream's latency) on fake
 * time. Nothing sleeps: {@link drive} lets real I/O run and advances the
 * clock to the next timer only when every request is either waiting on a
 * timer in the pipeline or parked on the upstream's latency timer. So HTTP
 * is real and the waits are the middleware's real waits, only compressed.
 */
import type { Middleware } from '@sluice/core';
import type { MockClock } from '@sluice/testing';
import { vi } from 'vitest';

/** Upstream latency, on fake time: requests overlap as they would for real. */
export const latencyMs = 50;
const tickMs = 5;
/** Turns the driver may stay idle with no timer to advance before it calls the run stuck. */
const stuckTurns = 1_000;

/**
 * Where the requests are: sent and not answered yet (`inFlight`, counted
 * by the transport), and parked on the upstream's latency timer
 * (`parked`). When every request in flight is parked, nothing but a timer
 * can make progress. `changed()` resolves at the next change of either.
 */
export class Traffic {
  inFlight = 0;
  parked = 0;
  #wake: (() => void) | undefined;

  /** True when every request in flight is parked on the upstream's timer (or none is out). */
  idle(): boolean {
    return this.inFlight <= this.parked;
  }

  changed(): Promise<void> {
    return new Promise((resolve) => (this.#wake = resolve));
  }

  bump(field: 'inFlight' | 'parked', by: number): void {
    this[field] += by;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/**
 * The upstream's clock (the faked globals), counting the requests parked
 * on its latency timer. Each wait is drawn between half and one and a half
 * times the latency (seeded), so answers arrive spread out as they do from
 * a real upstream, not all at the same instant. Waits are rounded to
 * `tickMs`, so the few answers due at the same tick go out together: one
 * clock advance releases several, which keeps the run fast.
 */
export function parkingClock(traffic: Traffic, random: () => number): MockClock {
  const pending = new Set<unknown>();
  const release = (handle: unknown) => {
    if (pending.delete(handle)) traffic.bump('parked', -1);
  };
  return {
    setTimeout(callback, ms) {
      const handle = setTimeout(
        () => {
          release(handle);
          callback();
        },
        Math.round((ms * (0.5 + random())) / tickMs) * tickMs,
      );
      pending.add(handle);
      traffic.bump('parked', 1);
      return handle;
    },
    clearTimeout(handle) {
      release(handle);
      clearTimeout(handle as ReturnType<typeof setTimeout>);
    },
    now: () => Date.now(),
  };
}

/**
 * The innermost middleware, counting each request as in flight from the
 * moment it is sent until its answer is done: a JSON answer when `next()`
 * settles, a stream when it settles (read to its end, cut, or cancelled by
 * its reader), since its chunks still travel over the wire after the
 * headers. Registered after `next()`, the listener is bound to this
 * attempt's response, not to the whole call.
 */
export function counting(traffic: Traffic): Middleware {
  return async function counting(ctx, next) {
    traffic.bump('inFlight', 1);
    let streaming = false;
    try {
      await next();
      if (ctx.stream) {
        streaming = true;
        ctx.onSettled(() => traffic.bump('inFlight', -1));
      }
    } finally {
      if (!streaming) traffic.bump('inFlight', -1);
    }
  };
}

/**
 * Lets I/O run until `done()`, and moves fake time to the next timer
 * whenever nothing but timers is left to happen. While requests are on
 * the wire it sleeps until the traffic changes (no busy loop). Throws when
 * nothing can happen any more and calls are still pending: a request left
 * hanging.
 *
 * @returns how many times it advanced the clock
 */
export async function drive(done: () => boolean, traffic: Traffic, pending: () => number): Promise<number> {
  let advances = 0;
  let stuck = 0;
  while (!done()) {
    // One event-loop turn: microtasks run out, woken calls reach the transport.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!traffic.idle()) {
      stuck = 0;
      await traffic.changed();
    } else if (vi.getTimerCount() > 0) {
      stuck = 0;
      // To the next timer, then every other timer due at that instant.
      vi.advanceTimersToNextTimer();
      vi.advanceTimersByTime(0);
      advances++;
    } else if (++stuck > stuckTurns) {
      throw new Error(`${pending()} call(s) pending with no I/O and no timer left`);
    }
  }
  return advances;
}

export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
export const percent = (rate: number) => `${(rate * 100).toFixed(1)}%`;
