import { type CompletionContext, type SluiceError, type Store } from '@sluice/core';
import { parseOptions } from '@sluice/core/kit';
import { z } from 'zod';
import type { CircuitRules } from './circuit.js';
import { isBreakerFailure } from './is-breaker-failure.js';

/**
 * Options of {@link breaker}. Every field is optional.
 *
 * @example
 * ```ts
 * const options: BreakerOptions = {
 *   failures: 10,
 *   failureRate: { threshold: 0.5, windowMs: 60_000, minimumCalls: 20 },
 *   slowCallMs: 30_000,
 *   backoff: { factor: 2, maxMs: 300_000 },
 * };
 * ```
 */
export interface BreakerOptions {
  /**
   * Consecutive failures that open the circuit (default 10, the original
   * client's rule), or `false` to trip on `failureRate` alone.
   */
  failures?: number | false;
  /**
   * Also open when the share of failed calls in a sliding window reaches
   * `threshold` (0–1, inclusive), once the window holds at least
   * `minimumCalls` calls (default 20). The window is `buckets` slices of
   * `windowMs / buckets` (default 10), so a circuit's memory stays constant.
   * Off by default.
   */
  failureRate?: { threshold: number; windowMs: number; minimumCalls?: number; buckets?: number };
  /**
   * A call whose response took longer than this counts as a failure,
   * whatever follows: the time from sending the request upstream to the
   * response (non-stream) or its headers (stream). Off by default.
   */
  slowCallMs?: number;
  /** How long an open circuit fails calls fast before it turns half-open (default 30,000). */
  openMs?: number;
  /**
   * Grows the open time on repeated trips without a close between them:
   * `openMs * factor ** (trips - 1)`, at most `maxMs`. Off by default.
   */
  backoff?: { factor: number; maxMs: number };
  /** Probes a half-open circuit lets through; it closes once that many succeeded (default 1). */
  probes?: number;
  /**
   * The circuit a call belongs to (default `${ctx.transport.origin}|${ctx.request.model}`:
   * one per model and upstream). Keep the number of keys bounded: circuits are kept until reset.
   */
  key?: (ctx: CompletionContext) => string;
  /** Whether an error counts against the circuit, instead of {@link isBreakerFailure}. */
  isFailure?: (error: SluiceError) => boolean;
  /**
   * Where circuits are kept. Default: the store of the pipeline of the
   * first call the breaker serves, or, when `isolate`/`reset`/`state` run
   * before any call, a memory store the breaker creates and keeps.
   */
  store?: Store;
  /** Prefix of the breaker's store keys (default `'breaker:'`); give two breakers sharing a store different ones. */
  prefix?: string;
}

const isFunction = (value: unknown) => typeof value === 'function';

const breakerOptionsSchema = z
  .strictObject({
    failures: z.union([z.number().int().min(1), z.literal(false)]).optional(),
    failureRate: z
      .strictObject({
        threshold: z.number().gt(0).max(1),
        windowMs: z.number().int().positive().finite(),
        minimumCalls: z.number().int().min(1).optional(),
        buckets: z.number().int().min(1).max(1_000).optional(),
      })
      .optional(),
    slowCallMs: z.number().positive().finite().optional(),
    openMs: z.number().positive().finite().optional(),
    backoff: z
      .strictObject({ factor: z.number().min(1).finite(), maxMs: z.number().positive().finite() })
      .optional(),
    probes: z.number().int().min(1).optional(),
    key: z.custom<(ctx: CompletionContext) => string>(isFunction, 'must be a function of the context').optional(),
    isFailure: z.custom<(error: SluiceError) => boolean>(isFunction, 'must be a function of an error').optional(),
    store: z.custom<Store>((value) => isFunction((value as Store | undefined)?.update), 'must be a Store').optional(),
    prefix: z.string().min(1).optional(),
  })
  .superRefine((options, issues) => {
    if (options.backoff && options.backoff.maxMs < (options.openMs ?? 30_000)) {
      issues.addIssue({ code: 'custom', path: ['backoff', 'maxMs'], message: 'must be at least openMs' });
    }
  });

/**
 * The options with every default filled in; internal.
 *
 * @example
 * ```ts
 * resolveBreakerOptions({}).rules.failures; // 10
 * ```
 */
export interface BreakerConfig {
  rules: CircuitRules;
  slowCallMs: number | undefined;
  key: (ctx: CompletionContext) => string;
  isFailure: (error: SluiceError) => boolean;
  store: Store | undefined;
  prefix: string;
}

/**
 * Validates `options` and fills in the defaults; internal.
 *
 * @param options - what `breaker()` was given
 * @throws ValidationError naming the bad field (`breaker.failures`, `breaker.failureRate.threshold`)
 * @example
 * ```ts
 * const config = resolveBreakerOptions({ failures: 5 });
 * ```
 */
export function resolveBreakerOptions(options: BreakerOptions): BreakerConfig {
  const parsed = parseOptions(breakerOptionsSchema, options, 'breaker');
  const rate = parsed.failureRate;
  return {
    rules: {
      failures: parsed.failures ?? 10,
      failureRate: rate && {
        threshold: rate.threshold,
        windowMs: rate.windowMs,
        minimumCalls: rate.minimumCalls ?? 20,
        buckets: rate.buckets ?? 10,
      },
      openMs: parsed.openMs ?? 30_000,
      backoff: parsed.backoff,
      probes: parsed.probes ?? 1,
    },
    slowCallMs: parsed.slowCallMs,
    key: parsed.key ?? defaultKey,
    isFailure: parsed.isFailure ?? isBreakerFailure,
    store: parsed.store,
    prefix: parsed.prefix ?? 'breaker:',
  };
}

/** One circuit per upstream and model. */
function defaultKey(ctx: CompletionContext): string {
  return `${ctx.transport.origin}|${ctx.request.model}`;
}
