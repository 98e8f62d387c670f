import { describe, expect, it } from 'vitest';
import { seededRandom, type Fault } from '@sluice/testing';
import type { Settlement } from './context.js';
import { SluiceError } from './errors.js';
import { ask, setup } from './test-helpers.js';
import { readAhead } from './transport-stream.js';

/**
 * Streams heard by their call and by each attempt, under random upstream
 * faults and random readers: every scope settles once, the last attempt
 * before the call, and the call says what its reader saw. The pipeline
 * settles the call through the last attempt's own stream when it can
 * (`SettlingStream.adopt`), and wraps it again when it cannot (a read-ahead
 * nobody wanted the text of): both paths are taken here.
 */
describe('a stream heard by its call and its attempts, fuzzed', () => {
  const seeds = [1, 2, 3, 4, 5, 6];

  it.each(seeds)('settles every call once, after its last attempt, as its reader saw it (seed %i)', async (seed) => {
    const random = seededRandom(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const { upstream, llm } = await setup({ upstream: { reply: 'one two three four five six seven' } });
    const log: string[] = [];
    const calls: Settlement[] = [];
    const attempts: Settlement[][] = [];
    let registered = 0;
    let wantAttemptText = true;

    llm.use(function callListener(ctx, next) {
      ctx.onSettled((settled) => {
        log.push('call');
        calls.push(settled);
      });
      return next();
    });
    // A retry of our own: a failure at the first chunk, read ahead, is tried again.
    llm.use(async function retryFirstChunk(ctx, next) {
      for (let attempt = 1; ; attempt++) {
        try {
          await next();
          await readAhead(ctx);
          return;
        } catch (error) {
          if (attempt >= 3 || !(error instanceof SluiceError) || !error.retryable) throw error;
        }
      }
    });
    llm.use(async function attemptListener(ctx, next) {
      await next();
      if (!wantAttemptText) return;
      registered++;
      const mine = (attempts[calls.length] ??= []);
      ctx.onSettled((settled) => {
        log.push('attempt');
        mine.push(settled);
      });
    });

    for (let round = 0; round < 12; round++) {
      const faults: Fault[] = pick<Fault[]>([
        [],
        [{ kind: 'status', status: 503 }],
        [{ kind: 'cut', afterChunks: Math.floor(random() * 5) }],
        [{ kind: 'sse-error', afterChunks: Math.floor(random() * 4) }],
        [{ kind: 'reset', at: 'mid-stream', afterChunks: 1 + Math.floor(random() * 3) }],
      ]);
      for (const fault of faults) upstream.enqueue(fault);
      // Now and then nobody listens per attempt: the call's stream is then a layer of its own.
      wantAttemptText = random() < 0.75;
      const reader = pick(['all', 'break', 'abort'] as const);
      const stopAfter = 1 + Math.floor(random() * 3);
      const controller = new AbortController();
      const before = { calls: calls.length, registered, log: log.length };

      let received = 0;
      let text = '';
      let caught: unknown;
      let finished = false;
      try {
        for await (const chunk of llm.stream(ask(), { signal: controller.signal })) {
          received++;
          text += chunk.choices[0]?.delta.content ?? '';
          if (received === stopAfter && reader === 'break') break;
          if (received === stopAfter && reader === 'abort') controller.abort();
        }
        finished = true;
      } catch (error) {
        caught = error;
      }
      await new Promise((resolve) => setImmediate(resolve));

      const label = `seed ${seed}, round ${round}, ${JSON.stringify(faults)}, ${reader} after ${stopAfter}`;
      expect(calls.length, label).toBe(before.calls + 1);
      const call = calls[calls.length - 1] as Settlement;
      const mine = attempts[before.calls] ?? [];
      expect(mine.length, label).toBe(registered - before.registered);
      const order = log.slice(before.log);
      expect(order[order.length - 1], label).toBe('call');
      expect(order.filter((entry) => entry === 'call'), label).toHaveLength(1);
      const last = mine[mine.length - 1];
      if (last !== undefined) expect(last.outcome, label).toBe(call.outcome);

      if (caught !== undefined) {
        expect(call.outcome, label).toBe('error');
        expect(call.error, label).toBe(caught);
        if (last !== undefined) expect(last.error, label).toBe(caught);
      } else if (finished && (reader === 'all' || received < stopAfter)) {
        expect(call.outcome, label).toBe('success');
        expect(call.chunks, label).toBe(received);
        expect(call.streamedText, label).toBe(text);
      } else {
        expect(call.outcome, label).toBe('cancelled');
        expect(call.chunks, label).toBeGreaterThanOrEqual(received);
      }
      upstream.reset();
    }
  });
});
