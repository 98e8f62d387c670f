import { systemClock, type Clock } from '@sluice/core';

/**
 * A {@link Clock} on Redis's time: the local clock plus an offset to the
 * server's `TIME`, measured as the store writes (the compare-and-set
 * script returns `TIME` on one command in 16), so every instance that passes
 * it to `createPipeline({ clock })` reads the same time, whatever its own
 * clock says.
 *
 * Tolerance. A sample taken over a round trip of r ms places the server's
 * time within ±r/2 of the midpoint. The clock keeps the sample with the
 * smallest uncertainty, aged by a drift allowance (10 ms a minute, far
 * above a real quartz's), and takes any fresher sample that is at least as
 * tight, so two instances agree within about half a round trip each: well
 * under a millisecond on one network. It never runs backwards, even when
 * a new sample moves the offset down. When the local clock steps back,
 * the clock holds still only until the next sample (one write in 16),
 * which is taken whatever its round trip.
 */
export interface RedisClock extends Clock {
  /** The current estimate of Redis time minus local time, in ms. */
  readonly offsetMs: number;
  /** Half the round trip of the sample the offset comes from, aged: how far the clock may be from Redis's. */
  readonly uncertaintyMs: number;
  /** Feeds one sample: local times before and after a round trip, and the server's TIME reply. */
  sample(sentAt: number, receivedAt: number, serverMs: number): void;
}

const driftPerMs = 10 / 60_000;

/**
 * Makes the clock a Redis store offers as `store.clock`.
 *
 * @param local - the process's own clock (default the system clock)
 */
export function redisClock(local: Clock = systemClock): RedisClock {
  let offset = 0;
  let halfTrip = Infinity;
  let sampledAt = 0;
  let last = -Infinity;
  const uncertainty = () => {
    const aged = local.now() - sampledAt;
    // The local clock stepped back since the sample (an NTP step, a resumed VM): the offset measured
    // against it is off by the step, so the next sample replaces it whatever its round trip. Aged
    // as before, the sample looked tighter than any new one: none was taken, and the clock, which
    // never runs backwards, stood still for as long as the step.
    return aged < 0 ? Infinity : halfTrip + aged * driftPerMs;
  };
  return {
    get offsetMs() {
      return offset;
    },
    get uncertaintyMs() {
      return uncertainty();
    },
    sample(sentAt, receivedAt, serverMs) {
      const half = Math.max(0, receivedAt - sentAt) / 2;
      if (!Number.isFinite(serverMs) || half > uncertainty()) return;
      offset = serverMs - (sentAt + half);
      halfTrip = half;
      sampledAt = receivedAt;
    },
    now() {
      last = Math.max(last, Math.round(local.now() + offset));
      return last;
    },
    setTimeout: (callback, ms) => local.setTimeout(callback, ms),
    clearTimeout: (handle) => local.clearTimeout(handle),
  };
}
