import { type Clock, systemClock } from '@sluice/core';
import { parseOptions } from '@sluice/core/kit';
import { z } from 'zod';
import { periodBucket } from './budget-period.js';
import type { CostEvent } from './events.js';
import { tokenCount, usdAmount } from './usage-tokens.js';

/** One settled call, as `trackCost` records it: its `cost` event and when it settled. */
export interface CostRecord extends CostEvent {
  /** When it settled, `clock.now()` (epoch ms). */
  at: number;
}

/** How a report groups spend: by model, by one tag's value, by UTC period, or not at all. */
export type ReportGrouping = 'model' | 'hour' | 'day' | 'month' | 'total' | { tag: string };

/** What to report. */
export interface ReportQuery {
  /** Start (epoch ms or Date); default: the oldest spend kept. */
  since?: number | Date;
  /** End, exclusive; default: now. */
  until?: number | Date;
  /** Default `'model'`. */
  by?: ReportGrouping;
}

/** One group's spend. */
export interface ReportRow {
  /** The model, the tag's value (`(none)` for calls without the tag), the period id, or `total`. */
  key: string;
  usd: number;
  requests: number;
  /** Calls priced from counted tokens because no usage arrived. */
  estimatedRequests: number;
  uncachedInputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
}

/** Spend over a span, grouped. */
export interface LedgerReport {
  since: number;
  until: number;
  rows: ReportRow[];
  usd: number;
  requests: number;
}

/**
 * Where `trackCost` records what each call cost. The default keeps hourly
 * aggregates in memory; implement this interface to keep them in a
 * database or a shared store instead.
 */
export interface Ledger {
  record(record: CostRecord): Promise<void>;
  report(query?: ReportQuery): Promise<LedgerReport>;
}

/** Options of {@link memoryLedger}. */
export interface MemoryLedgerOptions {
  /** Time source for `report()`'s default `until` and for expiry (default: the system clock). */
  clock?: Clock;
  /** How long aggregates are kept (default 93 days: three months of reports). */
  retentionMs?: number;
}

const optionsSchema = z.strictObject({
  clock: z.custom<Clock>((value) => typeof (value as Clock | undefined)?.now === 'function', 'must be a Clock').optional(),
  retentionMs: z.number().positive().optional(),
});

const querySchema = z.strictObject({
  since: z.union([z.number(), z.date()]).optional(),
  until: z.union([z.number(), z.date()]).optional(),
  by: z.union([z.enum(['model', 'hour', 'day', 'month', 'total']), z.strictObject({ tag: z.string().min(1) })]).optional(),
});

interface Cell {
  hour: number;
  model: string;
  tags: Readonly<Record<string, string>>;
  row: Omit<ReportRow, 'key'>;
}

const hourMs = 3_600_000;

/**
 * An in-memory {@link Ledger}: spend summed per hour, model and tag set,
 * so memory follows the number of distinct hours × models × tag sets kept,
 * not the number of calls. Reports have an hour's resolution: `since` is
 * rounded down to the hour and `until` up.
 *
 * @param options - clock and retention
 * @throws ValidationError naming a bad option
 * @example
 * ```ts
 * const ledger = memoryLedger();
 * const llm = createPipeline({ transport }).use(trackCost({ ledger }));
 * const today = await ledger.report({ since: Date.now() - 86_400_000, by: { tag: 'tenant' } });
 * ```
 */
export function memoryLedger(options: MemoryLedgerOptions = {}): Ledger {
  const config = parseOptions(optionsSchema, options, 'memoryLedger');
  const clock = config.clock ?? systemClock;
  const retentionMs = config.retentionMs ?? 93 * 24 * hourMs;
  const cells = new Map<string, Cell>();
  let newestHour = -Infinity;

  const evict = (hour: number) => {
    if (hour <= newestHour) return;
    newestHour = hour;
    for (const [key, cell] of cells) if (cell.hour < hour - retentionMs) cells.delete(key);
  };

  return {
    async record(record) {
      // An unusable time files the record under now rather than under NaN, where no report finds it.
      const at = Number.isFinite(record.at) ? record.at : clock.now();
      const hour = Math.floor(at / hourMs) * hourMs;
      evict(hour);
      const key = JSON.stringify([hour, record.model, Object.entries(record.tags).sort()]);
      let cell = cells.get(key);
      if (!cell) {
        cell = { hour, model: record.model, tags: { ...record.tags }, row: emptyRow() };
        cells.set(key, cell);
      }
      add(cell.row, record);
    },
    async report(query = {}) {
      const parsed = parseOptions(querySchema, query, 'report');
      const until = parsed.until === undefined ? clock.now() : Number(parsed.until);
      let since = parsed.since === undefined ? Infinity : Number(parsed.since);
      if (parsed.since === undefined) for (const cell of cells.values()) since = Math.min(since, cell.hour);
      if (since === Infinity) since = until;
      const from = Math.floor(since / hourMs) * hourMs;
      // Exclusive, rounded up to the hour; by default everything recorded so far.
      const to = Math.ceil((parsed.until === undefined ? until + 1 : until) / hourMs) * hourMs;
      const by = parsed.by ?? 'model';
      const groups = new Map<string, ReportRow>();
      const total = { key: 'total', ...emptyRow() };
      for (const cell of cells.values()) {
        if (cell.hour < from || cell.hour >= to) continue;
        const key = groupKey(cell, by);
        let row = groups.get(key);
        if (!row) groups.set(key, (row = { key, ...emptyRow() }));
        merge(row, cell.row);
        merge(total, cell.row);
      }
      const rows = [...groups.values()].sort((a, b) => b.usd - a.usd || a.key.localeCompare(b.key));
      return { since, until, rows, usd: total.usd, requests: total.requests };
    },
  };
}

function groupKey(cell: Cell, by: ReportGrouping): string {
  if (typeof by === 'object') return cell.tags[by.tag] ?? '(none)';
  if (by === 'model') return cell.model;
  if (by === 'total') return 'total';
  return periodBucket(by, cell.hour).id;
}

const emptyRow = (): Omit<ReportRow, 'key'> => ({
  usd: 0, requests: 0, estimatedRequests: 0, uncachedInputTokens: 0, cachedInputTokens: 0, outputTokens: 0,
});

// A record may come from any caller of `record()`: an unusable amount counts as 0, never NaN.
function add(row: Omit<ReportRow, 'key'>, record: CostRecord): void {
  row.usd += usdAmount(record.usd) ?? 0;
  row.requests += 1;
  if (record.estimated) row.estimatedRequests += 1;
  row.uncachedInputTokens += tokenCount(record.buckets?.uncachedInput?.tokens) ?? 0;
  row.cachedInputTokens += tokenCount(record.buckets?.cachedInput?.tokens) ?? 0;
  row.outputTokens += tokenCount(record.buckets?.output?.tokens) ?? 0;
}

function merge(into: Omit<ReportRow, 'key'>, from: Omit<ReportRow, 'key'>): void {
  into.usd += from.usd;
  into.requests += from.requests;
  into.estimatedRequests += from.estimatedRequests;
  into.uncachedInputTokens += from.uncachedInputTokens;
  into.cachedInputTokens += from.cachedInputTokens;
  into.outputTokens += from.outputTokens;
}
