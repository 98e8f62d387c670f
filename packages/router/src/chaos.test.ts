import { type ChatCompletionRequest, createPipeline, openAICompatible, type Pipeline, type Transport } from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { retry } from '@sluice/retry';
import { type MockUpstream, mockUpstream, seededRandom } from '@sluice/testing';
import { checkedStore } from '@sluice/testing/kit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { router } from './router.js';
import { clock, upstreams } from './test-deployments.js';

/**
 * The benchmark's chaos run, smaller: three deployments of one model, one
 * down (its port refuses), one answering 503 to 30% of requests (seeded),
 * one slow (400 ms on the test's clock), each behind retry(2) and
 * breaker(5). The same calls go through the router (least-busy, hedged)
 * and, to compare, round robin over the three without it.
 */
const calls = 1_000;
const concurrency = 64;
const resilience = () => [retry({ attempts: 2, backoff: { baseMs: 5, maxMs: 20 } }), breaker({ failures: 5, openMs: 2_000 })];
const ask = (index: number): ChatCompletionRequest => ({ model: 'gpt-4.1', messages: [{ role: 'user', content: `call ${index}` }], max_tokens: 32 });

let unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
const pipelines: Pipeline[] = [];

beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});

afterEach(async () => {
  for (const llm of pipelines.splice(0)) await clock.run(llm.close({ graceMs: 0 }));
  for (const upstream of upstreams.splice(0)) await upstream.close();
  process.off('unhandledRejection', onUnhandled);
});

async function deployments() {
  // A port that refuses: a mock started and closed.
  const gone = await mockUpstream({ clock });
  const downUrl = gone.url;
  await gone.close();
  const flaky = await mockUpstream({ clock, seed: 7, faults: [{ probability: 0.3, fault: { kind: 'status', status: 503 } }] });
  const slow = await mockUpstream({ clock, latencyMs: 400 });
  upstreams.push(flaky, slow);
  const transports: Transport[] = [downUrl, flaky.url, slow.url].map((baseUrl) => openAICompatible({ baseUrl, apiKey: 'sk-test' }));
  return { flaky, slow, transports };
}

/** Runs every call, `concurrency` at a time, each with a 10 s deadline, on the test's clock; every call must settle. */
async function drive(call: (index: number) => Promise<unknown>) {
  let next = 0;
  let ok = 0;
  let settled = 0;
  const codes = new Map<string, number>();
  const worker = async () => {
    while (next < calls) {
      const index = next++;
      try {
        await call(index);
        ok++;
      } catch (error) {
        const code = (error as { code?: string }).code ?? 'unknown';
        codes.set(code, (codes.get(code) ?? 0) + 1);
      } finally {
        settled++;
      }
    }
  };
  await clock.run(Promise.all(Array.from({ length: concurrency }, worker)), { stepMs: 20, maxMs: 120_000 });
  return { ok, settled, codes };
}

const requestsOf = (...mocks: MockUpstream[]) => mocks.reduce((sum, mock) => sum + mock.requests.length, 0);

describe('router: chaos', () => {
  it('answers far more calls than round robin does with one deployment down, one failing 30% and one slow, every call settled', async () => {
    const withoutRouter = await deployments();
    const spread = withoutRouter.transports.map((transport) => {
      const llm = createPipeline({ transport, clock, store: checkedStore({ clock }) });
      for (const middleware of resilience()) llm.use(middleware);
      pipelines.push(llm);
      return llm;
    });
    const baseline = await drive((index) => (spread[index % 3] as Pipeline).complete(ask(index), { timeoutMs: 10_000 }));

    const withRouter = await deployments();
    const routed = router({
      deployments: withRouter.transports.map((transport, index) => ({ id: ['down', 'flaky', 'slow'][index] as string, model: 'gpt-4.1', transport })),
      middleware: resilience,
      strategy: 'least-busy',
      hedge: { percentile: 0.9, delayMs: 200, minMs: 20, ratio: 0.1 },
      random: seededRandom(42),
    });
    const llm = createPipeline({ transport: routed.transport, clock, store: checkedStore({ clock }) }).use(routed);
    pipelines.push(llm);
    const result = await drive((index) => llm.complete(ask(index), { timeoutMs: 10_000 }));

    expect([baseline.settled, result.settled]).toEqual([calls, calls]);
    // Round robin loses the third sent to the dead deployment and some of the flaky one's.
    expect(baseline.ok / calls).toBeLessThan(0.7);
    expect(result.ok / calls).toBeGreaterThanOrEqual(0.99);
    // Retries, fallbacks and hedges stay bounded: well under two upstream requests a call.
    const sent = requestsOf(withRouter.flaky, withRouter.slow);
    expect(sent).toBeGreaterThanOrEqual(calls);
    expect(sent).toBeLessThan(calls * 1.6);
    expect(unhandled).toEqual([]);
    // Nothing is left waiting once the pipelines closed: no backoff, hedge, deadline or probe timer.
    for (const closing of pipelines.splice(0)) await clock.run(closing.close({ graceMs: 0 }));
    expect(clock.pending).toBe(0);
  }, 120_000);
});
