import { systemClock } from '@sluice/core';
import { afterIo } from '@sluice/core/kit';

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

/** A running deadline: `cancel` stops it for good. */
export interface StoreDeadline {
  cancel(): void;
}

/**
 * Something with a deadline on a {@link DeadlineQueue}: the queue links it
 * into its list by these fields, so starting a deadline allocates nothing
 * (a store's write attempt is one). Subclass it and give it `expire`.
 */
export abstract class DeadlineNode {
  /** @internal When it falls due, ms since the epoch. */
  due = 0;
  /** @internal Given its time back once already for a stall. */
  graced = false;
  /** @internal In the queue's list. */
  queued = false;
  /** @internal */
  prev: DeadlineNode | undefined = undefined;
  /** @internal */
  next: DeadlineNode | undefined = undefined;
  /** Runs once, when the deadline passes uncancelled. */
  abstract expire(): void;
}

/** A closure's deadline, for calls that are not nodes themselves. */
class CallbackDeadline extends DeadlineNode implements StoreDeadline {
  constructor(
    private readonly queue: DeadlineQueue,
    private readonly callback: () => void,
  ) {
    super();
  }

  expire(): void {
    this.callback();
  }

  cancel(): void {
    this.queue.cancel(this);
  }
}

/** The deadlines of one store's calls, on one timer (see {@link deadlineQueue}). */
export interface DeadlineQueue {
  /** Starts `node`'s deadline now (a node already running is left as it is). */
  start(node: DeadlineNode): void;
  /** Stops `node`'s deadline for good; nothing when it is not running. */
  cancel(node: DeadlineNode): void;
  /** Starts a deadline that calls `expire`. */
  after(expire: () => void): StoreDeadline;
}

/**
 * The deadlines of one store's calls, on one timer. Each node's `expire`
 * runs once Redis has had `timeoutMs` of this process's attention without
 * it being cancelled, by the rules at the top of this file (it starts when
 * started, looks once more after due I/O, forgives one stall). One timer,
 * not one set and cleared per call, which a store deciding tens of
 * thousands of times a second pays in CPU and garbage. Deadlines of one
 * timeout fall due in the order they start, so they queue in a list, and
 * one given extra time for a stall is placed by its new due time; a
 * cancelled one leaves the list at once (kept until due, the writes of a
 * busy second would pile up behind a long timeout).
 *
 * @param timeoutMs - how long Redis may take to answer
 * @returns the queue
 */
export function deadlineQueue(timeoutMs: number): DeadlineQueue {
  let head: DeadlineNode | undefined;
  let tail: DeadlineNode | undefined;
  let timer: unknown;
  let timerDue = Number.POSITIVE_INFINITY;

  const unlink = (node: DeadlineNode) => {
    if (node.prev) node.prev.next = node.next;
    else head = node.next;
    if (node.next) node.next.prev = node.prev;
    else tail = node.prev;
    node.prev = node.next = undefined;
    node.queued = false;
  };

  const place = (node: DeadlineNode) => {
    node.queued = true;
    // Usually the latest due of all: at the tail. A stall's extra time may fall before others'.
    let after = tail;
    while (after && after.due > node.due) after = after.prev;
    node.prev = after;
    node.next = after ? after.next : head;
    if (node.next) node.next.prev = node;
    else tail = node;
    if (after) after.next = node;
    else head = node;
  };

  const arm = () => {
    if (!head || timerDue <= head.due) return;
    if (timer !== undefined) systemClock.clearTimeout(timer);
    timerDue = head.due;
    timer = systemClock.setTimeout(fire, Math.max(0, head.due - Date.now()));
  };

  const fire = () => {
    timer = undefined;
    const armedFor = timerDue;
    timerDue = Number.POSITIVE_INFINITY;
    const firedAt = Date.now();
    // The timer waited its delay in real time, so the head it was armed for is due. Due that far
    // after now, the wall clock stepped back meanwhile: every deadline moves back by the step, or
    // a write Redis never answers would wait for as long as the step instead of timeoutMs.
    const stepped = armedFor - firedAt;
    if (stepped > 2 * timeoutMs) {
      // Those started before the step (due further ahead than any deadline can be) move back by
      // it, into their place among those started since.
      const before: DeadlineNode[] = [];
      for (let node = head; node; node = node.next) if (node.due - firedAt > 2 * timeoutMs) before.push(node);
      for (const node of before) {
        unlink(node);
        node.due -= stepped;
        place(node);
      }
    }
    afterIo(() => {
      while (head && head.due <= firedAt) {
        const node = head;
        unlink(node);
        const late = firedAt - node.due;
        if (!node.graced && late > timeoutMs / 4) {
          node.graced = true;
          node.due = Date.now() + Math.min(late, timeoutMs);
          place(node);
          continue;
        }
        node.expire();
      }
      arm();
    });
  };

  const queue: DeadlineQueue = {
    start(node) {
      if (node.queued) return;
      node.due = Date.now() + timeoutMs;
      node.graced = false;
      place(node);
      if (timer === undefined) arm();
    },
    cancel(node) {
      if (node.queued) unlink(node);
    },
    after(expire) {
      const node = new CallbackDeadline(queue, expire);
      queue.start(node);
      return node;
    },
  };
  return queue;
}
