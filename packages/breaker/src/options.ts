import type { SluiceError, Store, StoreErrorPolicy } from '@sluice/core';
import { type KeyOption, parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';
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
   * The circuit a call belongs to, in the key vocabulary every sluice
   * package shares: `'origin-model'` (default: one circuit per upstream and
   * model, `https://api.deepseek.com/v1|deepseek-v3.2`), `'model'`,
   * `'global'`, `{ tag: 'tenant' }`, or a function of the call.
   */
  key?: KeyOption;
  /**
   * Whether an error counts against the circuit. Default
   * {@link isBreakerFailure}: `error.upstreamFault`. One that throws is a
   * `listener-error` event (`event: 'breaker.isFailure'`) and the default
   * decides for that call.
   */
  isFailure?: (error: SluiceError) => boolean;
  /**
   * Where circuits are kept (under `sluice:breaker:`). Default: each
   * call's pipeline store; `isolate`, `reset` and `state` use the store of
   * the last call seen, or, before any call, a memory store of the breaker's own.
   */
  store?: Store;
  /**
   * What a failing store does to calls. `'open'` (default): calls go ahead
   * and the result is not recorded, so a broken store never stops traffic.
   * `'closed'`: the circuit is read at every admission (two store calls a
   * call) and a call it cannot read fails with `STORE_UNAVAILABLE`.
   * `'memory'`: circuits live in this process until the store answers again.
   */
  onStoreError?: StoreErrorPolicy;
}

const isFunction = (value: unknown) => typeof value === 'function';

const breakerOptionsSchema = z
  .strictObject({
    failures: z.optional(z.union([z.number().check(z.int(), z.minimum(1)), z.literal(false)])),
    failureRate: z.optional(
      z.strictObject({
        threshold: z.number().check(z.gt(0), z.maximum(1)),
        windowMs: z.number().check(z.int(), z.positive()),
        minimumCalls: z.optional(z.number().check(z.int(), z.minimum(1))),
        buckets: z.optional(z.number().check(z.int(), z.minimum(1), z.maximum(1_000))),
      }),
    ),
    slowCallMs: z.optional(z.number().check(z.positive())),
    openMs: z.optional(z.number().check(z.positive())),
    backoff: z.optional(z.strictObject({ factor: z.number().check(z.minimum(1)), maxMs: z.number().check(z.positive()) })),
    probes: z.optional(z.number().check(z.int(), z.minimum(1))),
    // Checked by core's keyResolver, which names `breaker.key` too.
    key: z.optional(z.custom<KeyOption>(() => true)),
    isFailure: z.optional(z.custom<(error: SluiceError) => boolean>(isFunction, 'must be a function of an error')),
    store: z.optional(z.custom<Store>((value) => isFunction((value as Store | undefined)?.update), 'must be a Store')),
    onStoreError: z.optional(z.enum(['open', 'closed', 'memory'])),
  })
  .check(
    z.superRefine((options, issues) => {
      if (options.backoff && options.backoff.maxMs < (options.openMs ?? 30_000)) {
        issues.addIssue({ code: 'custom', path: ['backoff', 'maxMs'], message: 'must be at least openMs' });
      }
    }),
  );

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
  key: KeyOption | undefined;
  isFailure: (error: SluiceError) => boolean;
  store: Store | undefined;
  onStoreError: StoreErrorPolicy;
}

/** What users of opossum, cockatiel and Polly reach for first, and what it is called here. */
const hints = {
  threshold: 'use failures (consecutive failures) or failureRate: { threshold, windowMs }',
  failureThreshold: 'use failures (consecutive failures) or failureRate: { threshold, windowMs }',
  errorThresholdPercentage: 'use failureRate: { threshold (0 to 1), windowMs }',
  resetTimeout: 'use openMs',
  resetTimeoutMs: 'use openMs',
  halfOpenAfter: 'use openMs',
  breakDuration: 'use openMs',
  cooldownMs: 'use openMs',
  timeout: 'use slowCallMs to count slow calls as failures; the deadline is the call\'s timeoutMs',
};

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
  const parsed = parseOptions(breakerOptionsSchema, options, 'breaker', hints);
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
    key: parsed.key,
    isFailure: parsed.isFailure ?? isBreakerFailure,
    store: parsed.store,
    onStoreError: parsed.onStoreError ?? 'open',
  };
}
