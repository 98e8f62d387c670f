import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlightTable, keyHash } from './flight-table.js';

const digest = (n: number) => n.toString(16).padStart(64, '0');
const entry = (key: string, hash = keyHash(key, 13)) => ({ key, hash });

describe('FlightTable', () => {
  it('finds, replaces and removes entries by key', () => {
    const table = new FlightTable<{ key: string; hash: number }>();
    const a = entry(`sluice:cache:global:completion:${digest(1)}`);
    const b = entry(`sluice:cache:global:completion:${digest(2)}`);
    table.set(a);
    table.set(b);
    expect(table.get(a.key, a.hash)).toBe(a);
    expect(table.get(b.key, b.hash)).toBe(b);
    const newer = entry(a.key);
    table.set(newer);
    expect(table.get(a.key, a.hash)).toBe(newer);
    expect(table.size).toBe(2);
    // Removing an entry that was replaced leaves its successor in place.
    table.delete(a);
    expect(table.get(a.key, a.hash)).toBe(newer);
    table.delete(newer);
    expect(table.get(a.key, a.hash)).toBeUndefined();
    expect(table.size).toBe(1);
  });

  it('keeps every entry of a run of equal hashes reachable when one in its middle is removed, across the end of the array', () => {
    const table = new FlightTable<{ key: string; hash: number }>();
    // Slot 63 of 64 is the home of all of them: the run wraps round to 0, 1, 2.
    const run = [0, 1, 2, 3].map((n) => entry(`k${n}`, 63));
    for (const item of run) table.set(item);
    table.delete(run[1] as (typeof run)[number]);
    for (const item of [run[0], run[2], run[3]]) expect(table.get(item!.key, 63)).toBe(item);
    expect(table.get('k1', 63)).toBeUndefined();
  });

  it('agrees with a Map through any sequence of sets and deletes, with hashes crowded into few slots, growing and shrinking', () => {
    // Half the hashes are homed at the array's end whatever its size, so runs wrap round to its start.
    const hashOf = (n: number, spread: number) => (n % 2 === 0 ? (n % spread) * 7 : -1 - (n % spread));
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 300 }) }),
      fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 300 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 600, size: 'max' }), fc.integer({ min: 1, max: 40 }), (ops, spread) => {
        const table = new FlightTable<{ key: string; hash: number }>();
        const model = new Map<string, { key: string; hash: number }>();
        for (const { kind, key: n } of ops) {
          const key = `key-${n}`;
          if (kind === 'set') {
            const item = { key, hash: hashOf(n, spread) };
            table.set(item);
            model.set(key, item);
          } else {
            const item = model.get(key);
            if (item) {
              table.delete(item);
              model.delete(key);
            }
          }
        }
        expect(table.size).toBe(model.size);
        for (let n = 0; n <= 300; n++) {
          const key = `key-${n}`;
          expect(table.get(key, hashOf(n, spread))).toBe(model.get(key));
        }
      }),
    );
  });
});

describe('keyHash', () => {
  it('tells the same request apart by scope and by kind', () => {
    const hashes = new Set(
      ['global', 'tenant-a', 'tenant-b'].flatMap((scope) =>
        ['completion', 'stream'].map((kind) => keyHash(`sluice:cache:${scope}:${kind}:${digest(0xabcdef12)}`, 13)),
      ),
    );
    expect(hashes.size).toBe(6);
  });
});
