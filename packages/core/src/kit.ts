/**
 * @module @sluice/core/kit
 *
 * For authors of middleware: the helpers every sluice package builds on.
 * `keyedState` is the one way a stateful middleware keeps state (key
 * option, namespace, store binding, TTLs, the store-failure policy);
 * `onAbort`/`abortReason` watch a call's abort without making a signal;
 * `parseOptions` validates a factory's options with field paths;
 * `transportStream` hands a stream's upstream text to whoever keeps it; the
 * zod schemas are the wire format's.
 */
export {
  keyedState,
  keyResolver,
  type KeyOption,
  type KeyedState,
  type KeyedStateOptions,
  type KeyedUpdateOptions,
} from './keyed-state.js';
export { compose, keepsChainRules } from './compose.js';
export { streamEnd, isEndAware, type EndAware, streamReading, type ReadingAware } from './stream-end.js';
export { afterNext } from './after-next.js';
export { afterIo } from './after-io.js';
export { readAhead, transportStream, type TransportStream, type StreamObserver } from './transport-stream.js';
export { onAbort, abortReason, outliveParent, untilAborted } from './call.js';
export { parseOptions, closestKey, upperBoundMs } from './validate.js';
export { sanitiseUsage, isCompletion, isChunk } from './validate-response.js';
export { completionResponseSchema, chunkResponseSchema } from './response-schemas.js';
export { promptTokens, estimateTokens } from './prompt-tokens.js';
export type { PromptTokens } from './augmentable.js';
export { parseRetryAfter, redact, excerpt, redactHeaders } from './upstream-errors.js';
export { toSluiceError } from './errors.js';
export { aheadOfClock, clockSkewMs, unrefTimer } from './clock.js';
export { kOwnDeadline } from './store.js';
export * from './schemas.js';
export type * from './chat-completion-request.js';
export type * from './chat-completion.js';
