import { type ChatMessage, createPipeline, openAICompatible } from '@sluice/core';
import { mockUpstream } from '@sluice/testing';
import { manualClock, recordEvents } from '@sluice/testing/kit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AnomalyDetector, type Observation } from './anomaly-detector.js';
import { trackCost } from './track-cost.js';

const messages: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Tell me about sluice gates in one paragraph.' },
];

const start = Date.UTC(2026, 11, 1);
let sequence = 0;
const call = (tokens: number, now: number, model = 'gpt-4.1'): Observation => ({
  id: `call_${++sequence}`, model, tags: { feature: 'chat' }, tokens, usd: tokens * 2e-6, now,
});

/** A deterministic ±50% wobble around `base`. */
const wobble = (base: number, i: number) => Math.round(base * (1 + 0.5 * Math.sin(i * 1.7)));

describe('spend anomaly alert', () => {
  it('fires on a 47x jump in tokens per request after a baseline', () => {
    const detector = new AnomalyDetector();
    for (let i = 0; i < 30; i++) expect(detector.observe(call(wobble(3_000, i), start + i * 1_000))).toEqual([]);
    const events = detector.observe(call(141_000, start + 31_000));
    expect(events.map((event) => event.metric)).toEqual(['tokens-per-request', 'usd-per-request']);
    expect(events[0]).toMatchObject({ model: 'gpt-4.1', tags: { feature: 'chat' }, value: 141_000 });
    expect(events[0]?.ratio).toBeGreaterThan(40);
    expect(events[0]?.baseline).toBeGreaterThan(2_000);
  });

  it('stays quiet during normal variation', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.4, max: 2, noNaN: true }), { minLength: 50, maxLength: 400 }), (factors) => {
        const detector = new AnomalyDetector();
        factors.forEach((factor, i) => {
          expect(detector.observe(call(Math.round(3_000 * factor), start + i * 2_000))).toEqual([]);
        });
      }),
      { numRuns: 50 },
    );
  });

  it('does not fire during warm-up', () => {
    const detector = new AnomalyDetector({ warmupRequests: 20 });
    for (let i = 0; i < 5; i++) detector.observe(call(1_000, start + i));
    expect(detector.observe(call(47_000, start + 10))).toEqual([]);
  });

  it('fires on a minute whose spend is 47x the usual minute, once that minute', () => {
    const detector = new AnomalyDetector({ metrics: ['tokens-per-minute', 'usd-per-minute'] });
    for (let minute = 0; minute < 10; minute++) {
      for (let i = 0; i < 5; i++) expect(detector.observe(call(wobble(3_000, minute * 5 + i), start + minute * 60_000 + i * 10_000))).toEqual([]);
    }
    // A runaway loop: the same requests, 47 times as many, in minute 10.
    const fired = [];
    for (let i = 0; i < 5 * 47; i++) fired.push(...detector.observe(call(3_000, start + 10 * 60_000 + i * 200)));
    expect(fired.map((event) => event.metric)).toEqual(['tokens-per-minute', 'usd-per-minute']);
    expect(fired[0]?.ratio).toBeGreaterThanOrEqual(5);
  });

  it('keeps quiet minutes out of the per-minute baseline', () => {
    const detector = new AnomalyDetector({ metrics: ['tokens-per-minute'] });
    for (let minute = 0; minute < 10; minute++) detector.observe(call(3_000, start + minute * 60_000));
    // Eight hours of silence, then the usual load.
    const morning = start + 8 * 3_600_000;
    expect(detector.observe(call(3_000, morning))).toEqual([]);
  });

  it('repeats a per-request alert at most once per cooldown', () => {
    const detector = new AnomalyDetector({ cooldownMs: 60_000, metrics: ['tokens-per-request'] });
    for (let i = 0; i < 30; i++) detector.observe(call(1_000, start + i));
    expect(detector.observe(call(47_000, start + 100))).toHaveLength(1);
    expect(detector.observe(call(47_000, start + 200))).toHaveLength(0);
    for (let i = 0; i < 30; i++) detector.observe(call(1_000, start + 300 + i));
    expect(detector.observe(call(60_000, start + 61_000))).toHaveLength(1);
  });

  it('keeps a baseline per model', () => {
    const detector = new AnomalyDetector({ metrics: ['tokens-per-request'] });
    for (let i = 0; i < 30; i++) detector.observe(call(100_000, start + i, 'gemini-2.5-pro'));
    for (let i = 0; i < 30; i++) detector.observe(call(1_000, start + i, 'gpt-4.1-mini'));
    expect(detector.observe(call(100_000, start + 100, 'gemini-2.5-pro'))).toEqual([]);
    expect(detector.observe(call(100_000, start + 100, 'gpt-4.1-mini'))).toHaveLength(1);
  });

  it('forgets the least recently seen model past maxModels, in constant memory', () => {
    const detector = new AnomalyDetector({ maxModels: 2, metrics: ['tokens-per-request'] });
    for (let i = 0; i < 30; i++) detector.observe(call(1_000, start + i, 'a'));
    detector.observe(call(1_000, start, 'b'));
    detector.observe(call(1_000, start, 'c'));
    // `a` was dropped, so its history is gone: warming up again, no alert.
    expect(detector.observe(call(47_000, start + 100, 'a'))).toEqual([]);
  });

  it('emits anomaly events from trackCost when history grows without bound', async () => {
    const clock = manualClock(start);
    let promptTokens = 3_000;
    const upstream = await mockUpstream({ reply: () => ({ content: 'ok', usage: { prompt_tokens: promptTokens, completion_tokens: 800 } }) });
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }), clock }).use(trackCost());
    try {
      const anomaliesRecorder = recordEvents(llm.events, ['cost-anomaly']);
      for (let i = 0; i < 25; i++) {
        clock.advance(5_000);
        await llm.complete({ model: 'gpt-4.1', messages }, { tags: { user: 'u1' } });
      }
      expect(anomaliesRecorder.of('cost-anomaly')).toEqual([]);
      promptTokens = 47 * 3_800 - 800;
      await llm.complete({ model: 'gpt-4.1', messages }, { tags: { user: 'u1' } });
      expect(anomaliesRecorder.of('cost-anomaly').map((event) => event.metric)).toEqual(['tokens-per-request', 'usd-per-request']);
      expect(anomaliesRecorder.of('cost-anomaly')[0]).toMatchObject({ model: 'gpt-4.1', tags: { user: 'u1' }, value: 47 * 3_800 });
      expect(anomaliesRecorder.of('cost-anomaly')[0]?.ratio).toBeCloseTo(47, 6);
    } finally {
      await llm.close();
      await upstream.close();
    }
  });
});
