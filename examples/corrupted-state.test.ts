/**
 * Stored state this version did not write, under a running pipeline:
 * another build's records in a shared store, a hand edit, a bad write.
 * Three tenants call through a keyed rate limit and breaker (and a
 * ledger) while every record in the store is mutated, round after round,
 * into wrong shapes, wrong types and absurd numbers. Then the mutation
 * stops and traffic goes on for six minutes of the pipeline's clock.
 *
 * While it lasts, every call settles, with an answer or a typed error
 * (never `UNEXPECTED`) and no NaN reaches an event. After it, every key
 * serves again: no tenant is left refused for good by a record nobody
 * ever replaces (a rate-limit window whose total never drains, a circuit
 * whose `openUntil` is not a number), and the ledger's report is finite.
 */
import { breaker } from '@sluice/breaker';
import { memoryStore, SluiceError, type Store } from '@sluice/core';
import { spendLedger, trackCost } from '@sluice/cost';
import { rateLimit } from '@sluice/ratelimit';
import { seededRandom } from '@sluice/testing';
import { chat, closeTestPipelines, testPipeline } from '@sluice/testing/kit';
import { afterEach, describe, expect, it } from 'vitest';

afterEach(closeTestPipelines);

/** A store that keeps each value as JSON text, as Redis does, so a value can be rewritten as anything. */
function textStore(): Store & { keys(): string[]; rewrite(key: string, value: unknown): void; read(key: string): unknown } {
  const inner = memoryStore();
  const data = new Map<string, string>();
  const parse = (text: string | undefined) => (text === undefined ? undefined : (JSON.parse(text) as unknown));
  return {
    async get<T>(key: string) {
      return parse(data.get(key)) as T | undefined;
    },
    async set<T>(key: string, value: T) {
      data.set(key, JSON.stringify(value));
    },
    async update<T>(key: string, update: (current: T | undefined) => T) {
      const next = update(parse(data.get(key)) as T | undefined);
      if (next === null || next === undefined) data.delete(key);
      else data.set(key, JSON.stringify(next));
      return next;
    },
    async delete(key: string) {
      data.delete(key);
      await inner.delete(key);
    },
    keys: () => [...data.keys()],
    rewrite: (key, value) => void data.set(key, JSON.stringify(value) ?? 'null'),
    read: (key) => parse(data.get(key)),
  };
}

const nonFinite = (value: unknown, path = ''): string | undefined => {
  if (typeof value === 'number' && !Number.isFinite(value)) return path || '(value)';
  if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      const found = nonFinite(inner, `${path}.${key}`);
      if (found) return found;
    }
  }
  return undefined;
};

describe('stored state this version did not write', () => {
  // Several seeds: a mutation lands on what wedged a key (a window total that never drains, an openUntil that
  // is not a number) in some of them, not all. Before this stop's fixes, seeds 3 and 7 left a tenant refused
  // LIMIT_REJECTED to the end.
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('never fails a call UNEXPECTED while it is there, and leaves no key refused once it stops (seed %i)', async (seed) => {
    const random = seededRandom(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const odd = () => pick<unknown>([null, 0, -1, 1e308, -1e308, 'x', '', [], {}, true, [1, 'a'], { a: 1 }, 2.5, [[]], [null, null]]);
    const corrupt = (value: unknown, depth = 0): unknown => {
      if (random() < 0.25 || depth > 4) return odd();
      if (Array.isArray(value)) return value.map((inner) => (random() < 0.3 ? corrupt(inner, depth + 1) : inner));
      if (value && typeof value === 'object') {
        const copy: Record<string, unknown> = {};
        for (const [key, inner] of Object.entries(value)) if (random() > 0.1) copy[key] = random() < 0.4 ? corrupt(inner, depth + 1) : inner;
        return copy;
      }
      return random() < 0.5 ? odd() : value;
    };

    const store = textStore();
    const ledger = spendLedger({ store });
    const { llm, clock, events } = await testPipeline({
      store,
      middleware: [
        trackCost({ ledger }),
        breaker({ key: { tag: 'tenant' }, failures: 5, openMs: 30_000 }),
        rateLimit({ key: { tag: 'tenant' }, rpm: 1_000, tpm: 10_000_000 }),
      ],
    });
    const tenants = ['alpha', 'beta', 'gamma'];
    const call = async (tenant: string, index: number) => {
      try {
        await llm.complete(chat(`question ${index}`), { tags: { tenant }, timeoutMs: 5_000 });
        return 'answered';
      } catch (error) {
        return SluiceError.is(error) ? error.code : `not a SluiceError: ${String(error)}`;
      }
    };
    const round = (index: number) => clock.run(Promise.all(tenants.map((tenant) => call(tenant, index))));

    const during: string[] = [];
    for (let index = 0; index < 40; index++) {
      during.push(...(await round(index)));
      // Every record, the ledger's among them, rewritten as something else now and then.
      for (const key of store.keys()) if (random() < 0.4) store.rewrite(key, corrupt(store.read(key)));
      await clock.advanceAsync(1_000);
    }
    expect(during.filter((outcome) => outcome === 'UNEXPECTED' || outcome.startsWith('not a'))).toEqual([]);

    // The mutation stops; traffic goes on, a round every 10 s for over six minutes (past any window, pause or probe lease).
    const after: string[][] = [];
    for (let index = 0; index < 40; index++) {
      after.push(await round(1_000 + index));
      await clock.advanceAsync(10_000);
    }
    // Before, a tenant whose window total was 1e308, or whose circuit's openUntil was not a number, was refused to the end.
    expect(after.at(-1)).toEqual(['answered', 'answered', 'answered']);
    const report = await ledger.report({ by: { tag: 'tenant' } });
    expect(nonFinite(report)).toBeUndefined();
    for (const name of ['cost', 'limit-wait', 'circuit-open'] as const) {
      for (const event of events.of(name)) expect(nonFinite(event)).toBeUndefined();
    }
  });
});
