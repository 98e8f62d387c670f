// Identical streams that join, read, break off, are aborted or time out at random, over real
// HTTP on fake time: every call settles once with its answer or its own abort, every reader
// that stays gets the whole answer, and each request the upstream answered is charged to
// exactly one call, however its sender left.
import { seededRandom } from '@sluice/testing';
import { chat, closeTestPipelines, testPipeline } from '@sluice/testing/kit';
import { afterEach, describe, expect, it } from 'vitest';
import { cache } from './cache.js';
import './index.js';

afterEach(closeTestPipelines);

const request = chat('the same question', { temperature: 0, stream: true });

interface Outcome {
  text: string;
  error: string | undefined;
  /** It read on to the end (no break, no abort of its own). */
  stayed: boolean;
  settled: number;
  /** Filled in by the observer when the call settled. */
  charged: boolean;
  sentAndAnswered: boolean;
}

describe('cache: shared streams under random readers', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('settles every call once, answers whole, charges each answered request once (seed %i)', async (seed) => {
    const random = seededRandom(seed);
    const outcomes: Outcome[] = [];
    const { llm, clock } = await testPipeline({
      middleware: [
        async function observe(ctx, next) {
          ctx.onSettled((settlement) => {
            const outcome = outcomes[Number(ctx.tags.n)] as Outcome;
            outcome.settled++;
            const { answeredBy, costCarriedBy, cache: state } = ctx.state;
            outcome.charged = answeredBy === undefined && costCarriedBy === undefined && (settlement.accepted || state?.carries === true);
            outcome.sentAndAnswered = state?.status === 'miss' && settlement.accepted;
          });
          await next();
        },
        cache(),
      ],
      upstream: { reply: 'one two three four five six seven eight nine ten', latencyMs: 50, chunkDelayMs: 20 },
    });
    const calls: Array<Promise<void>> = [];
    for (let index = 0; index < 40; index++) {
      const behaviour = Math.floor(random() * 5); // 0 and 4 read all, 1 aborts, 2 breaks, 3 has a deadline
      const after = 1 + Math.floor(random() * 8);
      const startAt = Math.floor(random() * 400);
      const timeoutMs = 60 + Math.floor(random() * 200);
      const outcome: Outcome = { text: '', error: undefined, stayed: false, settled: 0, charged: false, sentAndAnswered: false };
      outcomes.push(outcome);
      calls.push(
        (async () => {
          await new Promise<void>((resolve) => clock.setTimeout(resolve, startAt));
          const controller = new AbortController();
          const options = { signal: controller.signal, tags: { n: String(index) }, ...(behaviour === 3 ? { timeoutMs } : {}) };
          let read = 0;
          try {
            for await (const part of llm.stream(request, options)) {
              outcome.text += part.choices[0]?.delta.content ?? '';
              read++;
              if (behaviour === 1 && read === after) controller.abort();
              if (behaviour === 2 && read === after) break;
            }
            outcome.stayed = !(behaviour === 2 && read === after);
          } catch (caught) {
            outcome.error = (caught as { code?: string }).code ?? String(caught);
          }
        })(),
      );
    }
    await clock.run(Promise.all(calls), { maxMs: 120_000 });
    await clock.settle(5);
    const whole = outcomes.filter((outcome) => outcome.stayed && outcome.error === undefined);
    expect(whole.length).toBeGreaterThan(0);
    for (const outcome of outcomes) {
      expect(outcome.settled).toBe(1);
      // Only a call's own abort or deadline ends it: never another call's.
      if (outcome.error !== undefined) expect(['ABORTED', 'DEADLINE_EXCEEDED']).toContain(outcome.error);
      if (outcome.stayed && outcome.error === undefined) expect(outcome.text).toBe((whole[0] as Outcome).text);
    }
    expect((whole[0] as Outcome).text).toContain('one two three');
    // Each request the upstream answered is charged to one call: its sender, or the call it was handed to.
    const answered = outcomes.filter((outcome) => outcome.sentAndAnswered).length;
    expect(outcomes.filter((outcome) => outcome.charged).length).toBe(answered);
  });
});
