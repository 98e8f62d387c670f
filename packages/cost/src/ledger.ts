import { type Clock, type CompletionContext, type Store, type StoreErrorPolicy, systemClock } from '@sluice/core';
import { keyedState, parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';
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
  /** Calls a middleware answered without the upstream (cache hits). */
  savedRequests: number;
  /** What those answers would have cost. */
  savedUsd: number;
}

/** Spend over a span, grouped. */
export interface LedgerReport {
  since: number;
  until: number;
  rows: ReportRow[];
  usd: number;
  requests: number;
  /** What answers given without the upstream (cache hits) saved. */
  savedUsd: number;
}

/**
 * Where `trackCost` records what each call cost. The default,
 * {@link spendLedger}, keeps hourly aggregates in the pipeline's store;
 * implement this interface to keep them in a database instead.
 */
export interface Ledger {
  /**
   * @param record - the settled call
   * @param ctx - the call, when recorded from a pipeline (a store-backed ledger binds to its store)
   */
  record(record: CostRecord, ctx?: CompletionContext): Promise<void>;
  report(query?: ReportQuery): Promise<LedgerReport>;
}

/** Options of {@link spendLedger}. */
export interface SpendLedgerOptions {
  /** Where the aggregates live (default: each call's `ctx.store`, the pipeline's), under `sluice:cost:`. */
  store?: Store;
  /**
   * What a store failure does (default `'memory'`: the spend is kept in this
   * process until the store is back, so a report here still shows it;
   * `'open'` drops it). Either way a `store-error` event says so, and the
   * call's own result is never touched.
   */
  onStoreError?: Exclude<StoreErrorPolicy, 'closed'>;
  /** Time source for `report()`'s default `until` and for expiry outside a call (default: the system clock). */
  clock?: Clock;
  /** How long aggregates are kept (default 93 days: three months of reports). */
  retentionMs?: number;
  /** Ledgers with the same name and store share their records (default `'ledger'`). */
  name?: string;
}

const optionsSchema = z.strictObject({
  store: z.optional(z.custom<Store>((value) => typeof (value as Store | undefined)?.update === 'function', 'must be a Store')),
  onStoreError: z.optional(z.enum(['open', 'memory'])),
  clock: z.optional(z.custom<Clock>((value) => typeof (value as Clock | undefined)?.now === 'function', 'must be a Clock')),
  retentionMs: z.optional(z.number().check(z.positive())),
  name: z.optional(z.string().check(z.minLength(1))),
});

const querySchema = z.strictObject({
  since: z.optional(z.union([z.number(), z.date()])),
  until: z.optional(z.union([z.number(), z.date()])),
  by: z.optional(z.union([z.enum(['model', 'hour', 'day', 'month', 'total']), z.strictObject({ tag: z.string().check(z.minLength(1)) })])),
});

interface Cell {
  model: string;
  tags: Readonly<Record<string, string>>;
  row: Omit<ReportRow, 'key'>;
}

/** One hour's spend: a cell per model and tag set. Plain JSON. */
interface HourRecord {
  cells: Record<string, Cell>;
}

const hourMs = 3_600_000;

/**
 * A {@link Ledger} over the pipeline's store (through `keyedState`, under
 * `sluice:cost:<name>:<hour>`): spend summed per hour, model and tag set,
 * so storage follows the number of distinct hours × models × tag sets
 * kept, not the number of calls, and every hour's record expires
 * `retentionMs` after the hour ends. With a shared store (`@sluice/redis`),
 * every instance records into, and reports from, the same ledger. Reports
 * have an hour's resolution: `since` is rounded down to the hour and `until` up.
 *
 * @param options - store and its failure policy, clock, retention, name
 * @throws ValidationError naming a bad option
 * @example
 * ```ts
 * const ledger = spendLedger({ retentionMs: 31 * 86_400_000 });
 * const llm = createPipeline({ transport }).use(trackCost({ ledger }));
 * const today = await ledger.report({ since: Date.now() - 86_400_000, by: { tag: 'tenant' } });
 * ```
 */
export function spendLedger(options: SpendLedgerOptions = {}): Ledger {
  const config = parseOptions(optionsSchema, options, 'spendLedger');
  const clock = config.clock ?? systemClock;
  const retentionMs = config.retentionMs ?? 93 * 24 * hourMs;
  const name = config.name ?? 'ledger';
  const state = keyedState({
    name: 'cost',
    defaultKey: 'global',
    field: 'spendLedger.key',
    store: config.store,
    onStoreError: config.onStoreError ?? 'memory',
  });
  const recordKey = (hour: number) => `${name}:${new Date(hour).toISOString().slice(0, 13)}`;

  return {
    async record(record, ctx) {
      const now = ctx?.clock.now() ?? clock.now();
      // An unusable time files the record under now rather than under NaN, where no report finds it.
      const at = Number.isFinite(record.at) ? record.at : now;
      const hour = Math.floor(at / hourMs) * hourMs;
      const ttlMs = hour + hourMs + retentionMs - now;
      if (ttlMs <= 0) return;
      const cell = JSON.stringify([record.model, Object.entries(record.tags).sort()]);
      await state.update<HourRecord>(ctx, recordKey(hour), addTo(cell, record), { ttlMs, phase: 'settle' });
    },
    async report(query = {}) {
      const parsed = parseOptions(querySchema, query, 'report');
      const until = parsed.until === undefined ? clock.now() : Number(parsed.until);
      const oldest = Math.floor((until - retentionMs) / hourMs) * hourMs;
      const from = parsed.since === undefined ? oldest : Math.floor(Number(parsed.since) / hourMs) * hourMs;
      // Exclusive, rounded up to the hour; by default everything recorded so far.
      const to = Math.ceil((parsed.until === undefined ? until + 1 : until) / hourMs) * hourMs;
      const hours: number[] = [];
      for (let hour = Math.max(from, oldest); hour < to; hour += hourMs) hours.push(hour);
      const records = await Promise.all(hours.map((hour) => state.get<HourRecord>(recordKey(hour))));
      const by = parsed.by ?? 'model';
      const groups = new Map<string, ReportRow>();
      const total = { key: 'total', ...emptyRow() };
      let first = Infinity;
      records.forEach((hourRecord, index) => {
        const hour = hours[index] as number;
        for (const cell of Object.values(hourRecord?.cells ?? {})) {
          first = Math.min(first, hour);
          const key = groupKey(cell, hour, by);
          let row = groups.get(key);
          if (!row) groups.set(key, (row = { key, ...emptyRow() }));
          merge(row, cell.row);
          merge(total, cell.row);
        }
      });
      const since = parsed.since !== undefined ? Number(parsed.since) : first === Infinity ? until : first;
      const rows = [...groups.values()].sort((a, b) => b.usd - a.usd || a.key.localeCompare(b.key));
      return { since, until, rows, usd: total.usd, requests: total.requests, savedUsd: total.savedUsd };
    },
  };
}

/** A pure update adding `record` to the hour's cell `cell`. */
function addTo(cell: string, record: CostRecord) {
  return (current: HourRecord | undefined): HourRecord => {
    const existing = current?.cells[cell];
    const row = existing ? { ...existing.row } : emptyRow();
    add(row, record);
    const next: Cell = { model: record.model, tags: existing?.tags ?? { ...record.tags }, row };
    return { cells: { ...current?.cells, [cell]: next } };
  };
}

function groupKey(cell: Cell, hour: number, by: ReportGrouping): string {
  if (typeof by === 'object') return cell.tags[by.tag] ?? '(none)';
  if (by === 'model') return cell.model;
  if (by === 'total') return 'total';
  return periodBucket(by, hour).id;
}

const emptyRow = (): Omit<ReportRow, 'key'> => ({
  usd: 0, requests: 0, estimatedRequests: 0, uncachedInputTokens: 0, cachedInputTokens: 0, outputTokens: 0,
  savedRequests: 0, savedUsd: 0,
});

// A record may come from any caller of `record()`: an unusable amount counts as 0, never NaN.
function add(row: Omit<ReportRow, 'key'>, record: CostRecord): void {
  row.usd += usdAmount(record.usd) ?? 0;
  row.requests += 1;
  if (record.estimated) row.estimatedRequests += 1;
  row.uncachedInputTokens += tokenCount(record.buckets?.uncachedInput?.tokens) ?? 0;
  row.cachedInputTokens += tokenCount(record.buckets?.cachedInput?.tokens) ?? 0;
  row.outputTokens += tokenCount(record.buckets?.output?.tokens) ?? 0;
  if (record.answeredBy !== undefined) row.savedRequests += 1;
  row.savedUsd += usdAmount(record.savedUsd) ?? 0;
}

function merge(into: Omit<ReportRow, 'key'>, from: Omit<ReportRow, 'key'>): void {
  into.usd += from.usd;
  into.requests += from.requests;
  into.estimatedRequests += from.estimatedRequests;
  into.uncachedInputTokens += from.uncachedInputTokens;
  into.cachedInputTokens += from.cachedInputTokens;
  into.outputTokens += from.outputTokens;
  // Rows stored before savings were recorded have neither field.
  into.savedRequests += from.savedRequests ?? 0;
  into.savedUsd += from.savedUsd ?? 0;
}
