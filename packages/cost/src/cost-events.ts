import type { BudgetPeriod, BudgetScope } from './budget-period.js';
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
}

/** A model with no price went through under the `warn` policy (`unknown-model` event). */
export interface UnknownModelEvent {
  id: string;
  model: string;
  /** Which middleware met it. */
  by: 'trackCost' | 'budget';
}

/** A budget's settled spend crossed a threshold, once per threshold per period (`budget-warning` event). */
export interface BudgetWarningEvent {
  scope: BudgetScope;
  period: BudgetPeriod;
  /** The period's id: `2026-11-25T10`, `2026-11-25` or `2026-11` (UTC). */
  periodId: string;
  /** The share of the limit crossed, e.g. 0.8. */
  threshold: number;
  limitUsd: number;
  spentUsd: number;
}

/** A call's worst case did not fit a budget (`budget-exceeded` event), whatever `onExceed` then did. */
export interface BudgetExceededEvent extends Omit<BudgetExceededDetails, 'resetsAt'> {
  id: string;
  model: string;
  /** What happened next: refused, sent with a cheaper model, or sent anyway. */
  action: 'reject' | 'downgrade' | 'warn';
  /** The model sent instead, when `action` is `downgrade`. */
  downgradedTo: string | undefined;
}

/** Which rolling figure an {@link AnomalyEvent} is about. */
export type AnomalyMetric = 'tokens-per-request' | 'usd-per-request' | 'tokens-per-minute' | 'usd-per-minute';

/** Spend or token use jumped past `factor` times its rolling baseline (`anomaly` event). */
export interface AnomalyEvent {
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

/** What `trackCost` leaves in `ctx.state.cost` once the call settled. */
export interface CostState {
  model: string;
  usd: number;
  buckets: CostBuckets;
  estimated: boolean;
}

/** What `budget` leaves in `ctx.state.budget` while the call is in flight. */
export interface BudgetState {
  /** The model the reservation was made for (the downgraded one, after a downgrade). */
  model: string;
  /** The worst-case cost reserved in every applicable limit. */
  reservedUsd: number;
  /** The model the caller asked for, when the budget downgraded it. */
  downgradedFrom: string | undefined;
}

declare module '@sluice/core' {
  interface SluiceEvents {
    cost: CostEvent;
    'unknown-model': UnknownModelEvent;
    'budget-warning': BudgetWarningEvent;
    'budget-exceeded': BudgetExceededEvent;
    anomaly: AnomalyEvent;
  }
  interface SluiceState {
    cost?: CostState;
    budget?: BudgetState;
  }
}
