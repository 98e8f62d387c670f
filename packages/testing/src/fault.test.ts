import { describe, expect, it } from 'vitest';
import { pickFault, validateFault, validateRules, type FaultRule } from './fault.js';
import { mockUpstream } from './mock-upstream.js';

const unavailable = { kind: 'status', status: 503 } as const;
const reset = { kind: 'reset' } as const;
const rules: FaultRule[] = [
  { probability: 0.3, fault: unavailable },
  { probability: 0.05, fault: reset },
];

describe('pickFault', () => {
  it('gives each rule its own slice of [0, 1), in order', () => {
    expect(pickFault(rules, 0)).toBe(unavailable);
    expect(pickFault(rules, 0.2999)).toBe(unavailable);
    expect(pickFault(rules, 0.3)).toBe(reset);
    expect(pickFault(rules, 0.3499)).toBe(reset);
    expect(pickFault(rules, 0.35)).toBeUndefined();
  });

  it('never fires a rule of probability 0', () => {
    expect(pickFault([{ probability: 0, fault: reset }], 0)).toBeUndefined();
  });
});

describe('validateRules', () => {
  it('accepts probabilities that add up to 1 despite rounding', () => {
    expect(() =>
      validateRules([
        { probability: 0.1, fault: reset },
        { probability: 0.2, fault: reset },
        { probability: 0.7, fault: reset },
      ]),
    ).not.toThrow();
  });

  it('rejects a probability outside [0, 1], naming the rule', () => {
    expect(() => validateRules([rules[0]!, { probability: -0.1, fault: reset }])).toThrow('faults[1].probability');
    expect(() => validateRules([{ probability: Number.NaN, fault: reset }])).toThrow(RangeError);
  });
});

describe('validateFault', () => {
  it('accepts every kind as the README shows it', () => {
    const faults: unknown[] = [
      { kind: 'ok', reply: 'hi' },
      { kind: 'status', status: 429, headers: { 'retry-after': '2' }, code: null },
      { kind: 'html' },
      { kind: 'malformed', afterChunks: 3 },
      { kind: 'error-body', message: 'm', body: { error: {} } },
      { kind: 'delay', latencyMs: 30_000, chunkDelayMs: 0 },
      { kind: 'reset', at: 'mid-stream', afterChunks: 3 },
      { kind: 'cut', afterChunks: 0 },
      { kind: 'sse-error', style: 'data', body: 'x' },
      { kind: 'hang' },
      { kind: 'raw', chunks: (chunks: unknown[]) => chunks, done: false },
      { kind: 'usage', usage: -5 },
      { kind: 'status', status: 503, message: undefined },
    ];
    for (const fault of faults) expect(() => validateFault(fault, 'enqueue[0]')).not.toThrow();
  });

  it('names what is wrong: a typo of a kind, a missing or impossible status, a field the kind does not take', () => {
    const cases: Array<[unknown, string]> = [
      [{ kind: 'stauts', status: 503 }, 'enqueue[0].kind must be one of ok, status, html'],
      [{ kind: 'status' }, "enqueue[0].status is required for a 'status' fault"],
      [{ kind: 'status', status: 99 }, 'enqueue[0].status must be an HTTP status from 100 to 599, got 99'],
      [{ kind: 'cut', afterChunk: 2 }, "enqueue[0].afterChunk is not a field of a 'cut' fault"],
      [{ kind: 'delay', latencyMs: -5 }, 'enqueue[0].latencyMs must be 0 or more, got -5'],
      [{ kind: 'reset', at: 'later' }, "enqueue[0].at must be 'before-headers' or 'mid-stream', got \"later\""],
      [null, 'enqueue[0] must be a fault object ({ kind: … }), got null'],
    ];
    for (const [fault, message] of cases) expect(() => validateFault(fault, 'enqueue[0]')).toThrow(message);
    expect(() => validateRules([{ probability: 0.5, fault: { kind: 'nope' } as never }])).toThrow('faults[0].fault.kind');
  });

  it('makes enqueue refuse a bad fault, and queue none of its arguments, instead of answering normally', async () => {
    const upstream = await mockUpstream();
    try {
      // Before, { kind: 'stauts' } was answered as a normal completion: a test of the fault passed without one.
      expect(() => upstream.enqueue({ kind: 'status', status: 503 }, { kind: 'stauts' } as never)).toThrow('enqueue[1].kind');
      const response = await fetch(`${upstream.url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(response.status).toBe(200);
      await response.text();
    } finally {
      await upstream.close();
    }
  });

  it('makes mockUpstream refuse an option it does not take, naming it', async () => {
    await expect(mockUpstream({ port: 8080 } as never)).rejects.toThrow('mockUpstream: port is not an option: the server takes a free port on 127.0.0.1');
    await expect(mockUpstream({ latency: 5 } as never)).rejects.toThrow('mockUpstream: latency is not an option');
    await expect(mockUpstream({ reply: 5 } as never)).rejects.toThrow('mockUpstream: reply must be a string, a MockReply or a function, got number');
    await expect(mockUpstream({ headers: { 'x-a': 1 } } as never)).rejects.toThrow('mockUpstream: headers must be an object of string values');
  });
});
