import { AssertionError } from 'node:assert';
import type { Clock, Store } from '@sluice/core';

/** A record's time to live: fixed, or computed from the value being written. */
export type TtlOption<T> = number | ((next: T) => number);

/** Options of {@link checkedStore}. */
export interface CheckedStoreOptions {
  /** A store to keep the values in (a Redis store under test, say); default: a map in this double. */
  inner?: Store;
  /** Where expiry reads the time from when there is no `inner` (default: `Date.now`). */
  clock?: Pick<Clock, 'now'>;
}

/** The store double {@link checkedStore} returns. */
export interface CheckedStore extends Store {
  update<T>(key: string, update: (current: T | undefined) => T, ttlMs?: TtlOption<T>): Promise<T>;
  /** How many operations were called, all kinds together. */
  readonly calls: number;
  /** How many operations of each kind were called. */
  readonly counts: Readonly<Record<'get' | 'set' | 'update' | 'delete', number>>;
  /**
   * Every check that failed, also those a middleware caught (a store
   * failure policy of `open` swallows what `update` throws).
   */
  readonly violations: readonly AssertionError[];
  /** The JSON text last written under `key` and still live, or undefined. */
  raw(key: string): string | undefined;
  /** @throws AssertionError - the first violation, if there was one */
  assertClean(): void;
}

type Operation = 'get' | 'set' | 'update' | 'delete';

/**
 * A {@link Store} double that checks what a distributed store needs of a
 * middleware. Every `update` reducer runs twice, each time on its own deep
 * copy of the current value: it fails if the reducer mutated its input or
 * if the two results differ (impure: it read the time, a random number or
 * outer state). Every value is round-tripped through JSON, and one that
 * is not plain JSON (a Date, a Map, NaN, undefined, a class) fails, naming
 * where in the value it is. A failure throws an `AssertionError` naming the
 * key, and is kept in `violations`. TTLs (a number, or a function of the
 * new value) expire records on the clock.
 *
 * @param options - an inner store to wrap, and the clock for expiry
 * @example
 * ```ts
 * const store = checkedStore({ clock });
 * const llm = createPipeline({ transport, clock, store }).use(breaker());
 * await llm.complete(chat('Hi'));
 * store.assertClean();
 * ```
 */
export function checkedStore(options: CheckedStoreOptions = {}): CheckedStore {
  const { inner, clock = { now: () => Date.now() } } = options;
  const entries = new Map<string, { text: string; expiresAt: number }>();
  const counts: Record<Operation, number> = { get: 0, set: 0, update: 0, delete: 0 };
  const violations: AssertionError[] = [];

  const fail = (message: string, details: { actual?: unknown; expected?: unknown } = {}): never => {
    const error = new AssertionError({ message: `checkedStore: ${message}`, ...details });
    violations.push(error);
    throw error;
  };
  const toText = (key: string, value: unknown, what: string): string => {
    const problem = jsonProblem(value, '');
    if (problem !== undefined) fail(`${what} for key "${key}" is not plain JSON: ${problem}`);
    return JSON.stringify(value);
  };
  const checkTtl = (key: string, ttlMs: unknown): number | undefined => {
    if (ttlMs === undefined) return undefined;
    if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs < 0) fail(`the TTL for key "${key}" is ${String(ttlMs)}, not a finite number of ms ≥ 0`);
    return ttlMs as number;
  };
  const live = (key: string) => {
    const entry = entries.get(key);
    if (entry !== undefined && entry.expiresAt <= clock.now()) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  };
  const put = (key: string, text: string, ttlMs: number | undefined) => {
    entries.set(key, { text, expiresAt: ttlMs === undefined ? Infinity : clock.now() + ttlMs });
  };

  /** Runs `reducer` twice on copies of `text`'s value and returns the checked result's text. */
  const reduce = <T>(key: string, reducer: (current: T | undefined) => T, text: string | undefined): string => {
    const copy = () => (text === undefined ? undefined : (JSON.parse(text) as T));
    const firstInput = copy();
    const first = reducer(firstInput);
    if (text !== undefined && JSON.stringify(firstInput) !== text) {
      fail(`the update reducer for key "${key}" mutated its input`, { actual: JSON.parse(JSON.stringify(firstInput)), expected: JSON.parse(text) });
    }
    const firstText = toText(key, first, 'the value an update reducer returned');
    const secondText = JSON.stringify(reducer(copy()));
    if (secondText !== firstText) {
      fail(`the update reducer for key "${key}" is not pure: run twice on the same value, it returned different results`, {
        actual: secondText === undefined ? undefined : JSON.parse(secondText),
        expected: JSON.parse(firstText),
      });
    }
    return firstText;
  };

  const count = (operation: Operation) => void counts[operation]++;

  return {
    get calls() {
      return counts.get + counts.set + counts.update + counts.delete;
    },
    counts,
    violations,
    raw: (key) => live(key)?.text,
    assertClean() {
      if (violations[0] !== undefined) throw violations[0];
    },
    async get<T>(key: string) {
      count('get');
      if (inner !== undefined) {
        const value = await inner.get<T>(key);
        return value === undefined ? undefined : (JSON.parse(toText(key, value, 'the stored value')) as T);
      }
      const entry = live(key);
      return entry === undefined ? undefined : (JSON.parse(entry.text) as T);
    },
    async set<T>(key: string, value: T, ttlMs?: number) {
      count('set');
      const text = toText(key, value, 'the value set');
      const ttl = checkTtl(key, ttlMs);
      put(key, text, ttl);
      if (inner !== undefined) await inner.set(key, JSON.parse(text) as T, ttl);
    },
    async update<T>(key: string, reducer: (current: T | undefined) => T, ttlMs?: TtlOption<T>) {
      count('update');
      const ttlOf = (text: string) => checkTtl(key, typeof ttlMs === 'function' ? ttlMs(JSON.parse(text) as T) : ttlMs);
      if (inner === undefined) {
        const text = reduce(key, reducer, live(key)?.text);
        put(key, text, ttlOf(text));
        return JSON.parse(text) as T;
      }
      let written: string | undefined;
      const checked = (current: T | undefined): T => {
        written = reduce(key, reducer, current === undefined ? undefined : toText(key, current, 'the stored value'));
        return JSON.parse(written) as T;
      };
      // The inner store may take the TTL as a function of the new value; resolve it here otherwise.
      const ttl = typeof ttlMs === 'function' ? (next: T) => ttlOf(JSON.stringify(next)) ?? Infinity : checkTtl(key, ttlMs);
      const next = await inner.update(key, checked, ttl as never);
      if (written !== undefined) put(key, written, ttlOf(written));
      return JSON.parse(JSON.stringify(next)) as T;
    },
    async delete(key: string) {
      count('delete');
      entries.delete(key);
      if (inner !== undefined) await inner.delete(key);
    },
  };
}

/** Where `value` stops being plain JSON (what `JSON.parse(JSON.stringify(value))` would not give back), or undefined. */
function jsonProblem(value: unknown, path: string): string | undefined {
  const at = `the value${path}`;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${at} is ${value}`;
    case 'object': {
      if (value === null) return undefined;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const problem = jsonProblem(value[i], `${path}[${i}]`);
          if (problem !== undefined) return problem;
        }
        return undefined;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return `${at} is a ${(value as object).constructor?.name ?? 'class instance'}, not a plain object`;
      for (const [key, child] of Object.entries(value)) {
        const problem = jsonProblem(child, `${path}.${key}`);
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    default:
      return `${at} is ${typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`}`;
  }
}
