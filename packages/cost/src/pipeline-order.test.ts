import { trimContext } from '@sluice/context';
import { type ChatMessage, createPipeline, openAICompatible } from '@sluice/core';
import { mockUpstream } from '@sluice/testing';
import { drain, recordEvents } from '@sluice/testing/kit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { budget } from './budget.js';
import { trackCost } from './track-cost.js';

const messages: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Tell me about sluice gates in one paragraph.' },
];

// Watches the counting calls this package makes (trimContext counts with its own import).
vi.mock('@sluice/context', async (importOriginal) => {
  const real = await importOriginal<typeof import('@sluice/context')>();
  return { ...real, countMessages: vi.fn(real.countMessages) };
});
const { countMessages } = await import('@sluice/context');

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  vi.mocked(countMessages).mockClear();
  for (const closable of open.splice(0).reverse()) await closable.close();
});

async function documentedPipeline(trim: Parameters<typeof trimContext>[0] = {}) {
  const upstream = await mockUpstream({ reply: 'Sluice gates meter the flow of water.' });
  const costs = trackCost();
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }) })
    .use(costs)
    .use(trimContext(trim))
    .use(budget({ limitUsd: 1, period: 'day' }));
  open.push(upstream, llm);
  return { llm, upstream, costs };
}

describe('in the documented order (trackCost, trimContext, budget)', () => {
  it('counts the prompt once: budget and trackCost reuse the count trimContext made', async () => {
    const { llm, upstream } = await documentedPipeline();
    const costsRecorder = recordEvents(llm.events, ['cost']);
    upstream.enqueue({ kind: 'cut', afterChunks: 3 });
    const ctx = await llm.run({ model: 'gpt-4.1', messages, max_completion_tokens: 100, stream: true });
    await drain(ctx.chunks!);
    const count = ctx.state.tokens?.count ?? 0;
    expect(count).toBeGreaterThan(0);
    expect(ctx.state.budget?.reservedUsd).toBeCloseTo((count * 2 + 100 * 8) / 1e6, 12);
    expect(costsRecorder.of('cost')[0]).toMatchObject({ estimated: true });
    expect(costsRecorder.of('cost')[0]?.buckets.uncachedInput.tokens).toBe(count);
    expect(countMessages).not.toHaveBeenCalled();
  });

  it('budgets the trimmed prompt, not the history the caller sent', async () => {
    const { llm, upstream } = await documentedPipeline({ maxTokens: 400 });
    const history: ChatMessage[] = [{ role: 'system', content: 'You are terse.' }];
    for (let i = 0; i < 60; i++) {
      history.push({ role: 'user', content: `Question ${i}: what happened to the water level at gate ${i} on the night of the storm?` });
      history.push({ role: 'assistant', content: `At gate ${i} the level rose by ${i} centimetres before the gate opened.` });
    }
    history.push({ role: 'user', content: 'And now?' });
    const ctx = await llm.run({ model: 'gpt-4.1', messages: history, max_completion_tokens: 100 });
    const sent = (upstream.requests[0]?.body as { messages: unknown[] }).messages;
    expect(sent.length).toBeLessThan(history.length);
    expect(ctx.state.tokens?.count).toBeLessThanOrEqual(400);
    expect(ctx.state.budget?.reservedUsd).toBeLessThanOrEqual((400 * 2 + 100 * 8) / 1e6);
  });

  it('counts once when nothing counted before: budget stores its count, trackCost reuses it', async () => {
    const upstream = await mockUpstream({ reply: 'Sluice gates meter the flow of water.' });
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }) })
      .use(trackCost())
      .use(budget({ limitUsd: 1, period: 'day' }));
    open.push(upstream, llm);
    upstream.enqueue({ kind: 'cut', afterChunks: 3 });
    const ctx = await llm.run({ model: 'gpt-4.1', messages, max_completion_tokens: 100, stream: true });
    await drain(ctx.chunks!);
    expect(countMessages).toHaveBeenCalledTimes(1);
    expect(ctx.state.tokens).toMatchObject({ model: 'gpt-4.1', messages: ctx.request.messages });
  });
});
