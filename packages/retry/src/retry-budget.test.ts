import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { retryBudget } from './retry-budget.js';

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

  it('holds at most maxTokens however many calls paid in', () => {
    const budget = retryBudget({ maxTokens: 20 });
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
          const budget = retryBudget({ ratio, minPerSecond, maxTokens: Math.max(1, minPerSecond) + 50 });
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
    expect(() => retryBudget({ minPerSecond: 20, maxTokens: 10 })).toThrow(
      expect.objectContaining({ field: 'retryBudget.maxTokens' }),
    );
  });
});
