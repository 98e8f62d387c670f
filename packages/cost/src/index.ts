/**
 * @module @sluice/cost
 *
 * What LLM calls cost, before and after they are sent: a validated price
 * table with sources and dates (refreshable from LiteLLM's community price
 * file with `loadLiteLLMPrices`), `estimateCost` (expected and worst case),
 * `trackCost` (real cost from usage, streams included, into a ledger, with
 * a spend anomaly alert), `budget` (limits per key and period, enforced
 * by atomic worst-case reservation), and cost reports (`compareModels`,
 * `projectSpend`, `formatCostTable`).
 */
import type { BudgetState } from './budget.js';
import type { BudgetRejectEvent, BudgetWarningEvent, CostAnomalyEvent, CostEvent, PriceUnknownEvent } from './events.js';
import type { CostState } from './track-cost.js';

export type { CostEvent, PriceUnknownEvent, BudgetWarningEvent, BudgetRejectEvent, CostAnomalyEvent, AnomalyMetric } from './events.js';
export { priceTable, type PriceTable, type PriceEntry, type PriceEntryInput, type PriceMatch } from './price-table.js';
export { originalPrices } from './original-prices.js';
export { loadLiteLLMPrices, type LoadLiteLLMPricesOptions, type LiteLLMPrices, type LiteLLMSkip } from './litellm-prices.js';
export { costOfUsage, type CostBuckets, type CostBucket, type CostBreakdown } from './cost-of-usage.js';
export { estimateCost, type EstimateCostOptions, type CostEstimate } from './estimate-cost.js';
export type { UnknownModelPolicy } from './resolve-price.js';
export { trackCost, type TrackCostMiddleware, type CostState } from './track-cost.js';
export {
  spendLedger,
  type Ledger,
  type SpendLedgerOptions,
  type CostRecord,
  type ReportQuery,
  type ReportGrouping,
  type ReportRow,
  type LedgerReport,
} from './ledger.js';
export { budget, type BudgetState } from './budget.js';
export type { TrackCostOptions, AnomalyOptions, BudgetOptions, BudgetLimit, OnExceed } from './options.js';
export type { BudgetPeriod } from './budget-period.js';
export { compareModels, type CompareModelsOptions, type CostRow } from './compare-models.js';
export { projectSpend } from './project-spend.js';
export { formatCostTable, type FormatCostTableOptions } from './format-cost-table.js';
export { UnknownModelError, BudgetExceededError, PricesUnavailableError, type BudgetExceededDetails } from './errors.js';

declare module '@sluice/core' {
  interface SluiceEvents {
    cost: CostEvent;
    'price-unknown': PriceUnknownEvent;
    'budget-warning': BudgetWarningEvent;
    'budget-reject': BudgetRejectEvent;
    'cost-anomaly': CostAnomalyEvent;
  }
  interface SluiceState {
    cost?: CostState;
    budget?: BudgetState;
  }
}
