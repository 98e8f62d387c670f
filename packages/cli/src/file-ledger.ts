import { appendFileSync, closeSync, openSync } from 'node:fs';
import type { CostRecord, Ledger, LedgerReport, ReportGrouping, ReportQuery, ReportRow } from '@sluice/cost';
import { readLines } from './read-lines.js';

/**
 * A {@link Ledger} that appends every call's cost to a JSONL file (one
 * `CostRecord` a line), so spend outlives the process and adds up across
 * runs: `sluice cost --ledger <file>` reports it. Reports read the file.
 *
 * @param path - the file; created (empty) at once if it does not exist
 * @throws the file system's error when the file cannot be opened for
 *   appending (a missing directory, no permission): before any call is
 *   made, rather than as a record lost with each call
 * @example
 * ```ts
 * const llm = createPipeline({ transport }).use(trackCost({ ledger: fileLedger('spend.jsonl') }));
 * ```
 */
export function fileLedger(path: string): Ledger {
  closeSync(openSync(path, 'a'));
  return {
    async record(record) {
      // Synchronous, so a record is on disk before the call it belongs to is reported done.
      appendFileSync(path, `${JSON.stringify(record)}\n`);
    },
    report(query) {
      return reportLedgerFile(path, query);
    },
  };
}

/**
 * Summarises a ledger file: its records summed by model, tag or UTC period,
 * as a ledger's `report()` does, in one streaming pass (memory follows the
 * groups, not the records). Lines that are not cost records are listed in
 * `skipped`, not fatal.
 *
 * @param path - the JSONL ledger file
 * @param query - span (`since` inclusive, `until` exclusive) and grouping (default: every record, by model)
 */
export async function reportLedgerFile(path: string, query: ReportQuery = {}): Promise<LedgerReport & { skipped: number[] }> {
  const from = query.since === undefined ? -Infinity : Number(query.since);
  const to = query.until === undefined ? Infinity : Number(query.until);
  const by = query.by ?? 'model';
  const groups = new Map<string, ReportRow>();
  const skipped: number[] = [];
  let first = Infinity;
  let last = -Infinity;
  let usd = 0;
  let requests = 0;
  for await (const { line, text } of readLines(path)) {
    let record: unknown;
    try {
      record = JSON.parse(text);
    } catch {
      record = undefined;
    }
    if (!isCostRecord(record)) {
      skipped.push(line);
      continue;
    }
    if (record.at < from || record.at >= to) continue;
    first = Math.min(first, record.at);
    last = Math.max(last, record.at);
    const key = groupKey(record, by);
    let row = groups.get(key);
    if (!row) {
      row = { key, usd: 0, requests: 0, estimatedRequests: 0, uncachedInputTokens: 0, cachedInputTokens: 0, outputTokens: 0, savedRequests: 0, savedUsd: 0 };
      groups.set(key, row);
    }
    row.usd += record.usd;
    row.requests += 1;
    if (record.estimated) row.estimatedRequests += 1;
    row.uncachedInputTokens += record.buckets.uncachedInput.tokens;
    row.cachedInputTokens += record.buckets.cachedInput.tokens;
    row.outputTokens += record.buckets.output.tokens;
    if (record.answeredBy !== undefined) row.savedRequests += 1;
    row.savedUsd += record.savedUsd ?? 0;
    usd += record.usd;
    requests += 1;
  }
  const rows = [...groups.values()].sort((a, b) => b.usd - a.usd || a.key.localeCompare(b.key));
  const since = Number.isFinite(from) ? from : Number.isFinite(first) ? first : 0;
  const until = Number.isFinite(to) ? to : Number.isFinite(last) ? last + 1 : since;
  const savedUsd = rows.reduce((sum, row) => sum + row.savedUsd, 0);
  return { since, until, rows, usd, requests, savedUsd, skipped };
}

/** The group of a record: its model, a tag's value, a UTC period's id (`2026-11-25T10`, `2026-11-25`, `2026-11`) or `total`. */
function groupKey(record: CostRecord, by: ReportGrouping): string {
  if (typeof by === 'object') return record.tags[by.tag] ?? '(none)';
  if (by === 'model' || by === 'total') return by === 'model' ? record.model : 'total';
  const iso = new Date(record.at).toISOString();
  return by === 'hour' ? iso.slice(0, 13) : by === 'day' ? iso.slice(0, 10) : iso.slice(0, 7);
}

function isCostRecord(value: unknown): value is CostRecord {
  const record = value as Partial<CostRecord> | null;
  return (
    typeof record === 'object' &&
    record !== null &&
    typeof record.model === 'string' &&
    Number.isFinite(record.usd) &&
    Number.isFinite(record.at) &&
    typeof record.buckets?.uncachedInput?.tokens === 'number' &&
    typeof record.buckets.cachedInput?.tokens === 'number' &&
    typeof record.buckets.output?.tokens === 'number' &&
    typeof record.tags === 'object' &&
    record.tags !== null
  );
}
