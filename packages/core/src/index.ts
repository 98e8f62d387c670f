/**
 * @module @sluice/core
 *
 * The sluice contract: a Koa-style `(ctx, next)` pipeline for
 * OpenAI-compatible chat completions, its transport (undici on Node,
 * fetch elsewhere), `toFetch` (the pipeline as a fetch or a server handler), the error
 * family, the typed events, the clock and the store that stateful
 * middleware share. What a pipeline user needs is here; helpers for
 * middleware authors (keyed state, abort hooks, option parsing, schemas)
 * are in `@sluice/core/kit`.
 */
export { createPipeline, type Pipeline, type PipelineOptions, type CloseOptions } from './pipeline.js';
export type { CallOptions } from './call-options.js';
export type { Transport } from './transport.js';
export type { BatchOptions, BatchResult } from './batch.js';
export type * from './context.js';
export type { SluiceState, SluiceEvents, SettleOutcome, StoreErrorPolicy } from './augmentable.js';
export { openAICompatible, type OpenAICompatibleOptions } from './open-ai-compatible.js';
export { fetchTransport } from './fetch-transport.js';
export { rawJson } from './raw-json.js';
export * from './errors.js';
export { createEmitter, type SluiceEmitter, type SluiceEventListeners } from './events.js';
export { systemClock, sleep, type Clock } from './clock.js';
export { memoryStore, type Store, type MemoryStore, type MemoryStoreOptions, type TimeToLive, type InPlaceReducer, type RecordSlot } from './store.js';
export type {
  ChatCompletionRequest,
  ChatCompletionExtras,
  ChatMessage,
  SystemMessage,
  UserMessage,
  AssistantMessage,
  ToolMessage,
  ContentPart,
  ToolCall,
  ToolDefinition,
} from './chat-completion-request.js';
export type {
  ChatCompletion,
  ChatCompletionMessage,
  ChatCompletionMessageExtras,
  ChatCompletionChunk,
  FinishReason,
  ToolCallDelta,
  Usage,
} from './chat-completion.js';
export { toFetch, type FetchFunction, type ToFetchOptions, type RunsCompletions } from './to-fetch.js';
