/**
 * @module @sluice/cost
 *
 * What LLM calls cost, before and after they are sent: a validated price
 * table with sources and dates (refreshable from LiteLLM's community price
 * file with `loadLiteLLMPrices`), `estimateCost` (expected and worst case),
 * `trackCost` (real cost from usage, streams included, into a ledger, with
 * a spend anomaly alert), `budget` (limits per scope and period, enforced
 * by atomic worst-case reservation), and cost reports (`compareModels`,
 * `projectSpend`, `formatCostTable`).
 */
export type {
  CostEvent,
  UnknownModelEvent,
  BudgetWarningEvent,
  BudgetExceededEvent,
  AnomalyEvent,
  AnomalyMetric,
  CostState,
  BudgetState,
} from './cost-events.js';
export { priceTable, type PriceTable, type PriceEntry, type PriceEntryInput, type PriceMatch } from './price-table.js';
export { originalPrices } from './original-prices.js';
export { loadLiteLLMPrices, type LoadLiteLLMPricesOptions, type LiteLLMPrices, type LiteLLMSkip } from './litellm-prices.js';
export { costOfUsage, type CostBuckets, type CostBucket, type CostBreakdown } from './cost-of-usage.js';
export { estimateCost, type EstimateCostOptions, type CostEstimate } from './estimate-cost.js';
export type { UnknownModelPolicy } from './resolve-price.js';
export { trackCost, type TrackCostOptions, type TrackCostMiddleware } from './track-cost.js';
export type { AnomalyOptions } from './anomaly-detector.js';
export {
  memoryLedger,
  type Ledger,
  type MemoryLedgerOptions,
  type CostRecord,
  type ReportQuery,
  type ReportGrouping,
  type ReportRow,
  type LedgerReport,
} from './ledger.js';
export { budget, type BudgetOptions, type BudgetLimit, type OnExceed } from './budget.js';
export type { BudgetPeriod, BudgetScope } from './budget-period.js';
export { compareModels, type CompareModelsOptions, type CostRow } from './compare-models.js';
export { projectSpend } from './project-spend.js';
export { formatCostTable, type FormatCostTableOptions } from './format-cost-table.js';
export { UnknownModelError, BudgetExceededError, PricesUnavailableError, type BudgetExceededDetails } from './errors.js';
