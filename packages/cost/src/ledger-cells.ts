import type { CostEvent } from './events.js';
import { tokenCount, usdAmount } from './usage-tokens.js';

/*
 * The ledger's stored state, plain JSON, and the pure updates applied to
 * it with `store.update` (a distributed store may run one twice).
 *
 * One record per cell (an hour, a model and a tag set) holds that cell's
 * sums, so recording a call copies one small row, however many cells the
 * hour has. One index per hour lists the hour's cells so that a report
 * can find them (a store has no scan); it is written only when a process
 * meets a cell it has not seen this hour, and it holds at most
 * `maxCells` cells plus a few overflow cells: a call whose tag set would
 * be one more is summed into its model's overflow cell (tags dropped,
 * reported as `(other)`), or, past those, into one catch-all cell, so
 * totals stay exact and storage stays bounded whatever the tags carry.
 */

/** A report row's figures, without its key (`ReportRow` adds it). */
export interface Row {
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

/** One cell's sums; internal. */
export interface Cell {
  model: string;
  tags: Readonly<Record<string, string>>;
  row: Row;
  /** An overflow cell: calls whose tag sets did not fit in the hour's index. */
  other?: true;
}

/** The cells of one hour, by cell key; internal. */
export interface CellIndex {
  v: 2;
  cells: string[];
}

/** Overflow cells an index takes past `maxCells`, one per model, before the catch-all. */
const overflowModels = 64;

/** The catch-all overflow cell's key and model. */
export const catchAllKey = JSON.stringify(['(other)']);

/**
 * A cell's key: its model and sorted tags, as JSON; internal.
 *
 * @param model - the call's model
 * @param tags - the tags the ledger keeps
 * @example
 * ```ts
 * cellKey('gpt-4.1', { tenant: 'acme' }); // '["gpt-4.1",[["tenant","acme"]]]'
 * ```
 */
export function cellKey(model: string, tags: Readonly<Record<string, string>>): string {
  return JSON.stringify([model, Object.entries(tags).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
}

/**
 * {@link cellKey}, remembered for calls without tags (one key per model)
 * and for the last tag set seen (the same frozen object for every call a
 * caller tags alike): a JSON key costs a microsecond, on every call
 * recorded; internal.
 *
 * @example
 * ```ts
 * const keys = cellKeyCache();
 * keys.of('gpt-4.1', {}); // '["gpt-4.1",[]]'
 * ```
 */
export function cellKeyCache(): { of(model: string, tags: Readonly<Record<string, string>>): string } {
  const untagged = new Map<string, string>();
  let lastModel: string | undefined;
  let lastTags: Readonly<Record<string, string>> | undefined;
  let lastKey = '';
  return {
    of(model, tags) {
      if (model === lastModel && tags === lastTags) return lastKey;
      let key: string | undefined;
      let empty = true;
      for (const _ in tags) {
        empty = false;
        break;
      }
      if (empty) {
        key = untagged.get(model);
        if (key === undefined) {
          key = cellKey(model, tags);
          // Model names come from callers: bounded.
          if (untagged.size >= 1_024) untagged.clear();
          untagged.set(model, key);
        }
      } else key = cellKey(model, tags);
      lastModel = model;
      lastTags = tags;
      lastKey = key;
      return key;
    },
  };
}

/**
 * A model's overflow cell key; internal.
 *
 * @param model - the call's model
 * @example
 * ```ts
 * overflowKey('gpt-4.1'); // '["(other)","gpt-4.1"]'
 * ```
 */
export function overflowKey(model: string): string {
  return JSON.stringify(['(other)', model]);
}

/**
 * Adds `key` to the hour's index if it fits, else the model's overflow
 * cell `overflow`, else the catch-all; the caller records into the first
 * of the three the result lists. Returns the index as it is when `key`
 * is already listed; internal.
 *
 * @param key - the call's cell key
 * @param overflow - its model's overflow cell key
 * @param maxCells - the most ordinary cells an hour keeps
 * @example
 * ```ts
 * const index = await store.update(indexKey, admitCell(key, overflowKey(model), 1_000), ttlMs);
 * const into = chosenCell(index, key, overflowKey(model));
 * ```
 */
export function admitCell(key: string, overflow: string, maxCells: number) {
  return (current: CellIndex | undefined): CellIndex => {
    const cells = Array.isArray(current?.cells) ? current.cells : [];
    const index: CellIndex = current?.v === 2 && cells === current.cells ? current : { v: 2, cells };
    if (cells.includes(key)) return index;
    if (cells.length < maxCells) return { v: 2, cells: [...cells, key] };
    if (cells.includes(overflow)) return index;
    if (cells.length < maxCells + overflowModels) return { v: 2, cells: [...cells, overflow] };
    return cells.includes(catchAllKey) ? index : { v: 2, cells: [...cells, catchAllKey] };
  };
}

/**
 * Which cell a call goes into, given the index {@link admitCell} returned; internal.
 *
 * @param index - the hour's index
 * @param key - the call's cell key
 * @param overflow - its model's overflow cell key
 * @example
 * ```ts
 * chosenCell({ v: 2, cells: [overflowKey('m')] }, cellKey('m', { id: '1' }), overflowKey('m')); // overflowKey('m')
 * ```
 */
export function chosenCell(index: CellIndex, key: string, overflow: string): string {
  if (index.cells.includes(key)) return key;
  return index.cells.includes(overflow) ? overflow : catchAllKey;
}

/**
 * An update adding `record` to the cell `key` (whose model and tags it
 * takes when it creates it): pure, but for a cell the memory store hands
 * it to change in place (one it wrote itself); internal.
 *
 * @param key - the cell key, as {@link chosenCell} gave it
 * @param record - the settled call
 * @param tags - the call's tags the ledger keeps
 * @example
 * ```ts
 * await store.update(`${hour}:${key}`, addTo(key, record, tags), ttlMs);
 * ```
 */
export function addTo(key: string, record: CostEvent, tags: Readonly<Record<string, string>>) {
  return (stored: Cell | undefined, inPlace?: true): Cell => {
    // A cell this reducer wrote itself (the memory store says so with
    // `inPlace`): its row is already clean, so it is added to where it is,
    // with no new row and cell a call.
    if (inPlace === true && stored !== undefined) {
      add(stored.row, record);
      return stored;
    }
    // A cell this version did not write (a bad write, a hand edit) is summed from 0 rather than misread.
    const current = isCell(stored) ? stored : undefined;
    const row = current ? copyRow(current.row) : emptyRow();
    add(row, record);
    if (current !== undefined) {
      // Written out: a spread with a field replaced copies, then writes again, on every call recorded.
      const cell: Cell = { model: current.model, tags: current.tags, row };
      if (current.other) cell.other = true;
      return cell;
    }
    if (key === catchAllKey) return { model: '(other)', tags: {}, row, other: true };
    if (key.startsWith('["(other)",')) return { model: record.model, tags: {}, row, other: true };
    return { model: record.model, tags, row };
  };
}

/**
 * A stored row's figures, each a finite number of at least 0 or else 0:
 * rows stored before savings were recorded have neither saving, and a row
 * this version did not write may hold anything. Before, a string added to
 * as text and a missing figure became NaN, in the stored sums and in every
 * report that read them.
 */
function copyRow(row: Row): Row {
  return {
    usd: usdAmount(row.usd) ?? 0, requests: tokenCount(row.requests) ?? 0, estimatedRequests: tokenCount(row.estimatedRequests) ?? 0,
    uncachedInputTokens: tokenCount(row.uncachedInputTokens) ?? 0, cachedInputTokens: tokenCount(row.cachedInputTokens) ?? 0,
    outputTokens: tokenCount(row.outputTokens) ?? 0, savedRequests: tokenCount(row.savedRequests) ?? 0, savedUsd: usdAmount(row.savedUsd) ?? 0,
  };
}

/** Whether a stored value is a cell whose model, tags and row can be read (its figures are checked as they are read); internal. */
export function isCell(value: unknown): value is Cell {
  if (typeof value !== 'object' || value === null) return false;
  const { model, tags, row } = value as Partial<Cell>;
  if (typeof model !== 'string' || typeof row !== 'object' || row === null || typeof tags !== 'object' || tags === null) return false;
  for (const tag in tags) if (typeof tags[tag] !== 'string') return false;
  return true;
}

/** A row of zeros; internal. */
export const emptyRow = (): Row => ({
  usd: 0, requests: 0, estimatedRequests: 0, uncachedInputTokens: 0, cachedInputTokens: 0, outputTokens: 0,
  savedRequests: 0, savedUsd: 0,
});

// A record may come from any caller of `record()`: an unusable amount counts as 0, never NaN.
function add(row: Row, record: CostEvent): void {
  row.usd += usdAmount(record.usd) ?? 0;
  row.requests += 1;
  if (record.estimated) row.estimatedRequests += 1;
  row.uncachedInputTokens += tokenCount(record.buckets?.uncachedInput?.tokens) ?? 0;
  row.cachedInputTokens += tokenCount(record.buckets?.cachedInput?.tokens) ?? 0;
  row.outputTokens += tokenCount(record.buckets?.output?.tokens) ?? 0;
  if (record.answeredBy !== undefined) row.savedRequests += 1;
  row.savedUsd += usdAmount(record.savedUsd) ?? 0;
}

/**
 * Adds a stored row's figures to `into`; internal.
 *
 * @param into - the row summed into
 * @param from - a stored row
 * @example
 * ```ts
 * merge(total, cell.row);
 * ```
 */
export function merge(into: Row, stored: Row): void {
  const from = copyRow(stored);
  into.usd += from.usd;
  into.requests += from.requests;
  into.estimatedRequests += from.estimatedRequests;
  into.uncachedInputTokens += from.uncachedInputTokens;
  into.cachedInputTokens += from.cachedInputTokens;
  into.outputTokens += from.outputTokens;
  into.savedRequests += from.savedRequests;
  into.savedUsd += from.savedUsd;
}
