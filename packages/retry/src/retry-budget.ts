import { parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';

const retryBudgetSchema = z
  .strictObject({
    ratio: z.optional(z.number().check(z.minimum(0), z.maximum(10))),
    minPerSecond: z.optional(z.number().check(z.minimum(0))),
    capacity: z.optional(z.number().check(z.minimum(1))),
  })
  .check(
    z.refine((options) => options.capacity === undefined || options.capacity >= (options.minPerSecond ?? 10), {
      message: 'must be at least minPerSecond',
      path: ['capacity'],
    }),
  );

/** Options of {@link retryBudget}. */
export interface RetryBudgetOptions {
  /** Retries earned per call: 0.2 lets retries add at most 20% to the calls made (default 0.2). */
  ratio?: number;
  /**
   * The floor: retries per second allowed whatever the traffic, so a
   * quiet client can still retry (default 10). The budget refills at this
   * rate up to this many tokens.
   */
  minPerSecond?: number;
  /**
   * The most tokens the budget holds, which bounds the burst of retries
   * when an outage begins after a long healthy spell (default 100, or
   * `minPerSecond` when that is more; at least `minPerSecond`).
   */
  capacity?: number;
}

/**
 * A retry budget: a token bucket every call pays `ratio` into and every
 * retry takes one token from. Times are `clock.now()` values.
 */
export interface RetryBudget {
  /** Records a call (its first attempt), adding `ratio` tokens. */
  deposit(now: number): void;
  /** Takes one token for a retry; `false` when the budget is spent. */
  withdraw(now: number): boolean;
  /** The tokens available at `now`: how many retries would be allowed. */
  balance(now: number): number;
}

/**
 * Creates a retry budget (Finagle's and Envoy's idea, as a token bucket)
 * so that a full outage does not multiply the load on a failing
 * provider by the number of attempts: over any stretch of time, retries
 * are at most `ratio` × calls + `minPerSecond` × seconds + what was
 * banked (at most `capacity`).
 *
 * The budget lives in this process. `retry()` makes one per middleware
 * instance; pass the same budget to several `retry()`s to share it.
 *
 * @param options - ratio, floor and capacity; all optional
 * @returns a budget starting with `minPerSecond` tokens
 * @throws ValidationError naming the bad option (`retryBudget.ratio`)
 * @example
 * ```ts
 * const budget = retryBudget({ ratio: 0.1 });
 * const llm = createPipeline({ transport }).use(retry({ budget }));
 * budget.balance(Date.now()); // retries allowed right now
 * ```
 */
export function retryBudget(options: RetryBudgetOptions = {}): RetryBudget {
  return retryBudgetFrom(options, 'retryBudget');
}

/** {@link retryBudget} validated under another name (`retry.budget.ratio`); internal. */
export function retryBudgetFrom(options: unknown, name: string): RetryBudget {
  const parsed = parseOptions(retryBudgetSchema, options, name);
  const ratio = parsed.ratio ?? 0.2;
  const floor = parsed.minPerSecond ?? 10;
  const capacity = parsed.capacity ?? Math.max(100, floor);
  let tokens = floor;
  let at: number | undefined;

  // Time only tops the bucket up to the floor; tokens above it come from calls.
  const refill = (now: number) => {
    if (at !== undefined && tokens < floor && now > at) {
      tokens = Math.min(floor, tokens + (floor * (now - at)) / 1000);
    }
    at = at === undefined ? now : Math.max(at, now);
  };

  return {
    deposit(now) {
      refill(now);
      tokens = Math.min(capacity, tokens + ratio);
    },
    withdraw(now) {
      refill(now);
      // Five deposits of 0.2 add up to 0.9999999999999999.
      if (tokens < 1 - 1e-9) return false;
      tokens = Math.max(0, tokens - 1);
      return true;
    },
    balance(now) {
      refill(now);
      return Math.floor(tokens + 1e-9);
    },
  };
}
