import { describe, expect, it } from 'vitest';
import type { SettleListener, Settlement } from './context.js';
import { SettleScope } from './settlement.js';

const settlement = { outcome: 'success', durationMs: 1, streamedText: '', chunks: 0 } as unknown as Settlement;

/** A scope whose listeners run as the call runs them, recorded in order. */
function scope() {
  const ran: number[] = [];
  const runner = {
    runListener(listener: SettleListener, settled: Settlement) {
      const result = listener(settled);
      return result instanceof Promise ? result : undefined;
    },
  };
  return { ran, scope: new SettleScope(runner) };
}

describe('SettleScope', () => {
  for (const count of [0, 1, 2, 3, 8, 9, 20]) {
    it(`runs each of ${count} listeners once, in the order they were added`, async () => {
      const { ran, scope: settling } = scope();
      for (let index = 0; index < count; index++) settling.add(() => void ran.push(index));
      expect(settling.hasListeners).toBe(count > 0);
      await settling.settle(settlement);
      expect(ran).toEqual(Array.from({ length: count }, (_, index) => index));
      // Settled once: a second settlement runs nobody again.
      expect(settling.settle(settlement)).toBeUndefined();
      expect(ran).toHaveLength(count);
    });
  }

  it('waits for every listener that returns a promise, and runs one added after settling at once', async () => {
    const { ran, scope: settling } = scope();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    settling.add(() => held.then(() => void ran.push(1)));
    settling.add(() => void ran.push(2));
    const settled = settling.settle(settlement);
    expect(settled).toBeInstanceOf(Promise);
    expect(ran).toEqual([2]);
    release();
    await settled;
    expect(ran).toEqual([2, 1]);
    settling.add(() => void ran.push(3));
    expect(ran).toEqual([2, 1, 3]);
  });
});
