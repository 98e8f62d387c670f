/**
 * @module @sluice/core
 *
 * The sluice contract: a Koa-style `(ctx, next)` pipeline for
 * OpenAI-compatible chat completions, its undici transport, the error
 * family, the typed events, the clock and the store that stateful
 * middleware share.
 */
export { compose } from './compose.js';
export { createPipeline, Pipeline, type Transport, type PipelineOptions, type CallOptions } from './pipeline.js';
export type { BatchOptions, BatchResult } from './batch.js';
export type { CompletionContext, Middleware, SluiceState, Settlement, SettleListener, TransportInfo } from './context.js';
export { openAICompatible, type OpenAICompatibleOptions } from './open-ai-compatible.js';
export * from './errors.js';
export { createEmitter, type SluiceEvents, type SluiceEmitter, type SluiceEventListeners, type SettleOutcome } from './events.js';
export { systemClock, sleep, type Clock } from './clock.js';
export { memoryStore, type Store } from './store.js';
export { parseOptions } from './validate.js';
export { promptTokens, estimateTokens, type PromptTokens } from './prompt-tokens.js';
export { parseRetryAfter, redact } from './upstream-errors.js';
export * from './schemas.js';
