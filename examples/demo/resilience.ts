import { type ChatCompletionRequest, createPipeline, openAICompatible, type Pipeline, SluiceError } from '@sluice/core';
import { breaker, CircuitOpenError } from '@sluice/breaker';
import { rateLimit } from '@sluice/ratelimit';
import { exponentialBackoff, retry } from '@sluice/retry';
import { type FaultRule, mockUpstream, seededRandom } from '@sluice/testing';
import { heading } from './format.js';

const model = 'deepseek-v3.2';
const openMs = 2_000;
/** At most 20 requests in any second: all 20 at once after a quiet spell, then each as an earlier one leaves the window. */
const requests = { limit: 20, windowMs: 1_000 };

const ask = (n: number): ChatCompletionRequest => ({ model, messages: [{ role: 'user', content: `Question number ${n}` }] });


/** The three, in the design's order, with waits short enough for a demo. */
function resilientPipeline(baseUrl: string, seed: number) {
  return createPipeline({ transport: openAICompatible({ baseUrl, apiKey: 'sk-demo' }) })
    .use(retry({ attempts: 3, backoff: exponentialBackoff({ baseMs: 100, maxMs: 400, random: seededRandom(seed) }) }))
    .use(breaker({ failures: 10, openMs }))
    .use(rateLimit({ requests }));
}

/** Prints every event of the three as one line, timed from the section's start, calls numbered. */
class Narrator {
  private started = performance.now();
  private readonly calls = new Map<string, number>();
  /** Calls whose first attempt failed: without retry, they would have failed. */
  readonly firstAttemptFailed = new Set<string>();
  limitWaits = 0;

  constructor(llm: Pipeline) {
    const call = (id: string) => `#${this.calls.get(id) ?? '?'}`;
    const circuit = (key: string) => key.slice(key.lastIndexOf('|') + 1);
    llm.events.on('request', (e) => this.calls.set(e.id, this.calls.size + 1));
    llm.events.on('retry', (e) => {
      if (e.attempt === 2) this.firstAttemptFailed.add(e.id);
      this.line('retry', `${call(e.id)} attempt ${e.attempt} in ${Math.round(e.delayMs)} ms (${e.code})`);
    });
    llm.events.on('retry-stop', (e) => {
      if (e.reason === 'attempts') {
        this.line('retry-stop', `${call(e.id)} gave up after ${e.attempts} attempts: ${e.codes.join(', ')}`);
        return;
      }
      if (e.attempts === 1) this.firstAttemptFailed.add(e.id);
      const why = e.reason === 'budget' ? 'the retry budget is spent' : `a ${Math.round(e.delayMs ?? 0)} ms wait is too long (${e.reason})`;
      this.line('retry-stop', `${call(e.id)} not retried: ${why} (${e.code})`);
    });
    llm.events.on('circuit-open', (e) => {
      const why = e.reason === 'consecutive' ? `after ${e.failures} consecutive failures` : `(${e.reason})`;
      this.line('circuit-open', `${circuit(e.key)} ${why}, open for ${e.openMs} ms`);
    });
    llm.events.on('circuit-half-open', (e) => this.line('circuit-half-open', `${circuit(e.key)}: the next call is the probe`));
    llm.events.on('circuit-close', (e) => this.line('circuit-close', `${circuit(e.key)} (${e.reason})`));
    llm.events.on('limit-wait', (e) => {
      this.limitWaits++;
      this.line('limit-wait', `${call(e.id)} ${Math.round(e.waitMs)} ms for ${e.limit} (${e.queued} queued)`);
    });
    llm.events.on('limit-reject', (e) => this.line('limit-reject', `${call(e.id)} refused: ${e.limit}`));
    llm.events.on('limit-pause', (e) => this.line('limit-pause', `${e.key} paused ${Math.round(e.pauseMs)} ms (${e.reason})`));
  }

  /** Starts a section: a title, and the clock back to zero. */
  section(title: string): void {
    console.log(`\n-- ${title}`);
    this.started = performance.now();
    this.limitWaits = 0;
  }

  line(what: string, text: string): void {
    const at = `+${((performance.now() - this.started) / 1000).toFixed(2)}s`;
    console.log(`${at.padStart(7)}  ${what.padEnd(17)} ${text}`);
  }
}

const codeOf = (error: unknown) => (SluiceError.is(error) ? error.code : String(error));

/**
 * The three resilience middleware at work against injected faults: retries
 * on a flaky upstream, the circuit opening in an outage and closing once it
 * is over, and a burst waiting its turn at the rate limit. Runs in real
 * time, about 5 s.
 */
export async function resilience(): Promise<void> {
  heading('Resilience: retry + breaker + rateLimit against injected faults');
  console.log(
    'retry({ attempts: 3, backoff: 100–400 ms }) → breaker({ failures: 10, openMs: 2 s })' +
      ' → rateLimit({ 20 requests in any second })',
  );

  // 1. Random faults, seeded: every run sees the same ones.
  const faults: FaultRule[] = [
    { probability: 0.3, fault: { kind: 'status', status: 503 } },
    { probability: 0.05, fault: { kind: 'reset' } },
  ];
  const flaky = await mockUpstream({ seed: 5, latencyMs: 30, faults });
  const first = resilientPipeline(flaky.url, 1);
  try {
    const narrator = new Narrator(first);
    const calls = 16;
    narrator.section(`1. a flaky upstream: 30% 503, 5% connection resets (seeded); ${calls} calls, one after another`);
    const failures: string[] = [];
    for (let n = 1; n <= calls; n++) {
      await first.complete(ask(n)).catch((error: unknown) => void failures.push(codeOf(error)));
    }
    const faulted = flaky.requests.filter((request) => request.fault !== undefined).length;
    console.log(
      `   ${calls} calls: ${calls - failures.length} answered` +
        `${failures.length > 0 ? `, ${failures.length} failed (${failures.join(', ')})` : ''}; ` +
        `the upstream faulted ${faulted} of ${flaky.requests.length} requests; ` +
        `without retry ${narrator.firstAttemptFailed.size} of the ${calls} would have failed`,
    );
  } finally {
    await first.close();
    await flaky.close();
  }

  // 2–4. One upstream whose faults are scripted, one pipeline.
  const upstream = await mockUpstream({ latencyMs: 10 });
  const llm = resilientPipeline(upstream.url, 2);
  try {
    const narrator = new Narrator(llm);
    narrator.section('2. an outage: every request gets a 503');
    upstream.enqueue(...Array.from({ length: 12 }, () => ({ kind: 'status' as const, status: 503 })));
    let reopensIn = openMs;
    for (let n = 1, fastFails = 0; fastFails < 2 && n <= 8; n++) {
      const before = upstream.requests.length;
      const started = performance.now();
      try {
        await llm.complete(ask(n));
      } catch (error: unknown) {
        const took = Math.round(performance.now() - started);
        const sent = upstream.requests.length - before;
        const upstreamSaw = sent === 0 ? 'nothing sent upstream' : `${sent} request${sent === 1 ? '' : 's'} sent upstream`;
        narrator.line('call failed', `#${n} ${codeOf(error)} in ${took} ms, ${upstreamSaw}`);
        if (error instanceof CircuitOpenError && sent === 0) {
          fastFails++;
          reopensIn = error.retryAfterMs ?? openMs;
        }
      }
    }
    console.log(`   ${upstream.requests.length} requests reached the upstream; the open circuit turned the rest away at once`);

    narrator.section(`3. the upstream recovers; after the open time, one probe closes the circuit`);
    upstream.reset(); // drops the 503s still scripted: from now on it answers
    narrator.line('waiting', `${reopensIn} ms for the circuit to turn half-open`);
    await new Promise((resolve) => setTimeout(resolve, reopensIn + 10));
    const started = performance.now();
    const reply = await llm.complete(ask(100));
    narrator.line('call answered', `in ${Math.round(performance.now() - started)} ms: "${reply.choices[0]?.message.content}"`);

    const burst = 30;
    narrator.section(`4. a burst of ${burst} calls at once meets the limit (20 in any second)`);
    const durations = await Promise.all(
      Array.from({ length: burst }, async (_, i) => {
        const begin = performance.now();
        await llm.complete(ask(200 + i));
        return performance.now() - begin;
      }),
    );
    console.log(
      `   ${burst} calls answered: ${burst - narrator.limitWaits} went at once, ${narrator.limitWaits} waited their turn; ` +
        `the last took ${Math.round(Math.max(...durations))} ms`,
    );
  } finally {
    await llm.close();
    await upstream.close();
  }
}
