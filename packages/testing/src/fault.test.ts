import { describe, expect, it } from 'vitest';
import { pickFault, validateRules, type FaultRule } from './fault.js';

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
