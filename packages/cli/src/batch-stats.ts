import type { Usage } from '@sluice/core';
import { LatencyHistogram } from './latency-histogram.js';

/** One model's figures in a batch run. */
export interface ModelStats {
  model: string;
  requests: number;
  succeeded: number;
  /** Failed requests by sluice error code (`SERVER_ERROR`, `RATE_LIMITED`, …). */
  failures: Record<string, number>;
  promptTokens: number;
  completionTokens: number;
  usd: number;
  latency: LatencyHistogram;
}

/** Running totals of a batch, per model and overall, in constant memory. */
export class BatchStats {
  readonly models = new Map<string, ModelStats>();
  /** Input lines that could not be read as requests (reported and skipped). */
  malformed = 0;
  /** Lines skipped because the output file already held their `custom_id`. */
  resumed = 0;
  done = 0;
  failed = 0;
  tokens = 0;
  usd = 0;

  private of(model: string): ModelStats {
    let stats = this.models.get(model);
    if (!stats) {
      stats = { model, requests: 0, succeeded: 0, failures: {}, promptTokens: 0, completionTokens: 0, usd: 0, latency: new LatencyHistogram() };
      this.models.set(model, stats);
    }
    return stats;
  }

  /** Records a request that got its answer. */
  success(model: string, latencyMs: number, usage: Usage | undefined): void {
    const stats = this.of(model);
    stats.requests++;
    stats.succeeded++;
    stats.latency.add(latencyMs);
    this.done++;
    if (usage) {
      stats.promptTokens += usage.prompt_tokens;
      stats.completionTokens += usage.completion_tokens;
      this.tokens += usage.prompt_tokens + usage.completion_tokens;
    }
  }

  /** Records a request that failed, by its error code. */
  failure(model: string, latencyMs: number, code: string): void {
    const stats = this.of(model);
    stats.requests++;
    stats.failures[code] = (stats.failures[code] ?? 0) + 1;
    stats.latency.add(latencyMs);
    this.done++;
    this.failed++;
  }

  /** Adds what a call cost (from `trackCost`'s `cost` event). */
  spend(model: string, usd: number): void {
    if (!Number.isFinite(usd)) return;
    this.of(model).usd += usd;
    this.usd += usd;
  }
}
