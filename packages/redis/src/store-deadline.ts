import { systemClock } from '@sluice/core';

/*
 * Why a store call's deadline is not a plain timer started when the call
 * is made. The timeout is there to catch a Redis that does not answer. What
 * it must not catch is this process being the slow one, which is what the
 * demo's three processes on two cores showed: every store-error there came
 * from a single round trip (no conflict retry) whose reply was late because
 * the process itself had not run (a sibling compiling at start-up took the
 * CPU; the process's own first calls ran cold code), by 50 to 400 ms, while
 * Redis answered in well under a millisecond. Three things follow.
 *
 * - The deadline starts when the write goes to Redis, not when the call
 *   queued: time spent behind the process's own work (the rest of a busy
 *   turn of the event loop, an earlier write to the same record) is not
 *   Redis being slow.
 * - When it passes, it looks once more after the I/O that is due has run:
 *   a timer that fires after a long task sees the timers phase before the
 *   poll phase, so a reply already waiting on the socket would otherwise be
 *   called missing.
 * - A timer that fires late by more than a quarter of the timeout means the
 *   process could not read any reply for that long: Redis gets that time
 *   back, once, up to one more timeout. A Redis that is really down is
 *   still given up on after the timeout (the timer is on time then, since
 *   nothing else runs), and no call waits past twice the timeout plus the
 *   process's own stalls: never a hang.
 */

/** Runs `callback` after the I/O that is due now (setImmediate's check phase comes after the poll phase). */
const afterDueIo: (callback: () => void) => void =
  typeof globalThis.setImmediate === 'function'
    ? (callback) => void globalThis.setImmediate(callback)
    : (callback) => void systemClock.setTimeout(callback, 0);

/** A running deadline: `cancel` stops it for good. */
export interface StoreDeadline {
  cancel(): void;
}

/** One deadline of a {@link deadlineQueue}, in its list. */
interface Entry extends StoreDeadline {
  due: number;
  expire: (() => void) | undefined;
  graced: boolean;
  prev: Entry | undefined;
  next: Entry | undefined;
  queued: boolean;
}

/**
 * The deadlines of one store's calls, on one timer. Each calls its
 * `expire` once Redis has had `timeoutMs` of this process's attention
 * without it being cancelled, by the rules at the top of this file (it
 * starts when called, looks once more after due I/O, forgives one stall).
 * One timer, not one set and cleared per call, which a store deciding tens
 * of thousands of times a second pays in CPU and garbage. Deadlines of one
 * timeout fall due in the order they start,
 * so they queue in a list, and one given extra time for a stall is placed
 * by its new due time; a cancelled one leaves the list at once (kept until
 * due, the writes of a busy second would pile up behind a long timeout).
 *
 * @param timeoutMs - how long Redis may take to answer
 * @returns `start(expire)`, which runs one deadline
 */
export function deadlineQueue(timeoutMs: number): (expire: () => void) => StoreDeadline {
  let head: Entry | undefined;
  let tail: Entry | undefined;
  let timer: unknown;
  let timerDue = Number.POSITIVE_INFINITY;

  const unlink = (entry: Entry) => {
    if (entry.prev) entry.prev.next = entry.next;
    else head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else tail = entry.prev;
    entry.prev = entry.next = undefined;
    entry.queued = false;
  };

  const place = (entry: Entry) => {
    entry.queued = true;
    // Usually the latest due of all: at the tail. A stall's extra time may fall before others'.
    let after = tail;
    while (after && after.due > entry.due) after = after.prev;
    entry.prev = after;
    entry.next = after ? after.next : head;
    if (entry.next) entry.next.prev = entry;
    else tail = entry;
    if (after) after.next = entry;
    else head = entry;
  };

  const arm = () => {
    if (!head || timerDue <= head.due) return;
    if (timer !== undefined) systemClock.clearTimeout(timer);
    timerDue = head.due;
    timer = systemClock.setTimeout(fire, Math.max(0, head.due - Date.now()));
  };

  const fire = () => {
    timer = undefined;
    timerDue = Number.POSITIVE_INFINITY;
    const firedAt = Date.now();
    afterDueIo(() => {
      while (head && head.due <= firedAt) {
        const entry = head;
        unlink(entry);
        const late = firedAt - entry.due;
        if (!entry.graced && late > timeoutMs / 4) {
          entry.graced = true;
          entry.due = Date.now() + Math.min(late, timeoutMs);
          place(entry);
          continue;
        }
        const expire = entry.expire;
        entry.expire = undefined;
        expire?.();
      }
      arm();
    });
  };

  return (expire) => {
    const entry: Entry = {
      due: Date.now() + timeoutMs,
      expire,
      graced: false,
      prev: undefined,
      next: undefined,
      queued: false,
      cancel() {
        entry.expire = undefined;
        if (entry.queued) unlink(entry);
      },
    };
    place(entry);
    if (timer === undefined) arm();
    return entry;
  };
}
