import { type Clock, type CompletionContext, type Store, type StoreErrorPolicy, systemClock } from '@sluice/core';
import { keyedState, parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';
import { periodBucket } from './budget-period.js';
import type { CostEvent } from './events.js';
import { type Cell, type CellIndex, type Row, addTo, admitCell, cellKeyCache, chosenCell, emptyRow, isCell, merge, overflowKey } from './ledger-cells.js';

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
export interface ReportRow extends Row {
  /** The model, the tag's value (`(none)` for calls without the tag), the period id, or `total`. */
  key: string;
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
  /**
   * Which of a call's tags the ledger keeps and reports by (default: all
   * of them). List the tags you report by and leave out those with a value
   * per call (a request id): each distinct tag set is a cell of its own.
   */
  tags?: string[];
  /**
   * The most distinct cells (model and tag set) an hour keeps (default
   * 1 000). A call with one more tag set is summed into its model's
   * `(other)` cell, tags dropped, so totals stay exact and storage bounded.
   */
  maxCellsPerHour?: number;
}

const optionsSchema = z.strictObject({
  store: z.optional(z.custom<Store>((value) => typeof (value as Store | undefined)?.update === 'function', 'must be a Store')),
  onStoreError: z.optional(z.enum(['open', 'memory'])),
  clock: z.optional(z.custom<Clock>((value) => typeof (value as Clock | undefined)?.now === 'function', 'must be a Clock')),
  retentionMs: z.optional(z.number().check(z.positive())),
  name: z.optional(z.string().check(z.minLength(1))),
  tags: z.optional(z.array(z.string().check(z.minLength(1)))),
  maxCellsPerHour: z.optional(z.number().check(z.int(), z.positive(), z.maximum(100_000))),
});

const querySchema = z.strictObject({
  since: z.optional(z.union([z.number(), z.date()])),
  until: z.optional(z.union([z.number(), z.date()])),
  by: z.optional(z.union([z.enum(['model', 'hour', 'day', 'month', 'total']), z.strictObject({ tag: z.string().check(z.minLength(1)) })])),
});

/** One hour's spend as the earlier versions stored it: every cell in one record. Plain JSON. */
interface HourRecord {
  cells: Record<string, Cell>;
}

/** What this process knows of one hour's index: where each cell it met is recorded, and whether the index is full. */
interface HourCells {
  into: Map<string, string>;
  full: boolean;
}

/** Hours whose index this process remembers, per store: the current one, and late settlements into the last ones. */
const hoursKept = 4;

/**
 * The spend ledger's `record` that answers at once where its store is
 * in-process: `undefined` when done, else a promise. trackCost uses it,
 * so a call's settlement waits on no promise for the ledger; internal.
 */
export const kRecordNow = Symbol('sluice.ledger.record-now');

const hourMs = 3_600_000;

/**
 * A {@link Ledger} over the pipeline's store (through `keyedState`, under
 * `sluice:cost:<name>:<hour>:`): spend summed per hour, model and tag set
 * (a *cell*), one record per cell, so recording a call updates one small
 * record however many cells there are, and storage follows hours × cells,
 * not calls. Each hour keeps at most `maxCellsPerHour` cells (a call with
 * one more tag set goes into its model's `(other)` cell), and every record
 * expires `retentionMs` after its hour ends. With a shared store
 * (`@sluice/redis`), every instance records into, and reports from, the
 * same ledger. Reports have an hour's resolution: `since` is rounded down
 * to the hour and `until` up.
 *
 * @param options - store and its failure policy, clock, retention, name, the tags kept and the cells per hour
 * @throws ValidationError naming a bad option
 * @example
 * ```ts
 * const ledger = spendLedger({ retentionMs: 31 * 86_400_000, tags: ['tenant', 'feature'] });
 * const llm = createPipeline({ transport }).use(trackCost({ ledger }));
 * const today = await ledger.report({ since: Date.now() - 86_400_000, by: { tag: 'tenant' } });
 * ```
 */
export function spendLedger(options: SpendLedgerOptions = {}): Ledger {
  const config = parseOptions(optionsSchema, options, 'spendLedger');
  const clock = config.clock ?? systemClock;
  const retentionMs = config.retentionMs ?? 93 * 24 * hourMs;
  const name = config.name ?? 'ledger';
  const kept = config.tags ? new Set(config.tags) : undefined;
  const maxCells = config.maxCellsPerHour ?? 1_000;
  const cellKeys = cellKeyCache();
  const state = keyedState({
    name: 'cost',
    defaultKey: 'global',
    field: 'spendLedger.key',
    store: config.store,
    onStoreError: config.onStoreError ?? 'memory',
  });
  // The hour's id, remembered for the hour most calls fall in (toISOString costs a microsecond).
  let lastHour = Number.NaN;
  let lastHourId = '';
  const hourId = (hour: number) => {
    if (hour === lastHour) return lastHourId;
    const id = `${name}:${new Date(hour).toISOString().slice(0, 13)}`;
    if (hour >= lastHour || Number.isNaN(lastHour)) {
      lastHour = hour;
      lastHourId = id;
    }
    return id;
  };
  const known = new WeakMap<Store, Map<string, HourCells>>();
  // The store and hour of the last call, whose cells most calls go into.
  let lastStore: Store | undefined;
  let lastHourCells: [string, HourCells] | undefined;

  /** This process's knowledge of the hour's index in `store`, forgetting the oldest hours past a few. */
  function hourCells(store: Store, hour: string): HourCells {
    if (store === lastStore && hour === lastHourCells?.[0]) return lastHourCells[1];
    let hours = known.get(store);
    if (!hours) known.set(store, (hours = new Map()));
    let cells = hours.get(hour);
    if (!cells) {
      hours.set(hour, (cells = { into: new Map(), full: false }));
      if (hours.size > hoursKept) hours.delete(hours.keys().next().value as string);
    }
    lastStore = store;
    lastHourCells = [hour, cells];
    return cells;
  }

  /** The cell a call goes into: from memory, or by listing it in the hour's index the first time this process meets it. */
  function cellFor(ctx: CompletionContext | undefined, hour: string, key: string, model: string, ttlMs: number): string | undefined | Promise<string | undefined> {
    const cells = hourCells(state.storeFor(ctx), hour);
    const known = cells.into.get(key);
    if (known !== undefined) return known;
    const overflow = overflowKey(model);
    const into = cells.full ? cells.into.get(overflow) : undefined;
    if (into !== undefined) return into;
    return listCell(ctx, cells, hour, key, overflow, ttlMs);
  }

  async function listCell(ctx: CompletionContext | undefined, cells: HourCells, hour: string, key: string, overflow: string, ttlMs: number): Promise<string | undefined> {
    const index = await state.update<CellIndex>(ctx, `${hour}:cells`, admitCell(key, overflow, maxCells), { ttlMs, phase: 'settle' });
    if (!index) return undefined;
    const chosen = chosenCell(index, key, overflow);
    // Remembered: every ordinary cell (at most maxCells), and where each model overflows, never each tag set that did.
    if (chosen === key) cells.into.set(key, key);
    else cells.into.set(overflow, chosen);
    if (index.cells.length >= maxCells) cells.full = true;
    return chosen;
  }

  // The record key of the last cell written: most calls add to the same one.
  let lastCell: [hour: string, cell: string, key: string] | undefined;
  const cellRecord = (hour: string, cell: string): string => {
    if (lastCell?.[0] !== hour || lastCell[1] !== cell) lastCell = [hour, cell, `${hour}:${cell}`];
    return lastCell[2];
  };

  /** Adds the record to its cell; a promise only when the store answers later than at once. */
  const addToCell = (
    ctx: CompletionContext | undefined,
    hour: string,
    into: string | undefined,
    record: CostRecord,
    tags: Readonly<Record<string, string>>,
    ttlMs: number,
    now?: number,
  ) => {
    if (into === undefined) return undefined;
    // In place on the memory store: a cell is only ever changed by this reducer, and read by copying its row.
    const written = state.updateNow<Cell>(ctx, cellRecord(hour, into), addTo(into, record, tags), { ttlMs, phase: 'settle', now, inPlace: true });
    return written instanceof Promise ? written.then((cell) => relisted(ctx, hour, into, cell, ttlMs)) : relisted(ctx, hour, into, written, ttlMs);
  };

  /**
   * After the first record of a cell, lists the cell in the hour's index
   * again (a no-op when it is there). This process lists a cell once and
   * remembers it did; had the store lost the index since (a Redis restarted
   * without persistence), every later record would be written to a cell no
   * report reads: the spend recorded but never reported. One store call per
   * cell per hour.
   */
  const relisted = (ctx: CompletionContext | undefined, hour: string, into: string, cell: Cell | undefined, ttlMs: number): Promise<void> | undefined => {
    if (cell?.row.requests !== 1) return undefined;
    return state.update<CellIndex>(ctx, `${hour}:cells`, admitCell(into, into, maxCells), { ttlMs, phase: 'settle' }).then(nothing);
  };

  /** Records a settled call: at once where the store answers in-process, else a promise of it. */
  const recordNow = (record: CostRecord, ctx?: CompletionContext): Promise<void> | undefined => {
    const now = ctx?.clock.now() ?? clock.now();
    // An unusable time files the record under now rather than under NaN, where no report finds it.
    const at = Number.isFinite(record.at) ? record.at : now;
    const hour = Math.floor(at / hourMs) * hourMs;
    const ttlMs = hour + hourMs + retentionMs - now;
    if (ttlMs <= 0) return undefined;
    const tags = keptTags(record.tags, kept);
    const id = hourId(hour);
    const into = cellFor(ctx, id, cellKeys.of(record.model, tags), record.model, ttlMs);
    // After a wait, the store reads the clock itself.
    if (into instanceof Promise) return into.then((cell) => addToCell(ctx, id, cell, record, tags, ttlMs));
    return addToCell(ctx, id, into, record, tags, ttlMs, now);
  };

  const ledger: Ledger & { [kRecordNow]: typeof recordNow } = {
    [kRecordNow]: recordNow,
    record(record, ctx) {
      try {
        return recordNow(record, ctx) ?? Promise.resolve();
      } catch (error) {
        return Promise.reject(error);
      }
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
      const cellsByHour = await Promise.all(hours.map((hour) => readHour(hourId(hour))));
      const by = parsed.by ?? 'model';
      const groups = new Map<string, ReportRow>();
      const total = { key: 'total', ...emptyRow() };
      let first = Infinity;
      cellsByHour.forEach((cells, index) => {
        const hour = hours[index] as number;
        for (const cell of cells) {
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
  return ledger;

  /** An hour's cells: those its index lists, and those of a record the earlier versions wrote. */
  async function readHour(hour: string): Promise<Cell[]> {
    const [index, legacy] = await Promise.all([state.get<CellIndex>(`${hour}:cells`), state.get<HourRecord>(hour)]);
    const listed = Array.isArray(index?.cells) ? index.cells : [];
    const cells = await Promise.all(listed.map((key) => state.get<Cell>(`${hour}:${key}`)));
    // A cell this version cannot read (a bad write, a hand edit) is left out, not reported as garbage or thrown on.
    const legacyCells: unknown[] = typeof legacy?.cells === 'object' && legacy.cells !== null ? Object.values(legacy.cells) : [];
    return [...cells, ...legacyCells].filter(isCell);
  }
}

/** The tags the ledger keeps of a call's: all of them, or those listed. */
function nothing(): void {}

function keptTags(tags: Readonly<Record<string, string>>, kept: Set<string> | undefined): Readonly<Record<string, string>> {
  if (!kept) return tags;
  const chosen: Record<string, string> = {};
  for (const [tag, value] of Object.entries(tags)) if (kept.has(tag)) chosen[tag] = value;
  return chosen;
}

function groupKey(cell: Cell, hour: number, by: ReportGrouping): string {
  if (typeof by === 'object') return cell.other ? '(other)' : (cell.tags[by.tag] ?? '(none)');
  if (by === 'model') return cell.model;
  if (by === 'total') return 'total';
  return periodBucket(by, hour).id;
}
