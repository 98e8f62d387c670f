import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { depositHedge, hedgeBudgetCapacity, withdrawHedge } from './hedge-budget.js';

describe('hedge budget', () => {
  it('never allows more hedges than ratio times the calls made', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, noNaN: true }), fc.array(fc.boolean(), { maxLength: 400 }), (ratio, wantsHedge) => {
        let state = { tokens: 0 };
        let hedges = 0;
        wantsHedge.forEach((wants) => {
          state = depositHedge(state, ratio);
          if (!wants) return;
          const result = withdrawHedge(state);
          state = result.state;
          if (result.allowed) hedges++;
        });
        expect(hedges).toBeLessThanOrEqual(ratio * wantsHedge.length + 1e-9);
        expect(state.tokens).toBeLessThanOrEqual(hedgeBudgetCapacity);
      }),
    );
  });

  it('is pure', () => {
    const state = Object.freeze({ tokens: 2 });
    expect(withdrawHedge(state)).toEqual({ state: { tokens: 1 }, allowed: true });
    expect(depositHedge(state, 0.5)).toEqual({ tokens: 2.5 });
    expect(state).toEqual({ tokens: 2 });
  });
});
