import type { BudgetPeriod } from './budget-period.js';
import type { CostBuckets } from './cost-of-usage.js';
import type { BudgetExceededDetails } from './errors.js';

/** A call's cost, once it settled (`cost` event). */
export interface CostEvent {
  id: string;
  /** The price table key the call was priced with (the model actually sent, after any downgrade). */
  model: string;
  tags: Readonly<Record<string, string>>;
  usd: number;
  buckets: CostBuckets;
  /** True when no usage arrived (a stream cut short): tokens were counted from what was sent and streamed. */
  estimated: boolean;
  /** False when the model has no price and the policy let it through (`warn`/`free`): `usd` is 0 then. */
  priced: boolean;
  /**
   * What a middleware that answered the call itself (a cache: see
   * `ctx.state.answeredBy`) saved: the price of the answer it gave back.
   * The call then costs `usd: 0`. 0 for calls the upstream answered.
   */
  savedUsd: number;
  /** The middleware that answered instead of the upstream (`cache`), if one did. */
  answeredBy: string | undefined;
}

/** A model with no price went through under the `warn` policy (`price-unknown` event). */
export interface PriceUnknownEvent {
  id: string;
  model: string;
  /** Which middleware met it. */
  by: 'trackCost' | 'budget';
}

/** A budget's settled spend crossed a threshold, once per threshold, key and period (`budget-warning` event). */
export interface BudgetWarningEvent {
  /** The call whose settlement crossed the threshold. */
  id: string;
  /** The limit's state key: `global`, `tenant:acme`. */
  key: string;
  period: BudgetPeriod;
  /** The period's id: `2026-11-25T10`, `2026-11-25` or `2026-11` (UTC). */
  periodId: string;
  /** The share of the limit crossed, e.g. 0.8. */
  threshold: number;
  limitUsd: number;
  spentUsd: number;
}

/** A call's worst case did not fit a budget (`budget-reject` event), whatever `onExceed` then did. */
export interface BudgetRejectEvent extends Omit<BudgetExceededDetails, 'resetsAt'> {
  id: string;
  model: string;
  /** What happened next: refused, sent with a cheaper model, or sent anyway. */
  action: 'reject' | 'downgrade' | 'warn';
  /** The model sent instead, when `action` is `downgrade`. */
  downgradedTo: string | undefined;
}

/** Which rolling figure a {@link CostAnomalyEvent} is about. */
export type AnomalyMetric = 'tokens-per-request' | 'usd-per-request' | 'tokens-per-minute' | 'usd-per-minute';

/** Spend or token use jumped past `factor` times its rolling baseline (`cost-anomaly` event). */
export interface CostAnomalyEvent {
  /** The call that pushed the figure over. */
  id: string;
  metric: AnomalyMetric;
  value: number;
  baseline: number;
  /** `value / baseline`. */
  ratio: number;
  model: string;
  tags: Readonly<Record<string, string>>;
}
