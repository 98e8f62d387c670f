/**
 * @module @sluice/context
 *
 * Token counting and context-window trimming for sluice. `countTokens`
 * and `countMessages` count exactly for OpenAI models (o200k_base,
 * cl100k_base, over js-tiktoken's rank files, loaded lazily), estimate
 * for the rest, take bounded time on any input and cache by text.
 * `trimContext()` keeps each request inside its model's window, keeping
 * the system messages, the last user turn and whole tool-call groups.
 */
import type { ContextTrimEvent } from './events.js';
import type { ContextState } from './trim-context.js';

export { countTokens } from './count-tokens.js';
export { countMessages, type CountMessagesOptions } from './count-messages.js';
export type { Tokenizer, TokenCount } from './tokenizer.js';
export { tokenizerFor, loadTokenizer } from './tokenizer-for.js';
export { estimateTokenizer, type EstimateTokenizerOptions } from './estimate-tokenizer.js';
export { gptTokenizer } from './gpt-tokenizer.js';
export { tiktokenWasm } from './tiktoken-wasm.js';
export type { Encoding } from './encodings.js';
export { configureTokenCache, type TokenCacheOptions } from './token-cache.js';
export { trimContext, type ContextState } from './trim-context.js';
export type { TrimContextOptions } from './options.js';
export { contextWindow, registerContextWindows } from './context-window.js';
export { PromptTooLongError } from './errors.js';
export type { ContextTrimEvent } from './events.js';

declare module '@sluice/core' {
  interface SluiceEvents {
    'context-trim': ContextTrimEvent;
  }
  interface SluiceState {
    context?: ContextState;
  }
}
