/*
 * Issue 7: a failure-rate breaker must judge concurrent traffic by its real
 * failure share. Failures (a 503) come back at once, successes take their
 * time (a stream's chunks, a completion's generation), so the order in which
 * calls finish is not the share in which they fail.
 *
 * The mock upstream's own waits (between stream chunks, before a slow
 * answer) run on a gate the test opens by hand, and the pipeline runs on
 * the kit's manual clock, which stays put: every call of a wave is judged
 * as far as it can be before any held answer moves on, the most adverse
 * order a real upstream could produce, and nothing sleeps.
 */
import type { SluiceEvents } from '@sluice/core';
import type { MockClock, MockUpstreamOptions } from '@sluice/testing';
import { chat, closeTestPipelines, testPipeline } from '@sluice/testing/kit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { breaker } from './breaker.js';
import type { BreakerOptions } from './options.js';

type CircuitName = 'circuit-open' | 'circuit-half-open' | 'circuit-close';
type CircuitEvent = { [K in CircuitName]: { name: K } & SluiceEvents[K] }[CircuitName];

/** A mock clock whose waits are held until `open()`; while open they run on the next turn. */
function gate(): MockClock & { open(): void; close(): void } {
  let held = new Map<object, () => void>();
  let opened = false;
  return {
    setTimeout(callback) {
      const handle = {};
      if (opened) setImmediate(callback);
      else held.set(handle, callback);
      return handle;
    },
    clearTimeout(handle) {
      held.delete(handle as object);
    },
    open() {
      opened = true;
      const due = [...held.values()];
      held = new Map();
      for (const callback of due) callback();
    },
    close() {
      opened = false;
    },
  };
}

/** Reads an iterator to its end; the error it ended with, if any. */
async function finish(iterator: AsyncIterator<unknown>): Promise<unknown> {
  try {
    while (!(await iterator.next()).done) {
      // read on
    }
    return undefined;
  } catch (error: unknown) {
    return error;
  }
}

const ask = () => chat();

/** The kit's test pipeline running `breaker(options)`, its upstream on the gate. */
async function setup(options: BreakerOptions, upstream: MockUpstreamOptions = {}) {
  const circuit = breaker(options);
  const t = await testPipeline({ middleware: circuit, upstream: { clock: held, ...upstream } });
  return {
    ...t,
    circuit,
    key: () => `${t.upstream.url}|gpt-4.1`,
    /** The circuit events so far, each as `{ name, ...payload }`. */
    get seen(): CircuitEvent[] {
      return t.events.all.filter(({ name }) => name.startsWith('circuit-')).map(({ name, payload }) => ({ name, ...payload }) as CircuitEvent);
    },
  };
}

let h: Awaited<ReturnType<typeof setup>>;
let held: ReturnType<typeof gate>;

beforeEach(() => {
  held = gate();
});

afterEach(async () => {
  held.open();
  await closeTestPipelines();
});

/**
 * Sends `size` streams at once, waits until each has failed or delivered
 * its first chunk (the rest of every stream is held at the gate), reads the
 * circuit, then lets the streams run to their end. Returns the circuit as
 * it stood at the adverse moment and the failures the callers saw.
 */
async function streamWave(size: number) {
  const streams = Array.from({ length: size }, () => h.llm.stream(ask())[Symbol.asyncIterator]());
  const firsts = await Promise.allSettled(streams.map((stream) => stream.next()));
  const atWorst = await h.circuit.state(h.key());
  held.open();
  const ends = await Promise.all(streams.map((stream, i) => (firsts[i]?.status === 'fulfilled' ? finish(stream) : undefined)));
  held.close();
  const failed = firsts.filter((first) => first.status === 'rejected').map((first) => first.reason as { code: string });
  return { atWorst, failed, cut: ends.filter((end) => end !== undefined) };
}

describe('breaker: failure rate under concurrency (issue 7)', () => {
  const failureRate = { threshold: 0.5, minimumCalls: 20, windowMs: 60_000 };

  it('does not trip on 30% failures of streams at concurrency 100', async () => {
    h = await setup(
      { failures: false, failureRate },
      { seed: 7, faults: [{ probability: 0.3, fault: { kind: 'status', status: 503 } }], chunkDelayMs: 10 },
    );
    let failures = 0;
    for (let wave = 0; wave < 5; wave++) {
      const { atWorst, failed, cut } = await streamWave(100);
      // Every 503 is judged, and no stream has ended yet: its success is counted all the same.
      expect(atWorst).toMatchObject({ state: 'closed', window: { calls: 100 * (wave + 1) } });
      expect(failed.every((error) => error.code === 'SERVER_ERROR')).toBe(true);
      expect(cut).toEqual([]);
      failures += failed.length;
    }
    expect(failures).toBeGreaterThan(120); // about 30% of 500 calls failed, as seeded
    expect(failures).toBeLessThan(180);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', window: { calls: 500, failures } });
    expect(h.seen).toEqual([]);
    expect(h.upstream.requests).toHaveLength(500);
  });

  it('trips on 80% failures of streams at concurrency 100, within the first wave', async () => {
    h = await setup(
      { failures: false, failureRate },
      { seed: 7, faults: [{ probability: 0.8, fault: { kind: 'status', status: 503 } }], chunkDelayMs: 10 },
    );
    const { atWorst, failed } = await streamWave(100);
    expect(atWorst).toMatchObject({ state: 'open', reason: 'failure-rate' });
    expect(failed.length).toBeGreaterThan(60);
    expect(h.seen).toEqual([expect.objectContaining({ name: 'circuit-open', reason: 'failure-rate' })]);
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    expect(h.upstream.requests).toHaveLength(100);
  });

  it('holds minimumCalls when 20 failures land before any success completes', async () => {
    h = await setup({ failures: false, failureRate });
    // 30 slow answers held at the gate, then 20 that fail at once.
    h.upstream.enqueue(...Array.from({ length: 30 }, () => ({ kind: 'delay' as const, latencyMs: 1_000 })));
    const slow = Array.from({ length: 30 }, () => h.llm.complete(ask()));
    await h.upstream.waitForRequests(30);
    h.upstream.enqueue(...Array.from({ length: 20 }, () => ({ kind: 'status' as const, status: 503 })));
    const fast = Array.from({ length: 20 }, () => expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'SERVER_ERROR' }));
    await Promise.all(fast);
    // 20 of 20 judged calls failed, but 30 more are in flight: 20 of 50 cannot reach 0.5.
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', window: { calls: 20, failures: 20 } });
    held.open();
    await Promise.all(slow);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', window: { calls: 50, failures: 20, rate: 0.4 } });
    expect(h.seen).toEqual([]);
  });

  it('still trips while calls are in flight once the failures alone reach the threshold', async () => {
    h = await setup({ failures: false, failureRate });
    h.upstream.enqueue(...Array.from({ length: 10 }, () => ({ kind: 'delay' as const, latencyMs: 1_000 })));
    const slow = Array.from({ length: 10 }, () => h.llm.complete(ask()).catch((error: unknown) => error));
    await h.upstream.waitForRequests(10);
    for (let i = 0; i < 9; i++) h.upstream.enqueue({ kind: 'status', status: 503 });
    await Promise.all(Array.from({ length: 9 }, () => expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'SERVER_ERROR' })));
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed' }); // 9 judged: below minimumCalls
    h.upstream.enqueue(...Array.from({ length: 11 }, () => ({ kind: 'status' as const, status: 503 })));
    await Promise.all(Array.from({ length: 11 }, () => expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'SERVER_ERROR' })));
    // 20 failures judged, 10 calls in flight: 20 of 30 reaches 0.5 whatever those 10 do.
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open', reason: 'failure-rate', failures: 20 });
    held.open();
    await Promise.all(slow);
  });
});

describe('breaker: a stream is judged when the upstream accepts it', () => {
  it('counts a cut stream once: the failure replaces its success, and cut after cut trips', async () => {
    h = await setup({ failures: 3, failureRate: { threshold: 0.99, windowMs: 60_000 } });
    for (let i = 0; i < 2; i++) {
      h.upstream.enqueue({ kind: 'cut', afterChunks: 2 });
      const stream = h.llm.stream(ask())[Symbol.asyncIterator]();
      await expect(finish(stream)).resolves.toMatchObject({ code: 'STREAM_CUT' });
    }
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 2, window: { calls: 2, failures: 2 } });
    h.upstream.enqueue({ kind: 'reset', at: 'mid-stream', afterChunks: 3 });
    await expect(finish(h.llm.stream(ask())[Symbol.asyncIterator]())).resolves.toMatchObject({ code: 'STREAM_CUT' });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open', reason: 'consecutive', failures: 3 });
  });

  it('counts an accepted stream as a success before it ends, whether it is read to its end or not', async () => {
    h = await setup({ failures: 2, failureRate: { threshold: 0.99, windowMs: 60_000 } }, { chunkDelayMs: 10 });
    h.upstream.enqueue({ kind: 'status', status: 503 });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    const stream = h.llm.stream(ask())[Symbol.asyncIterator]();
    await expect(stream.next()).resolves.toMatchObject({ done: false });
    expect(await h.circuit.state(h.key())).toMatchObject({ failures: 0, window: { calls: 2, failures: 1 } });
    await stream.return?.(); // its consumer breaks out: nothing changes
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 0, window: { calls: 2, failures: 1 } });
  });
});
