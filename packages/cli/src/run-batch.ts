import { closeSync, openSync, writeSync } from 'node:fs';
import { type CallOptions, type CompletionContext, type SluiceEmitter, type ChatCompletionRequest, sleep } from '@sluice/core';
import { toSluiceError } from '@sluice/core/kit';
import type { CostEvent } from '@sluice/cost';
import { RetryError } from '@sluice/retry';
import { failureLine, parseBatchLine, shown, successLine } from './batch-line.js';
import { BatchStats } from './batch-stats.js';
import { finishedIds } from './finished-ids.js';
import { readLines } from './read-lines.js';

/** What a batch sends its requests through: a sluice pipeline. */
export interface BatchPipeline {
  run(request: ChatCompletionRequest, options?: CallOptions): Promise<CompletionContext>;
  readonly events: SluiceEmitter;
}

/** Options of {@link runBatch}. */
export interface RunBatchOptions {
  /** The input JSONL file, or `-` for stdin. */
  input: string;
  /** The output JSONL file: appended to, and what a re-run resumes from. */
  output: string;
  pipeline: BatchPipeline;
  /** Requests in flight at once. */
  concurrency: number;
  /** One deadline per request, retries included. */
  timeoutMs?: number;
  /** Stops the batch: nothing new is sent, requests in flight are cancelled and left for the next run. */
  signal?: AbortSignal;
  /** Told about each input line that is not a request (it is skipped). */
  onMalformed?: (line: number, reason: string) => void;
  /** Called after each request is written (to redraw progress). */
  onResult?: () => void;
  /** Filled in as the batch runs (a new one by default). */
  stats?: BatchStats;
}

/** How a batch ended. */
export interface RunBatchResult {
  /** `complete`: every line was answered; `interrupted`: the signal stopped it; `budget`: the budget did. */
  ending: 'complete' | 'interrupted' | 'budget';
  stats: BatchStats;
  /** Bytes of a cut last output line removed before resuming. */
  repairedBytes: number;
}

/**
 * Runs an OpenAI Batch API input file through a pipeline and appends each
 * answer, in the Batch API's output shape, to the output file as soon as
 * it settles. The input is streamed, so memory follows the requests in
 * flight (plus the `custom_id`s seen, for resuming and duplicates), not
 * the file.
 *
 * A line whose `custom_id` the output already holds is skipped, so a
 * re-run resumes. A request cancelled by `signal` is not written, so the
 * next run sends it again: no line is lost or repeated. A circuit that is
 * open holds its request until the circuit half-opens (a downed upstream
 * pauses the batch rather than failing the rest of the file), and so does a
 * routed pipeline with every deployment cooling or open; a spent
 * budget stops the batch as `signal` would.
 *
 * @param options - input, output, pipeline, concurrency, signal
 * @throws when the input or output file cannot be opened
 */
export async function runBatch(options: RunBatchOptions): Promise<RunBatchResult> {
  const stats = options.stats ?? new BatchStats();
  const { ids: finished, droppedBytes } = await finishedIds(options.output);
  // false: finished by an earlier run; true: sent by this one (a second line with it is a duplicate).
  const known = new Map<string, boolean>();
  for (const id of finished) known.set(id, false);
  finished.clear();

  const stop = new AbortController();
  let ending: RunBatchResult['ending'] = 'complete';
  const onAbort = () => {
    if (ending === 'complete') ending = 'interrupted';
    stop.abort(options.signal?.reason);
  };
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });

  const modelOf = new Map<string, string>();
  const onCost = (event: CostEvent) => {
    const id = event.tags.custom_id;
    stats.spend((id === undefined ? undefined : modelOf.get(id)) ?? event.model, event.usd);
  };
  options.pipeline.events.on('cost', onCost);

  const fd = openSync(options.output, 'a');
  // Synchronous appends: a line is on disk once it is counted, whatever stops the process next.
  const write = (line: string) => writeSync(fd, `${line}\n`);

  const send = async (customId: string, body: ChatCompletionRequest) => {
    const started = performance.now();
    modelOf.set(customId, body.model);
    try {
      for (;;) {
        try {
          const ctx = await options.pipeline.run(body, { signal: stop.signal, timeoutMs: options.timeoutMs, tags: { custom_id: customId } });
          write(successLine(customId, ctx.response as NonNullable<typeof ctx.response>, ctx.responseHeaders));
          stats.success(body.model, performance.now() - started, ctx.usage);
          break;
        } catch (caught) {
          // Cancelled by the stop, whatever error that surfaced as: left for the next run.
          if (stop.signal.aborted) return;
          const error = toSluiceError(caught);
          // An open circuit, or every deployment of a routed batch cooling or open: wait until one may take it.
          if (error.code === 'CIRCUIT_OPEN' || (error.code === 'NO_DEPLOYMENT' && error.retryable)) {
            await sleep(Math.max(error.retryAfterMs ?? 1_000, 50), { signal: stop.signal }).catch(() => {});
            if (stop.signal.aborted) return;
            continue;
          }
          if (error.code === 'BUDGET_EXCEEDED') {
            ending = 'budget';
            stop.abort(error);
            return;
          }
          // Out of attempts: report what the upstream last said (its status, its code), and how often it was asked.
          const reported = error instanceof RetryError ? error.lastError : error;
          write(failureLine(customId, reported, error instanceof RetryError ? error.message : undefined));
          stats.failure(body.model, performance.now() - started, reported.code);
          break;
        }
      }
      options.onResult?.();
    } finally {
      modelOf.delete(customId);
    }
  };

  const inFlight = new Set<Promise<void>>();
  try {
    for await (const { line, text } of readLines(options.input)) {
      if (stop.signal.aborted) break;
      const parsed = parseBatchLine(text);
      if (!parsed.ok) {
        stats.malformed++;
        options.onMalformed?.(line, parsed.reason);
        continue;
      }
      const { customId, body } = parsed.request;
      const seen = known.get(customId);
      if (seen === false) {
        stats.resumed++;
        known.set(customId, true);
        continue;
      }
      if (seen === true) {
        stats.malformed++;
        options.onMalformed?.(line, `custom_id ${shown(customId)} repeats an earlier line`);
        continue;
      }
      known.set(customId, true);
      while (inFlight.size >= options.concurrency) await Promise.race(inFlight);
      if (stop.signal.aborted) break;
      const task: Promise<void> = send(customId, body).finally(() => inFlight.delete(task));
      inFlight.add(task);
    }
    await Promise.all(inFlight);
  } finally {
    // A read error still waits for what is in flight, so what was answered is written.
    await Promise.allSettled(inFlight);
    closeSync(fd);
    options.pipeline.events.off('cost', onCost);
    options.signal?.removeEventListener('abort', onAbort);
  }
  return { ending, stats, repairedBytes: droppedBytes };
}
