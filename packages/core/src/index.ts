/**
 * @module @sluice/core
 *
 * The sluice contract: a Koa-style `(ctx, next)` pipeline for
 * OpenAI-compatible chat completions, its undici transport, the error
 * family, the typed events, the clock and the store that stateful
 * middleware share.
 */
export { compose } from './compose.js';
export { onAbort, abortReason } from './call.js';
export { createPipeline, Pipeline, type Transport, type PipelineOptions, type CallOptions } from './pipeline.js';
export type { BatchOptions, BatchResult } from './batch.js';
export type * from './context.js';
export { openAICompatible, type OpenAICompatibleOptions } from './open-ai-compatible.js';
export * from './errors.js';
export { createEmitter, SluiceEmitter, type SluiceEventListeners, type SettleOutcome } from './events.js';
export { systemClock, sleep, type Clock } from './clock.js';
export { memoryStore, type Store } from './store.js';
export { parseOptions } from './validate.js';
export { promptTokens, estimateTokens, type PromptTokens } from './prompt-tokens.js';
export { parseRetryAfter, redact } from './upstream-errors.js';
export * from './schemas.js';

import type { SettleOutcome } from './events.js';
import type { Usage } from './schemas.js';

// The two interfaces other packages augment live here, in the module they
// name (`declare module '@sluice/core'`): TypeScript merges an augmentation
// only with the module that declares the interface, not one re-exporting it.

/**
 * Per-request data of middleware, each under its own key. A package
 * declares its key by augmenting this interface from its `index.ts`:
 *
 * ```ts
 * declare module '@sluice/core' {
 *   interface SluiceState { retry?: RetryState }
 * }
 * ```
 */
export interface SluiceState {}

/**
 * Every event a pipeline can emit, by name. Packages add theirs by
 * declaration merging from their own `index.ts`:
 *
 * ```ts
 * declare module '@sluice/core' {
 *   interface SluiceEvents { retry: RetryEvent }
 * }
 * ```
 */
export interface SluiceEvents {
  /** A call entered the pipeline. */
  request: { id: string; model: string; stream: boolean; tags: Readonly<Record<string, string>> };
  /** A call settled (for a stream: when its last chunk was read, it broke, or it was cancelled). */
  response: {
    id: string;
    model: string;
    stream: boolean;
    outcome: SettleOutcome;
    durationMs: number;
    usage: Usage | undefined;
    /** The error's code when the outcome is `error`. */
    errorCode: string | undefined;
  };
  /** One more request of a batch finished. */
  'batch-progress': { done: number; failed: number; total: number };
  /**
   * An event or settlement listener threw; the call's own result is
   * unaffected. `id` names the call for settlement listeners, `event` the
   * event whose listener threw.
   */
  'listener-error': { id?: string; event?: string; error: unknown };
}
