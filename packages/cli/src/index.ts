/**
 * @module @sluice/cli
 *
 * The `sluice` command line, and what it is made of for programs that
 * want the same: `runBatch` (an OpenAI Batch API file through any sluice
 * pipeline, streamed, resumable), `fileLedger` (spend appended to a JSONL
 * file), `serveConfigSchema` (what `sluice serve` takes), and `main` (the
 * command line itself).
 */
export { main } from './main.js';
export type { CommandIo } from './batch-command.js';
export { runBatch, type RunBatchOptions, type RunBatchResult, type BatchPipeline } from './run-batch.js';
export { BatchStats, type ModelStats } from './batch-stats.js';
export { fileLedger, reportLedgerFile } from './file-ledger.js';
export { parseBatchLine, type BatchRequest, type ParsedLine } from './batch-line.js';
export { batchConfigSchema, type BatchConfig } from './options.js';
export { serveConfigSchema, type ServeConfig } from './serve-options.js';
