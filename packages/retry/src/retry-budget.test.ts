import type { SluiceError } from '@sluice/core';
import { chat, closeTestPipelines, manualClock, testPipeline, type TestPipeline } from '@sluice/testing/kit';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { retryBudget } from './retry-budget.js';
import { retry } from './retry.js';

describe('retryBudget', () => {
  it('starts with a floor of 10 retries', () => {
    const budget = retryBudget();
    expect(budget.balance(0)).toBe(10);
    const granted = Array.from({ length: 12 }, () => budget.withdraw(0)).filter(Boolean);
    expect(granted).toHaveLength(10);
  });

  it('earns one retry per five calls', () => {
    const budget = retryBudget({ minPerSecond: 0 });
    for (let call = 0; call < 5; call++) budget.deposit(0);
    expect(budget.withdraw(0)).toBe(true);
    expect(budget.withdraw(0)).toBe(false);
  });

  it('refills the floor at minPerSecond, but never past it', () => {
    const budget = retryBudget({ minPerSecond: 10 });
    for (let i = 0; i < 10; i++) budget.withdraw(0);
    expect(budget.balance(0)).toBe(0);
    expect(budget.balance(500)).toBe(5);
    expect(budget.balance(60_000)).toBe(10);
  });

  it('holds at most capacity however many calls paid in', () => {
    const budget = retryBudget({ capacity: 20 });
    for (let call = 0; call < 1_000; call++) budget.deposit(0);
    expect(budget.balance(0)).toBe(20);
  });

  it('ignores a clock that goes backwards', () => {
    const budget = retryBudget({ minPerSecond: 10 });
    for (let i = 0; i < 10; i++) budget.withdraw(1_000);
    expect(budget.balance(0)).toBe(0);
    expect(budget.balance(1_100)).toBe(1);
  });

  it('never grants more than the floor, the banked tokens and ratio × calls', () => {
    const op = fc.record({
      kind: fc.constantFrom('call' as const, 'retry' as const),
      advanceMs: fc.integer({ min: 0, max: 2_000 }),
    });
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 300 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 20 }),
        (ops, ratio, minPerSecond) => {
          const budget = retryBudget({ ratio, minPerSecond, capacity: Math.max(1, minPerSecond) + 50 });
          let now = 0;
          let calls = 0;
          let granted = 0;
          for (const { kind, advanceMs } of ops) {
            now += advanceMs;
            if (kind === 'call') {
              budget.deposit(now);
              calls++;
            } else if (budget.withdraw(now)) granted++;
            expect(granted).toBeLessThanOrEqual(minPerSecond + ratio * calls + (minPerSecond * now) / 1_000 + 1e-6);
          }
        },
      ),
    );
  });

  it('names the bad option', () => {
    expect(() => retryBudget({ ratio: -0.1 })).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'retryBudget.ratio' }));
    expect(() => retryBudget({ minPerSecond: 20, capacity: 10 })).toThrow(
      expect.objectContaining({ field: 'retryBudget.capacity' }),
    );
  });
});

describe('retry with its budget, over HTTP', () => {
  afterEach(closeTestPipelines);

  const outage = { faults: [{ probability: 1, fault: { kind: 'status' as const, status: 503 } }] };
  const hundredCalls = ({ llm, clock }: TestPipeline) =>
    clock.run(Promise.allSettled(Array.from({ length: 100 }, (_, index) => llm.complete(chat(`call ${index}`)))));

  it('lets retries add only 20% to 100 calls in a full outage (no floor)', async () => {
    const h = await testPipeline({ middleware: retry({ random: () => 0.5, budget: { minPerSecond: 0 } }), upstream: outage });

    const results = await hundredCalls(h);
    const denied = h.events.of('retry-stop');

    // 100 calls earn 20 retries: 80 calls are denied their first retry,
    // the 20 retried ones their second.
    expect(h.upstream.requests).toHaveLength(120);
    expect(denied).toHaveLength(100);
    expect(denied.filter((event) => event.attempts === 1)).toHaveLength(80);
    expect(denied[0]).toEqual({
      id: expect.any(String),
      model: 'gpt-4.1',
      reason: 'budget',
      attempts: 1,
      code: 'SERVER_ERROR',
      codes: ['SERVER_ERROR'],
      delayMs: undefined,
    });
    // A call the budget stopped fails with the upstream error itself.
    const codes = results.map((result) => (result.status === 'rejected' ? (result.reason as SluiceError).code : 'ok'));
    expect(new Set(codes)).toEqual(new Set(['SERVER_ERROR']));
  });

  it('bounds a full outage to 1.2× the calls plus the floor with the defaults', async () => {
    const h = await testPipeline({ middleware: retry({ random: () => 0.5 }), upstream: outage });
    const { upstream, clock } = h;

    await hundredCalls(h);

    const seconds = (clock.now() - clock.start) / 1_000;
    // 20 earned by the calls, 10 to start with, 10 more per second of refill.
    expect(upstream.requests.length).toBeLessThanOrEqual(100 * 1.2 + 10 + 10 * seconds);
    expect(upstream.requests.length).toBeLessThan(200);
  });

  it('spends nothing with budget: false: every call gets every attempt', async () => {
    const h = await testPipeline({ middleware: retry({ random: () => 0.5, budget: false }), upstream: outage });
    await hundredCalls(h);
    expect(h.upstream.requests).toHaveLength(300);
  });

  it('is shared by every call through one middleware, and by retry()s given the same budget', async () => {
    const clock = manualClock();
    const budget = retryBudget({ minPerSecond: 0, capacity: 2 });
    for (let call = 0; call < 10; call++) budget.deposit(clock.now());
    const first = await testPipeline({ middleware: retry({ random: () => 0.5, budget }), upstream: outage, clock });
    const second = await testPipeline({ middleware: retry({ random: () => 0.5, budget }), upstream: outage, clock });

    await expect(clock.run(first.llm.complete(chat()))).rejects.toMatchObject({ code: 'RETRY_EXHAUSTED' });
    await expect(clock.run(second.llm.complete(chat()))).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    expect(first.upstream.requests).toHaveLength(3);
    expect(second.upstream.requests).toHaveLength(1);
  });
});
