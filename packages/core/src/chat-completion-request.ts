/*
 * The request side of the chat-completions wire format, written by hand
 * so it has no index signature: a misspelt field in an object literal
 * (`temprature`) is a compile error. Each type is a supertype of the
 * matching openai-node type (a `ChatCompletionCreateParams` is accepted
 * as is; examples/types/openai-compat.ts holds that), and a set of values
 * openai names is open (`Open<…>`), so a newer SDK or a provider's own
 * value still type-checks. Fields not named here still pass through at
 * runtime; to name a provider's own, augment `ChatCompletionExtras`.
 */

/** A closed set of known values, open to others; editors still complete the known ones. */
export type Open<T extends string> = T | (string & {});

/**
 * Provider-specific request fields, added by declaration merging so they
 * type-check in every request of your program. Declare them optional
 * (openai-node's own params have none of them); they are sent as written.
 *
 * @example
 * ```ts
 * declare module '@sluice/core' {
 *   interface ChatCompletionExtras {
 *     provider?: { order?: string[]; allow_fallbacks?: boolean }; // OpenRouter
 *     top_k?: number; // vLLM, Ollama
 *   }
 * }
 * ```
 */
export interface ChatCompletionExtras {}

/** A prompt-caching hint some providers take on a content part. */
export interface PromptCacheBreakpoint {
  mode: Open<'explicit'>;
}

/** Text in a message's content array. */
export interface TextContentPart {
  type: 'text';
  text: string;
  prompt_cache_breakpoint?: PromptCacheBreakpoint;
}

/** An image, by URL or `data:` URL. */
export interface ImageContentPart {
  type: 'image_url';
  image_url: { url: string; detail?: Open<'auto' | 'low' | 'high'> };
  prompt_cache_breakpoint?: PromptCacheBreakpoint;
}

/** Base64 audio. */
export interface AudioContentPart {
  type: 'input_audio';
  input_audio: { data: string; format: Open<'wav' | 'mp3'> };
  prompt_cache_breakpoint?: PromptCacheBreakpoint;
}

/** A file, inline or by id. */
export interface FileContentPart {
  type: 'file';
  file: { file_data?: string; file_id?: string; filename?: string };
  prompt_cache_breakpoint?: PromptCacheBreakpoint;
}

/** A refusal the assistant gave earlier, sent back as history. */
export interface RefusalContentPart {
  type: 'refusal';
  refusal: string;
}

/** One part of a message's content array. */
export type ContentPart = TextContentPart | ImageContentPart | AudioContentPart | FileContentPart | RefusalContentPart;

/** A message's content: text, or an array of parts. */
export type MessageContent = string | ContentPart[];

/** A function call the assistant asked for (the one kind a response carries). */
export interface FunctionToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A call of a custom (free-form input) tool, as openai-node types it. */
export interface CustomToolCall {
  id: string;
  type: 'custom';
  custom: { name: string; input: string };
}

/** A tool call in an assistant message sent as history. */
export type ToolCall = FunctionToolCall | CustomToolCall;

/** Instructions: the `system` role, or `developer` (OpenAI's newer name for it). */
export interface SystemMessage {
  role: 'system' | 'developer';
  content: MessageContent;
  name?: string;
}

/** What the user said. */
export interface UserMessage {
  role: 'user';
  content: MessageContent;
  name?: string;
}

/** An assistant turn sent back as history (a response's message is one). */
export interface AssistantMessage {
  role: 'assistant';
  content?: MessageContent | null;
  name?: string;
  refusal?: string | null;
  tool_calls?: ToolCall[];
  /** A previous audio answer, by id. */
  audio?: { id: string } | null;
  /** @deprecated the legacy single function call; use `tool_calls` */
  function_call?: { name: string; arguments: string } | null;
}

/** A tool's result, answering the assistant's call `tool_call_id`. */
export interface ToolMessage {
  role: 'tool';
  content: MessageContent;
  tool_call_id: string;
}

/** @deprecated the legacy `function` role, still spoken by some relays; use a `tool` message */
export interface FunctionMessage {
  role: 'function';
  content: string | null;
  name: string;
}

/** Any chat message, discriminated by `role`. */
export type ChatMessage = SystemMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage;

/** A function the model may call. */
export interface FunctionToolDefinition {
  type: 'function';
  function: {
    name: string;
    description?: string;
    /** A JSON Schema object. */
    parameters?: Record<string, unknown>;
    strict?: boolean | null;
  };
}

/** A custom tool: free-form input, optionally constrained by a grammar. */
export interface CustomToolDefinition {
  type: 'custom';
  custom: {
    name: string;
    description?: string;
    format?: { type: 'text' } | { type: 'grammar'; grammar: { definition: string; syntax: Open<'lark' | 'regex'> } };
  };
}

/** A tool the model may call. */
export type ToolDefinition = FunctionToolDefinition | CustomToolDefinition;

/** Which tool, if any, the model must call. */
export type ToolChoice =
  | Open<'none' | 'auto' | 'required'>
  | { type: 'function'; function: { name: string } }
  | { type: 'custom'; custom: { name: string } }
  | { type: 'allowed_tools'; allowed_tools: { mode: Open<'auto' | 'required'>; tools: Array<Record<string, unknown>> } };

/** The shape the answer must take. */
export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | {
      type: 'json_schema';
      json_schema: { name: string; description?: string; schema?: Record<string, unknown>; strict?: boolean | null };
    };

/**
 * The body of `POST /chat/completions`: every field openai-node's
 * `ChatCompletionCreateParams` has, plus what you declare in
 * {@link ChatCompletionExtras}. No index signature, so a misspelt field
 * in an object literal is a compile error; at runtime unknown fields
 * still pass through to the provider.
 */
export interface ChatCompletionRequest extends ChatCompletionExtras {
  model: string;
  messages: ChatMessage[];
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean; include_obfuscation?: boolean } | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  n?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  frequency_penalty?: number | null;
  presence_penalty?: number | null;
  stop?: string | string[] | null;
  seed?: number | null;
  logit_bias?: Record<string, number> | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  tools?: ToolDefinition[];
  tool_choice?: ToolChoice;
  parallel_tool_calls?: boolean;
  response_format?: ResponseFormat;
  reasoning_effort?: Open<'none' | 'minimal' | 'low' | 'medium' | 'high' | 'xhigh' | 'max'> | null;
  verbosity?: Open<'low' | 'medium' | 'high'> | null;
  user?: string;
  safety_identifier?: string | null;
  metadata?: Record<string, string> | null;
  store?: boolean | null;
  service_tier?: Open<'auto' | 'default' | 'flex' | 'scale' | 'priority'> | null;
  modalities?: Array<Open<'text' | 'audio'>> | null;
  audio?: { format: Open<'wav' | 'aac' | 'mp3' | 'flac' | 'opus' | 'pcm16'>; voice: string | { id: string } } | null;
  prediction?: { type: 'content'; content: string | TextContentPart[] } | null;
  prompt_cache_key?: string | null;
  prompt_cache_retention?: Open<'in_memory' | '24h'> | null;
  prompt_cache_options?: { mode?: Open<'implicit' | 'explicit'>; ttl?: Open<'30m'> };
  moderation?: {
    model: string;
    policy?: { input?: { mode: Open<'score' | 'block'> } | null; output?: { mode: Open<'score' | 'block'> } | null } | null;
  } | null;
  web_search_options?: {
    search_context_size?: Open<'low' | 'medium' | 'high'>;
    user_location?: {
      type: 'approximate';
      approximate: { city?: string; country?: string; region?: string; timezone?: string };
    } | null;
  };
  /** @deprecated use `tools` */
  functions?: Array<{ name: string; description?: string; parameters?: Record<string, unknown> }>;
  /** @deprecated use `tool_choice` */
  function_call?: Open<'none' | 'auto'> | { name: string };
}
