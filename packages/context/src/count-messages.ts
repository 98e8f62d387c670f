import { type ChatMessage, type ToolDefinition, ValidationError } from '@sluice/core';
import { chatMessageSchema, parseOptions, toolDefinitionSchema } from '@sluice/core/kit';
import * as z from 'zod/mini';
import { baseModel, type Encoding, encodingForModel } from './encodings.js';
import { imageTokens } from './image-tokens.js';
import { cachedCount } from './token-cache.js';
import type { TokenCount, Tokenizer } from './tokenizer.js';
import { tokenizerFor } from './tokenizer-for.js';
import { toolDefinitionTokens } from './tool-tokens.js';

/**
 * Options of {@link countMessages}.
 *
 * @example
 * ```ts
 * const options: CountMessagesOptions = { tools: request.tools, tokenizer: await gptTokenizer('o200k_base') };
 * ```
 */
export interface CountMessagesOptions {
  /** The request's tool definitions, counted by OpenAI's approximation. */
  tools?: readonly ToolDefinition[];
  /** Overrides the model's default tokenizer. */
  tokenizer?: Tokenizer;
}

/** How a model frames each message, in tokens; internal. */
export interface ChatFormat {
  /** `<|start|>{role}<|message|>…<|end|>` around each message. */
  perMessage: number;
  /** Added for a message's `name`. */
  perName: number;
  /** `<|start|>assistant<|message|>`, priming the reply. */
  priming: number;
  encoding: Encoding | undefined;
}

/** Tokens of each assistant tool call beyond its name and arguments (an estimate that errs high). */
const perToolCall = 10;

/**
 * The framing of `model`'s chat format: 3 tokens a message, 1 for a name,
 * 3 priming the reply, as OpenAI's cookbook gives for every current model;
 * gpt-3.5-turbo-0301 used 4 and −1.
 *
 * @param model - the model name
 * @example
 * ```ts
 * chatFormat('gpt-4o'); // { perMessage: 3, perName: 1, priming: 3, encoding: 'o200k_base' }
 * ```
 */
export function chatFormat(model: string): ChatFormat {
  const encoding = encodingForModel(model);
  return baseModel(model) === 'gpt-3.5-turbo-0301'
    ? { perMessage: 4, perName: -1, priming: 3, encoding }
    : { perMessage: 3, perName: 1, priming: 3, encoding };
}

/**
 * Tokens of one message in the chat format, from cached text counts.
 *
 * @param message - the message
 * @param tokenizer - counts its texts
 * @param format - from {@link chatFormat}
 * @example
 * ```ts
 * messageTokens({ role: 'user', content: 'Hi' }, tokenizerFor('gpt-4o'), chatFormat('gpt-4o')); // 5
 * ```
 */
export function messageTokens(message: ChatMessage, tokenizer: Tokenizer, format: ChatFormat): TokenCount {
  const sum: TokenCount = { tokens: format.perMessage, approximate: false };
  add(sum, tokenizer, message.role);
  const { content } = message;
  if (typeof content === 'string') add(sum, tokenizer, content);
  else if (Array.isArray(content)) {
    if (content.length !== 1 || content[0]?.type !== 'text') sum.approximate = true;
    for (const part of content) {
      if (part.type === 'text') add(sum, tokenizer, part.text);
      else if (part.type === 'refusal') add(sum, tokenizer, part.refusal);
      else if (part.type === 'image_url') sum.tokens += imageTokens(part);
      // Audio and file parts are not counted: their size in tokens is not published.
    }
  }
  if ('name' in message && typeof message.name === 'string') {
    add(sum, tokenizer, message.name);
    sum.tokens += format.perName;
  }
  if (message.role === 'assistant') {
    if (typeof message.refusal === 'string') add(sum, tokenizer, message.refusal);
    for (const call of message.tool_calls ?? []) {
      sum.tokens += perToolCall;
      add(sum, tokenizer, call.type === 'custom' ? call.custom.name : call.function.name);
      add(sum, tokenizer, call.type === 'custom' ? call.custom.input : call.function.arguments);
      sum.approximate = true;
    }
  } else if (message.role === 'tool') {
    add(sum, tokenizer, message.tool_call_id);
    sum.approximate = true;
  }
  return sum;
}

/** The tools' schema, made the first time counting tools failed (never, for most processes). */
let toolsSchema: z.ZodMiniArray<typeof toolDefinitionSchema> | undefined;

/** A value as an error message names it: `null`, `an array`, `a number`. */
export function nameOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`}`;
}

function add(sum: TokenCount, tokenizer: Tokenizer, text: string): void {
  const counted = cachedCount(tokenizer, text);
  sum.tokens += counted.tokens;
  if (counted.approximate) sum.approximate = true;
}

/**
 * Counts a chat's prompt tokens as OpenAI's chat format frames them: 3
 * tokens a message plus its role, content and name (+1), and 3 priming the
 * reply. For text-only chats on OpenAI models this is what the API reports
 * as `prompt_tokens` (the cookbook's worked examples: 129 on gpt-4, 124 on
 * gpt-4o). Images (85 low, 85 + 170 per 512 px tile high), tool
 * definitions (the cookbook's formula) and assistant tool calls are
 * estimates and make the count `approximate`; so does any model without a
 * public tokenizer. Text counts are cached, so re-counting a grown
 * conversation encodes only its new turns.
 *
 * @param messages - the chat
 * @param model - the model name
 * @param options - `tools` of the request, and a `tokenizer` to use instead of the model's
 * @throws ValidationError when `messages` is not an array
 * @example
 * ```ts
 * const { tokens, approximate } = countMessages(request.messages, request.model, { tools: request.tools });
 * ```
 */
export function countMessages(
  messages: readonly ChatMessage[],
  model: string,
  options: CountMessagesOptions = {},
): TokenCount {
  if (!Array.isArray(messages)) throw new ValidationError('messages', 'must be an array');
  if (typeof model !== 'string') throw new ValidationError('model', `must be a model name, got ${nameOf(model)}`);
  const tokenizer = options.tokenizer ?? tokenizerFor(model);
  const format = chatFormat(model);
  let tokens = format.priming;
  let approximate = tokenizer.approximate;
  for (let index = 0; index < messages.length; index++) {
    const message = messages[index] as ChatMessage;
    // The pipeline's schema has checked a request's messages; a direct caller's may be anything.
    if (typeof message !== 'object' || message === null) throw new ValidationError(`messages.${index}`, `must be a chat message object, got ${message === null ? 'null' : typeof message}`);
    let counted: TokenCount;
    try {
      // A role that is not text would be counted as nothing: it is as wrong as a TypeError.
      if (typeof message.role !== 'string') throw new TypeError('role');
      counted = messageTokens(message, tokenizer, format);
    } catch (error) {
      // Checked only once counting failed, so a good chat pays nothing: the schema names the field (`messages.2.content.0.text`).
      parseOptions(chatMessageSchema, message, `messages.${index}`);
      throw error;
    }
    tokens += counted.tokens;
    if (counted.approximate) approximate = true;
  }
  if (options.tools && options.tools.length > 0) {
    try {
      tokens += toolDefinitionTokens(options.tools, tokenizer, format.encoding);
    } catch (error) {
      parseOptions((toolsSchema ??= z.array(toolDefinitionSchema)), options.tools, 'options.tools');
      throw error;
    }
    approximate = true;
  }
  return { tokens, approximate };
}
