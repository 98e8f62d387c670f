import { type SluiceError } from '@sluice/core';
import { parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';

/**
 * A backoff strategy: how long to wait after a failed attempt before the
 * next one. Strategies are plain functions, separate from the retry
 * policy (cockatiel's split), so any of them can be passed to `retry`.
 *
 * @param attempt - the attempt that just failed, 1-based (1 before the first retry)
 * @param error - that attempt's error
 * @returns milliseconds to wait, 0 or more
 */
export type Backoff = (attempt: number, error: SluiceError) => number;

/**
 * How the wait is randomised between 0 and the exponential ceiling:
 * `full` draws from [0, ceiling) (AWS's "full jitter", the default: it
 * spreads a thundering herd best), `equal` from [ceiling/2, ceiling), and
 * `none` waits the ceiling exactly.
 */
export type Jitter = 'full' | 'equal' | 'none';

const randomSchema = z.custom<() => number>((value) => typeof value === 'function', 'must be a function returning [0, 1)');

const exponentialBackoffSchema = z.strictObject({
  baseMs: z.optional(z.number().check(z.nonnegative())),
  factor: z.optional(z.number().check(z.minimum(1))),
  maxMs: z.optional(z.number().check(z.nonnegative())),
  jitter: z.optional(z.enum(['full', 'equal', 'none'])),
  random: z.optional(randomSchema),
});

/** Options of {@link exponentialBackoff}. */
export interface ExponentialBackoffOptions {
  /** The ceiling after the first failure, in ms (default 1,000). */
  baseMs?: number;
  /** What the ceiling is multiplied by after each further failure (default 2). */
  factor?: number;
  /** The largest ceiling, in ms (default 10,000). */
  maxMs?: number;
  /** How the wait is drawn below the ceiling (default `'full'`). */
  jitter?: Jitter;
  /** A source of numbers in [0, 1) (default `Math.random`); inject a seeded one for deterministic tests. */
  random?: () => number;
}

/**
 * Exponential backoff with jitter: after attempt `n` fails, the ceiling is
 * `min(maxMs, baseMs * factor ** (n - 1))` and the wait is drawn below it
 * as `jitter` says. The defaults (1 s, ×2, 10 s maximum, full jitter) wait on
 * average 0.5 s, 1 s, 2 s, 4 s, 5 s, 5 s…
 *
 * @param options - base, factor, cap, jitter and random source; all optional
 * @returns a {@link Backoff}
 * @throws ValidationError naming the bad option (`exponentialBackoff.factor`)
 * @example
 * ```ts
 * const backoff = exponentialBackoff({ baseMs: 500, maxMs: 8_000, jitter: 'equal' });
 * const llm = createPipeline({ transport }).use(retry({ backoff }));
 * ```
 */
export function exponentialBackoff(options: ExponentialBackoffOptions = {}): Backoff {
  return exponentialBackoffFrom(options, 'exponentialBackoff');
}

/** Names other retry libraries give these options. */
const backoffHints = {
  initialMs: 'use baseMs',
  initialDelayMs: 'use baseMs',
  baseDelayMs: 'use baseMs',
  minMs: 'use baseMs',
  maxDelayMs: 'use maxMs',
  multiplier: 'use factor',
  exponent: 'use factor',
};

/**
 * {@link exponentialBackoff} validated under another name, so `retry({ backoff: { … } })`
 * reports `retry.backoff.maxMs`; internal.
 */
export function exponentialBackoffFrom(options: unknown, name: string, defaultRandom?: () => number): Backoff {
  const parsed = parseOptions(exponentialBackoffSchema, options, name, backoffHints);
  const baseMs = parsed.baseMs ?? 1_000;
  const factor = parsed.factor ?? 2;
  const maxMs = parsed.maxMs ?? 10_000;
  const jitter = parsed.jitter ?? 'full';
  const random = parsed.random ?? defaultRandom ?? Math.random;
  return function exponential(attempt) {
    // factor ** n overflows to Infinity after enough attempts, which min() caps;
    // only a zero base would turn it into NaN (0 * Infinity).
    const ceiling = baseMs === 0 ? 0 : Math.min(maxMs, baseMs * factor ** Math.max(0, attempt - 1));
    if (jitter === 'none') return ceiling;
    const draw = clampUnit(random());
    return jitter === 'full' ? draw * ceiling : ceiling / 2 + (draw * ceiling) / 2;
  };
}

/**
 * The same wait after every failure.
 *
 * @param ms - the wait in milliseconds, 0 or more
 * @returns a {@link Backoff}
 * @throws ValidationError when `ms` is negative or not a number
 * @example
 * ```ts
 * const llm = createPipeline({ transport }).use(retry({ backoff: constantBackoff(250) }));
 * ```
 */
export function constantBackoff(ms: number): Backoff {
  const wait = parseOptions(z.number().check(z.nonnegative()), ms, 'constantBackoff.ms');
  return function constant() {
    return wait;
  };
}

/** A misbehaving random source must not produce a negative or oversized wait. */
function clampUnit(value: number): number {
  return Number.isFinite(value) ? Math.min(Math.max(value, 0), 1) : 0;
}
