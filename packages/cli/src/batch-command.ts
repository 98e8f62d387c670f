import { checkBatchFiles } from './batch-files.js';
import { countLines } from './read-lines.js';
import { formatSummary } from './batch-summary.js';
import { BatchStats } from './batch-stats.js';
import type { Pipeline } from '@sluice/core';
import { buildPipeline } from './build-pipeline.js';
import { buildRoutedPipeline } from './routed-pipeline.js';
import { sharedStore } from './shared-store.js';
import { type BatchConfig, mergeConfig, parseBatchConfig } from './options.js';
import { startProgress } from './progress.js';
import { readConfigFile } from './read-config.js';
import { reportProblems } from './report-problems.js';
import { runBatch } from './run-batch.js';

/** A stream a command writes to; a terminal (`isTTY`) gets a live progress bar. */
export type Output = NodeJS.WritableStream & { isTTY?: boolean };

/** Where a command writes, what it reads, and what stops it. */
export interface CommandIo {
  stdout: Output;
  stderr: Output;
  env: NodeJS.ProcessEnv;
  /** Aborted on Ctrl-C. */
  signal?: AbortSignal;
}

/** Exit codes: 0 every line answered (failures are in the output), 3 stopped by the budget, 130 interrupted. */
export const exitCodes = { complete: 0, budget: 3, interrupted: 130 } as const;

/**
 * `sluice batch <input> -o <output>`: reads the config file, lays the
 * flags over it, and runs the file through the pipeline with progress and
 * a summary.
 *
 * @param input - the input file or `-`
 * @param output - the output file
 * @param flags - the flags, as config keys
 * @param configPath - the config file, if any
 * @param io - streams, environment, stop signal
 * @returns the exit code
 * @throws ValidationError naming a bad option
 */
export async function batchCommand(input: string, output: string, flags: BatchConfig, configPath: string | undefined, io: CommandIo): Promise<number> {
  let file: BatchConfig = {};
  if (configPath !== undefined) file = parseBatchConfig(readConfigFile(configPath), 'config');
  const config = parseBatchConfig(mergeConfig(file, flags), 'batch');
  // Before anything is opened: an output that is the input would be resumed from and appended to.
  checkBatchFiles({ input, output, ledger: config.ledger });
  // Counted first: a missing input file fails before anything is opened.
  const total = input === '-' ? undefined : await countLines(input);
  const { deployments } = config;
  // Budgets, limits and circuits shared with other runs on the same Redis, when the config names one.
  const shared = await sharedStore(config.store, io.env);
  const connections = Math.max(config.concurrency ?? 10, 10);
  let pipeline: Pipeline;
  try {
    pipeline =
      deployments === undefined
        ? buildPipeline(config, io.env, shared.pipeline)
        : buildRoutedPipeline({ ...config, deployments }, io.env, { costTracking: 'always', keepRawJson: false, connections, shared: shared.pipeline }).pipeline;
  } catch (error) {
    await shared.close();
    throw error;
  }
  const stats = new BatchStats();
  // A ledger that cannot be written or a store that fails would otherwise go unseen.
  const problems = reportProblems(pipeline.events, io.stderr, 'sluice batch');
  const progress = startProgress({ stream: io.stderr, total, stats, intervalMs: config.progressIntervalMs ?? 10_000 });
  const started = performance.now();
  const onStop = () => io.stderr.write('\nstopping: cancelling requests in flight; everything answered so far is kept (Ctrl-C again to quit at once)\n');
  io.signal?.addEventListener('abort', onStop, { once: true });
  try {
    const result = await runBatch({
      input,
      output,
      pipeline,
      concurrency: config.concurrency ?? 10,
      ...(config.timeoutMs === undefined ? {} : { timeoutMs: config.timeoutMs }),
      ...(io.signal ? { signal: io.signal } : {}),
      stats,
      onMalformed: (line, reason) => io.stderr.write(`${input}:${line}: skipped: ${reason}\n`),
      onResult: () => progress.tick(),
    });
    progress.stop();
    if (result.repairedBytes > 0) io.stderr.write(`${output}: removed a cut last line (${result.repairedBytes} bytes) before resuming\n`);
    io.stdout.write(`${formatSummary(stats, performance.now() - started)}\n`);
    if (result.ending === 'interrupted') io.stderr.write(`interrupted: run the same command again to resume from ${output}\n`);
    if (result.ending === 'budget') io.stderr.write(`stopped: the budget is spent; run the same command again to resume from ${output}\n`);
    return exitCodes[result.ending];
  } finally {
    problems.finish();
    progress.stop();
    io.signal?.removeEventListener('abort', onStop);
    await pipeline.close({ graceMs: 1_000 }).catch(() => {});
    await shared.close();
  }
}
