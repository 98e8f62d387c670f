/**
 * One client leaving a stream that identical calls joined, as in
 * `sluice serve` with the cache on: the others still get the whole answer,
 * and the spend ledger counts the one upstream request once, at what the
 * same request costs read whole by a single call.
 */
import { cache } from '@sluice/cache';
import { type Middleware, openAICompatible, type Pipeline } from '@sluice/core';
import { trackCost } from '@sluice/cost';
import { retry } from '@sluice/retry';
import { router } from '@sluice/router';
import { chat, closeTestPipelines, drain, testPipeline } from '@sluice/testing/kit';
import { afterEach, describe, expect, it } from 'vitest';

afterEach(closeTestPipelines);

const request = chat('one two three four five six seven eight', { temperature: 0, stream: true, stream_options: { include_usage: true } });
const upstream = { latencyMs: 50, chunkDelayMs: 30 };

/** A stream call that aborts its own call after `chunks` chunks. */
function leavesAfter(llm: Pipeline, chunks: number): Promise<void> {
  const controller = new AbortController();
  const reading = (async () => {
    let read = 0;
    for await (const _chunk of llm.stream(request, { signal: controller.signal })) if (++read === chunks) controller.abort();
  })();
  reading.catch(() => {});
  return reading;
}

describe('a shared stream its sender leaves', () => {
  it.each(['over core\'s transport', 'behind a router'])('%s, reaches every joined call whole, and the ledger counts its request once, as if read whole', async (how) => {
    const single = await testPipeline({ middleware: [trackCost()], upstream });
    await single.clock.run(drain(single.llm.stream(request)));
    const whole = single.events.of('cost')[0]?.usd ?? 0;
    expect(whole).toBeGreaterThan(0);

    const { llm, clock, events, upstream: mock } = await testPipeline({ middleware: [trackCost(), cache()], upstream });
    if (how === 'behind a router') {
      // One deployment on the same mock, with retry inside: the router's hop is a call of its own.
      const routed = router({
        deployments: [{ id: 'only', model: 'gpt-4.1', transport: openAICompatible({ baseUrl: mock.url, apiKey: 'sk-test' }) }],
        middleware: () => [retry()],
      });
      llm.use(routed as unknown as Middleware);
    }
    const sender = leavesAfter(llm, 2);
    await clock.until(() => mock.requests.length === 1);
    const joined = [drain(llm.stream(request)), drain(llm.stream(request))];
    await expect(clock.run(sender)).rejects.toMatchObject({ code: 'ABORTED' });
    const reads = await clock.run(Promise.all(joined));
    const alsoWhole = await single.clock.run(drain(single.llm.stream(request)));
    for (const read of reads) {
      expect(read.error).toBeUndefined();
      expect(read.text).toBe(alsoWhole.text);
    }
    expect(mock.requests).toHaveLength(1);
    // The sender at $0 (another call carries its request), one joined call charged the whole request, one at $0.
    const costs = events.of('cost');
    expect(costs).toHaveLength(3);
    expect(costs.reduce((sum, cost) => sum + cost.usd, 0)).toBeCloseTo(whole, 12);
    expect(costs.filter((cost) => cost.usd > 0)).toHaveLength(1);
  });
});
