import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ResolvedDeployment } from './options.js';
import { type Candidate, selectDeployment } from './select.js';

const deployment = (id: string, weight: number, priceUsd = 1): ResolvedDeployment =>
  ({ id, weight, priceUsd, group: 'g', model: 'm', index: 0, contextWindow: undefined }) as unknown as ResolvedDeployment;
const candidate = (d: ResolvedDeployment, inFlight = 0, latencyMs?: number): Candidate => ({ deployment: d, inFlight, latencyMs });

describe('selectDeployment', () => {
  it('weighted: 10,000 picks land within 3% of the weights', () => {
    const pool = [deployment('a', 1), deployment('b', 2), deployment('c', 7)];
    const credit = new Map<string, number>();
    const counts = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const picked = selectDeployment('weighted', pool.map((d) => candidate(d)), credit, Math.random);
      counts.set(picked.id, (counts.get(picked.id) ?? 0) + 1);
    }
    expect(counts).toEqual(new Map([['a', 1_000], ['b', 2_000], ['c', 7_000]]));
  });

  it('weighted: any weights, any run length, every share within one pick of its weight', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 500 }), (weights, picks) => {
        const pool = weights.map((weight, i) => deployment(`d${i}`, weight));
        const total = weights.reduce((sum, weight) => sum + weight, 0);
        const credit = new Map<string, number>();
        const counts = new Map<string, number>();
        for (let i = 0; i < picks; i++) {
          const picked = selectDeployment('weighted', pool.map((d) => candidate(d)), credit, Math.random);
          counts.set(picked.id, (counts.get(picked.id) ?? 0) + 1);
        }
        for (const d of pool) expect(Math.abs((counts.get(d.id) ?? 0) - (picks * d.weight) / total)).toBeLessThanOrEqual(pool.length);
      }),
    );
  });

  it('least-busy picks the fewest calls in flight per unit of weight', () => {
    const picked = selectDeployment('least-busy', [candidate(deployment('a', 1), 3), candidate(deployment('b', 4), 8), candidate(deployment('c', 1), 5)], new Map(), () => 0);
    expect(picked.id).toBe('b');
  });

  it('latency tries an unmeasured deployment first, then the fastest', () => {
    const a = deployment('a', 1);
    const b = deployment('b', 1);
    expect(selectDeployment('latency', [candidate(a, 0, 120), candidate(b, 0, undefined)], new Map(), () => 0).id).toBe('b');
    expect(selectDeployment('latency', [candidate(a, 0, 120), candidate(b, 0, 300)], new Map(), () => 0).id).toBe('a');
  });

  it('cost picks the cheapest', () => {
    expect(selectDeployment('cost', [candidate(deployment('a', 1, 10)), candidate(deployment('b', 1, 0.5))], new Map(), () => 0).id).toBe('b');
  });
});
