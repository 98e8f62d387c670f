import type { FunctionToolCall } from './chat-completion-request.js';

/*
 * The response side of the wire format, written by hand. A field is
 * declared only if the transport checks or fills it (validate-response.ts
 * lists the rules), so the types say what a caller may rely on, and each
 * type is assignable to openai-node's (`ChatCompletion`,
 * `ChatCompletionChunk`): a value from `complete()` or `stream()` can go
 * wherever openai-node's would. Everything else an upstream sends
 * (`system_fingerprint`, a provider's own fields) still reaches the
 * caller at runtime, undeclared; `ChatCompletionMessageExtras` names the
 * ones you read.
 *
 * Two places trust the provider as openai-node does, because being
 * assignable to its types requires it: `finish_reason` is typed with
 * OpenAI's values, but another string a provider sends (DeepSeek's
 * `insufficient_system_resource`), or `null` in a completion, is passed
 * through; and a message's `content` is typed `string | null`, but a
 * provider answering with an array of parts passes it through too.
 */

/**
 * Provider-specific fields of the assistant's message and of each
 * streamed delta (`reasoning_content`), added by declaration merging.
 * Declare them optional: a delta carries only some fields, and sluice
 * does not check them.
 *
 * @example
 * ```ts
 * declare module '@sluice/core' {
 *   interface ChatCompletionMessageExtras {
 *     reasoning_content?: string | null; // DeepSeek, vLLM
 *   }
 * }
 * ```
 */
export interface ChatCompletionMessageExtras {}

/** Why the model stopped, as OpenAI names it (a provider may send its own string). */
export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call';

/**
 * Token accounting, sanitised by the transport: every count is a finite
 * number ≥ 0, `total_tokens` is filled in when missing, and a details
 * object or count that is not one is removed.
 */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number; audio_tokens?: number; cache_write_tokens?: number };
  completion_tokens_details?: {
    reasoning_tokens?: number;
    audio_tokens?: number;
    accepted_prediction_tokens?: number;
    rejected_prediction_tokens?: number;
  };
}

/** One token's log probability. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] | null }>;
}

/** Log probabilities of a choice's tokens (set when the request asked for `logprobs`). */
export interface ChoiceLogprobs {
  content: TokenLogprob[] | null;
  refusal: TokenLogprob[] | null;
}

/** The assistant's answer in a completion. */
export interface ChatCompletionMessage extends ChatCompletionMessageExtras {
  role: 'assistant';
  /** `null` when the answer is only tool calls or a refusal. */
  content: string | null;
  refusal: string | null;
  tool_calls?: FunctionToolCall[];
}

/** One choice of a completion. */
export interface ChatCompletionChoice {
  index: number;
  message: ChatCompletionMessage;
  finish_reason: FinishReason;
  logprobs: ChoiceLogprobs | null;
}

/** A non-streamed completion. */
export interface ChatCompletion {
  /** The upstream's id, or `''` when it sent none. */
  id: string;
  object: 'chat.completion';
  /** Unix seconds, or `0` when the upstream sent none. */
  created: number;
  /** The model that answered, or `''` when the upstream did not say. */
  model: string;
  choices: ChatCompletionChoice[];
  usage?: Usage;
}

/** The incremental part of a streamed tool call; `index` says which call it extends. */
export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function?: { name?: string; arguments?: string };
}

/** What one chunk adds to a choice (`{}` when nothing). */
export interface ChatCompletionDelta extends ChatCompletionMessageExtras {
  role?: 'developer' | 'system' | 'user' | 'assistant' | 'tool';
  content?: string | null;
  refusal?: string | null;
  tool_calls?: ToolCallDelta[];
}

/** One choice of a stream chunk. */
export interface ChatCompletionChunkChoice {
  index: number;
  delta: ChatCompletionDelta;
  finish_reason: FinishReason | null;
  logprobs?: ChoiceLogprobs | null;
}

/** One `data:` event of a streamed completion. */
export interface ChatCompletionChunk {
  /** The upstream's id, or `''` when it sent none. */
  id: string;
  object: 'chat.completion.chunk';
  /** Unix seconds, or `0` when the upstream sent none. */
  created: number;
  /** The model that answered, or `''` when the upstream did not say. */
  model: string;
  /** Empty in the usage-only chunk that ends a stream asked for `include_usage`. */
  choices: ChatCompletionChunkChoice[];
  usage?: Usage | null;
}
