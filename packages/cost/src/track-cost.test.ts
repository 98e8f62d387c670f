import { countMessages, countTokens } from '@sluice/context';
import { type ChatMessage, type CompletionContext, type Middleware, type Pipeline, createPipeline, memoryStore, openAICompatible } from '@sluice/core';
import { type MockUpstream, mockUpstream } from '@sluice/testing';
import { drain, recordEvents } from '@sluice/testing/kit';
import { afterEach, describe, expect, it } from 'vitest';
import { budget } from './budget.js';
import { priceTable } from './price-table.js';
import { trackCost } from './track-cost.js';

const messages: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Tell me about sluice gates in one paragraph.' },
];

const usage = {
  prompt_tokens: 1_000,
  completion_tokens: 200,
  prompt_tokens_details: { cached_tokens: 400 },
  completion_tokens_details: { reasoning_tokens: 50 },
};
// gpt-4.1: 600 uncached × $2 + 400 cached × $0.50 + 200 output × $8, per million.
const usageUsd = (600 * 2 + 400 * 0.5 + 200 * 8) / 1e6;
const reply = 'Sluice gates hold water back and let it through on demand, metering a flow that would otherwise flood.';

let upstream: MockUpstream;
let llm: Pipeline;

async function setup(options: Parameters<typeof trackCost>[0] = {}, ...inner: Middleware[]) {
  upstream = await mockUpstream({ reply: { content: reply, usage } });
  const costs = trackCost(options);
  llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }) }).use(costs);
  open.push(upstream, llm);
  for (const middleware of inner) llm.use(middleware);
  return costs;
}

/** What a cache does on a hit: answers the call itself, with the usage the answer cost when it was bought. */
function answerAsCache(ctx: CompletionContext): void {
  ctx.state.answeredBy = 'cache';
  ctx.response = {
    id: 'cached', object: 'chat.completion', created: 0, model: 'gpt-4.1',
    choices: [{ index: 0, finish_reason: 'stop', logprobs: null, message: { role: 'assistant', content: reply, refusal: null } }],
    usage: { ...usage, total_tokens: 1_200 },
  };
  ctx.usage = { ...usage, total_tokens: 1_200 };
}

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const closable of open.splice(0).reverse()) await closable.close();
});

describe('trackCost', () => {
  it('costs a completion from its usage, in disjoint buckets', async () => {
    await setup();
    const costsRecorder = recordEvents(llm.events, ['cost']);
    await llm.complete({ model: 'gpt-4.1', messages }, { tags: { tenant: 'acme' } });
    expect(costsRecorder.of('cost')).toHaveLength(1);
    expect(costsRecorder.of('cost')[0]).toMatchObject({ model: 'gpt-4.1', tags: { tenant: 'acme' }, estimated: false, priced: true });
    expect(costsRecorder.of('cost')[0]?.usd).toBeCloseTo(usageUsd, 12);
    expect(costsRecorder.of('cost')[0]?.buckets).toEqual({
      uncachedInput: { tokens: 600, usd: 0.0012 },
      cachedInput: { tokens: 400, usd: 0.0002 },
      output: { tokens: 200, usd: 0.0016, reasoningTokens: 50 },
    });
  });

  it('costs a call a middleware answered itself (a cache hit) at $0 and records what it saved', async () => {
    const costs = await setup({}, async function answering(ctx) {
      answerAsCache(ctx);
    });
    const recorder = recordEvents(llm.events, ['cost']);
    await llm.complete({ model: 'gpt-4.1', messages });
    expect(upstream.requests).toHaveLength(0);
    const [event] = recorder.of('cost');
    expect(event).toMatchObject({ usd: 0, answeredBy: 'cache' });
    expect(event?.savedUsd).toBeCloseTo(usageUsd, 12);
    expect(event?.buckets.uncachedInput).toEqual({ tokens: 600, usd: 0 });
    const report = await costs.ledger.report({ by: 'total' });
    expect(report).toMatchObject({ usd: 0, requests: 1 });
    expect(report.savedUsd).toBeCloseTo(usageUsd, 12);
    expect(report.rows[0]).toMatchObject({ savedRequests: 1 });
  });

  it('costs a call whose request another call was charged for (costCarriedBy) at $0, with no saving', async () => {
    const costs = await setup({}, async function handingOn(ctx, next) {
      await next();
      ctx.state.costCarriedBy = 'cache';
    });
    const recorder = recordEvents(llm.events, ['cost']);
    await llm.complete({ model: 'gpt-4.1', messages });
    expect(upstream.requests).toHaveLength(1);
    const [event] = recorder.of('cost');
    expect(event).toMatchObject({ usd: 0, savedUsd: 0 });
    expect(event?.answeredBy).toBeUndefined();
    expect(event?.buckets.output).toMatchObject({ tokens: 200, usd: 0 });
    const report = await costs.ledger.report({ by: 'total' });
    expect(report).toMatchObject({ usd: 0, savedUsd: 0, requests: 1 });
  });

  it('with when, costs and records only the calls it says yes to, asked once the call settled', async () => {
    const costs = await setup({ when: (ctx) => ctx.state.answeredBy !== undefined }, async function sometimesAnswering(ctx, next) {
      if (ctx.tags.cached !== 'yes') return next();
      answerAsCache(ctx);
    });
    const recorder = recordEvents(llm.events, ['cost']);
    await llm.complete({ model: 'gpt-4.1', messages });
    await llm.complete({ model: 'gpt-4.1', messages }, { tags: { cached: 'yes' } });
    expect(upstream.requests).toHaveLength(1);
    expect(recorder.of('cost').map((event) => event.answeredBy)).toEqual(['cache']);
    const report = await costs.ledger.report({ by: 'total' });
    expect(report).toMatchObject({ usd: 0, requests: 1 });
    expect(() => trackCost({ when: 'cached' as never })).toThrow(expect.objectContaining({ field: 'trackCost.when' }));
  });

  it('costs a stream from the usage of its last chunk, once the caller has read it', async () => {
    await setup();
    const costsRecorder = recordEvents(llm.events, ['cost']);
    const { text, error } = await drain(llm.stream({ model: 'gpt-4.1', messages }));
    expect(error).toBeUndefined();
    expect(text).toBe(reply);
    expect(costsRecorder.of('cost')).toHaveLength(1);
    expect(costsRecorder.of('cost')[0]).toMatchObject({ estimated: false });
    expect(costsRecorder.of('cost')[0]?.usd).toBeCloseTo(usageUsd, 12);
  });

  for (const fault of [{ kind: 'cut', afterChunks: 4 }, { kind: 'reset', at: 'mid-stream', afterChunks: 4 }] as const) {
    it(`costs a stream cut before its usage (${fault.kind}) from what was streamed, marked estimated, never zero`, async () => {
      await setup();
      const costsRecorder = recordEvents(llm.events, ['cost']);
      upstream.enqueue(fault);
      const ctx = await llm.run({ model: 'gpt-4.1', messages, stream: true });
      const { text, error } = await drain(ctx.chunks!);
      expect(error).toMatchObject({ code: 'STREAM_CUT' });
      expect(text.length).toBeGreaterThan(0);
      expect(costsRecorder.of('cost')).toHaveLength(1);
      const [cost] = costsRecorder.of('cost');
      const prompt = countMessages(messages, 'gpt-4.1').tokens;
      const output = countTokens(text, 'gpt-4.1').tokens;
      expect(cost).toMatchObject({ estimated: true, model: 'gpt-4.1' });
      expect(cost?.buckets.uncachedInput.tokens).toBe(prompt);
      expect(cost?.buckets.output.tokens).toBe(output);
      expect(cost?.usd).toBeCloseTo((prompt * 2 + output * 8) / 1e6, 12);
      expect(cost?.usd).toBeGreaterThan(0);
      // The count it made is left for the others (the limiter, the budget).
      expect(ctx.state.tokens).toMatchObject({ count: prompt, model: 'gpt-4.1' });
    });
  }

  it('costs a stream accepted and then cut before its first chunk for its prompt, not $0, in the budget too', async () => {
    const store = memoryStore();
    await setup({}, budget({ limitUsd: 1, period: 'day', store }));
    const costsRecorder = recordEvents(llm.events, ['cost']);
    upstream.enqueue({ kind: 'cut', afterChunks: 0 });
    const ctx = await llm.run({ model: 'gpt-4.1', messages, stream: true });
    const { chunks, error } = await drain(ctx.chunks!);
    expect(chunks).toHaveLength(0);
    expect(error).toMatchObject({ code: 'STREAM_CUT' });
    const prompt = countMessages(messages, 'gpt-4.1').tokens;
    expect(costsRecorder.of('cost')).toEqual([expect.objectContaining({ estimated: true, usd: expect.closeTo((prompt * 2) / 1e6, 12) })]);
    expect(costsRecorder.of('cost')[0]?.buckets.output.tokens).toBe(0);
    const spent = await store.get<{ spentUsd: number; holds: object }>(`sluice:cost:budget:global:day:${new Date().toISOString().slice(0, 10)}`);
    expect(spent).toMatchObject({ spentUsd: expect.closeTo((prompt * 2) / 1e6, 12), holds: [] });
  });

  it('costs a stream the caller stopped reading as estimated', async () => {
    await setup();
    const costsRecorder = recordEvents(llm.events, ['cost']);
    for await (const _chunk of llm.stream({ model: 'gpt-4.1', messages })) break;
    expect(costsRecorder.of('cost')).toHaveLength(1);
    expect(costsRecorder.of('cost')[0]).toMatchObject({ estimated: true });
    expect(costsRecorder.of('cost')[0]?.usd).toBeGreaterThan(0);
  });

  it('reuses a prompt count another middleware made instead of counting again', async () => {
    const countOnce: Middleware = async (ctx, next) => {
      ctx.state.tokens = { count: 12_345, approximate: false, messages: ctx.request.messages, model: ctx.request.model };
      await next();
    };
    await setup({}, countOnce);
    const costsRecorder = recordEvents(llm.events, ['cost']);
    upstream.enqueue({ kind: 'cut', afterChunks: 3 });
    await drain(llm.stream({ model: 'gpt-4.1', messages }));
    expect(costsRecorder.of('cost')[0]?.buckets.uncachedInput.tokens).toBe(12_345);
  });

  it('records nothing for a call that failed before any answer', async () => {
    const costs = await setup();
    const eventsRecorder = recordEvents(llm.events, ['cost']);
    upstream.enqueue({ kind: 'status', status: 503 });
    await expect(llm.complete({ model: 'gpt-4.1', messages })).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    expect(eventsRecorder.of('cost')).toHaveLength(0);
    expect((await costs.ledger.report()).requests).toBe(0);
  });

  it('costs the final outcome once when something outside it sends the call again', async () => {
    const again: Middleware = async (_ctx, next) => {
      try {
        await next();
      } catch {
        await next();
      }
    };
    upstream = await mockUpstream({ reply: { content: reply, usage } });
    llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }) }).use(again).use(trackCost());
    open.push(upstream, llm);
    const costsRecorder = recordEvents(llm.events, ['cost']);
    upstream.enqueue({ kind: 'status', status: 503 });
    await llm.complete({ model: 'gpt-4.1', messages });
    expect(upstream.requests).toHaveLength(2);
    expect(costsRecorder.of('cost')).toHaveLength(1);
  });

  it('prices dated snapshots and provider-prefixed names as their model', async () => {
    await setup();
    const costsRecorder = recordEvents(llm.events, ['cost']);
    await llm.complete({ model: 'openai/gpt-4.1-2025-04-14', messages });
    expect(costsRecorder.of('cost')[0]).toMatchObject({ model: 'gpt-4.1' });
    expect(costsRecorder.of('cost')[0]?.usd).toBeCloseTo(usageUsd, 12);
  });

  it("refuses a model with no price before sending it, by default", async () => {
    await setup();
    await expect(llm.complete({ model: 'my-finetune', messages })).rejects.toMatchObject({ code: 'UNKNOWN_MODEL', model: 'my-finetune' });
    expect(upstream.requests).toHaveLength(0);
  });

  it("lets an unknown model through at an unpriced $0 with an event under 'warn'", async () => {
    const costs = await setup({ unknownModel: 'warn' });
    const unknownRecorder = recordEvents(llm.events, ['price-unknown']);
    const eventsRecorder = recordEvents(llm.events, ['cost']);
    await llm.complete({ model: 'my-finetune', messages });
    expect(unknownRecorder.of('price-unknown')).toEqual([expect.objectContaining({ model: 'my-finetune', by: 'trackCost' })]);
    expect(eventsRecorder.of('cost')[0]).toMatchObject({ model: 'my-finetune', usd: 0, priced: false });
    expect(eventsRecorder.of('cost')[0]?.buckets.output.tokens).toBe(200);
    expect((await costs.ledger.report()).rows[0]).toMatchObject({ key: 'my-finetune', requests: 1, usd: 0 });
  });

  it("lets an unknown model through silently under 'free'", async () => {
    await setup({ unknownModel: 'free' });
    const unknownRecorder = recordEvents(llm.events, ['price-unknown']);
    const eventsRecorder = recordEvents(llm.events, ['cost']);
    await llm.complete({ model: 'llama3.1:8b', messages });
    expect(unknownRecorder.of('price-unknown')).toHaveLength(0);
    expect(eventsRecorder.of('cost')[0]).toMatchObject({ usd: 0, priced: false });
  });

  it('uses the prices it is given', async () => {
    await setup({ prices: priceTable({ 'my-finetune': { input: 10, output: 20, contextWindow: 10_000, maxOutput: 1_000 } }) });
    const eventsRecorder = recordEvents(llm.events, ['cost']);
    await llm.complete({ model: 'my-finetune', messages });
    expect(eventsRecorder.of('cost')[0]?.usd).toBeCloseTo((1_000 * 10 + 200 * 20) / 1e6, 12);
  });

  it('records every call in its ledger, by model and by tag', async () => {
    const costs = await setup();
    await llm.complete({ model: 'gpt-4.1', messages }, { tags: { tenant: 'acme' } });
    await llm.complete({ model: 'gpt-4.1', messages }, { tags: { tenant: 'acme' } });
    await llm.complete({ model: 'gpt-4.1-mini', messages }, { tags: { tenant: 'globex' } });
    const byModel = await costs.ledger.report({ by: 'model' });
    expect(byModel.requests).toBe(3);
    expect(byModel.rows.map((row) => [row.key, row.requests])).toEqual([['gpt-4.1', 2], ['gpt-4.1-mini', 1]]);
    const byTenant = await costs.ledger.report({ by: { tag: 'tenant' } });
    expect(byTenant.rows.find((row) => row.key === 'acme')?.usd).toBeCloseTo(2 * usageUsd, 12);
    expect(byTenant.rows.find((row) => row.key === 'acme')).toMatchObject({ uncachedInputTokens: 1_200, cachedInputTokens: 800, outputTokens: 400 });
  });

  it('names a bad option', () => {
    expect(() => trackCost({ unknownModel: 'ignore' as never })).toThrow(expect.objectContaining({ field: 'trackCost.unknownModel' }));
    expect(() => trackCost({ anomaly: { factor: 1 } })).toThrow(expect.objectContaining({ field: 'trackCost.anomaly.factor' }));
  });
});
