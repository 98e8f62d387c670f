import { appendFileSync } from 'node:fs';
import { systemClock } from '@sluice/core';
import { type CostRecord, type Ledger, type LedgerReport, memoryLedger, type ReportQuery } from '@sluice/cost';
import { readLines } from './read-lines.js';

/**
 * A {@link Ledger} that appends every call's cost to a JSONL file (one
 * `CostRecord` a line), so spend outlives the process and adds up across
 * runs: `sluice cost --ledger <file>` reports it. Reports read the file.
 *
 * @param path - the file; created on the first record
 * @example
 * ```ts
 * const llm = createPipeline({ transport }).use(trackCost({ ledger: fileLedger('spend.jsonl') }));
 * ```
 */
export function fileLedger(path: string): Ledger {
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
 * Summarises a ledger file: its records summed by model, tag or period,
 * as `memoryLedger().report()` does. Lines that are not cost records are
 * counted in `skipped`, not fatal.
 *
 * @param path - the JSONL ledger file
 * @param query - span and grouping (default: every record, by model)
 * @throws ValidationError for a bad query
 */
export async function reportLedgerFile(path: string, query: ReportQuery = {}): Promise<LedgerReport & { skipped: number[] }> {
  let newest = 0;
  const ledger = memoryLedger({ retentionMs: Number.MAX_SAFE_INTEGER, clock: { ...systemClock, now: () => newest } });
  const skipped: number[] = [];
  for await (const { line, text } of readLines(path)) {
    let record: CostRecord;
    try {
      record = JSON.parse(text) as CostRecord;
    } catch {
      skipped.push(line);
      continue;
    }
    if (!isCostRecord(record)) {
      skipped.push(line);
      continue;
    }
    newest = Math.max(newest, record.at);
    await ledger.record(record);
  }
  // "Until now" means until the newest record, wherever the file came from.
  const report = await ledger.report({ until: newest + 1, ...query });
  return { ...report, skipped };
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
