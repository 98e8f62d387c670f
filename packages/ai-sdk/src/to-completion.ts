import type { ChatCompletion, ChatCompletionChunk, ChatCompletionMessage, FinishReason, Usage } from '@sluice/core';
import type { GenerateResult, ModelFinishReason, ModelUsage, StreamPart } from './model-types.js';

/**
 * The model's usage as the API reports it, so rate limits count the real
 * tokens and cost prices them exactly: input total (cached reads apart),
 * output total (reasoning apart). Undefined when the model gave no totals.
 *
 * @param usage - the model's usage
 */
export function toUsage(usage: ModelUsage | undefined): Usage | undefined {
  const input = usage?.inputTokens.total;
  const output = usage?.outputTokens.total;
  if (input === undefined && output === undefined) return undefined;
  const prompt = input ?? 0;
  const completion = output ?? 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    ...(usage?.inputTokens.cacheRead !== undefined ? { prompt_tokens_details: { cached_tokens: usage.inputTokens.cacheRead } } : {}),
    ...(usage?.outputTokens.reasoning !== undefined
      ? { completion_tokens_details: { reasoning_tokens: usage.outputTokens.reasoning } }
      : {}),
  };
}

// The AI SDK's `error` has no OpenAI name: it passes through as a
// provider's own finish reason does (see `FinishReason`).
const finishReasons: Record<string, FinishReason> = {
  stop: 'stop',
  length: 'length',
  'content-filter': 'content_filter',
  'tool-calls': 'tool_calls',
  error: 'error' as FinishReason,
  other: 'stop',
};

function toFinishReason(reason: ModelFinishReason): FinishReason {
  const unified = typeof reason === 'string' ? reason : reason.unified;
  return finishReasons[unified] ?? 'stop';
}

/**
 * The completion a model's answer stands for, for the middleware that read
 * one (cost, cache keys, events); the caller still gets the model's own result.
 *
 * @param modelId - the wrapped model's id
 * @param result - what `doGenerate` gave
 * @param id - the call's id
 */
export function toCompletion(modelId: string, result: GenerateResult, id: string): ChatCompletion {
  let text = '';
  const toolCalls: NonNullable<ChatCompletionMessage['tool_calls']> = [];
  for (const part of result.content) {
    if (part.type === 'text') text += part.text;
    else if (part.type === 'tool-call') {
      toolCalls.push({ id: part.toolCallId, type: 'function', function: { name: part.toolName, arguments: part.input } });
    }
  }
  const usage = toUsage(result.usage);
  return {
    id,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: modelId,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: text === '' && toolCalls.length > 0 ? null : text,
          refusal: null,
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        },
        finish_reason: toFinishReason(result.finishReason),
        logprobs: null,
      },
    ],
    ...(usage ? { usage } : {}),
  };
}

/** Where a chunk keeps the model's own stream part, for the caller's stream. */
export const partOf = Symbol.for('sluice.ai-sdk.part');

/** A chunk carrying the stream part it stands for. */
export type PartChunk = ChatCompletionChunk & { [partOf]?: StreamPart };

/**
 * The chunk a stream part stands for: text and tool-input deltas as the
 * API streams them (so a stream cut short is costed from what was
 * streamed), the finish with its reason and usage, every other part as a
 * chunk without choices. Each carries its part.
 *
 * @param part - the model's stream part
 * @param modelId - the wrapped model's id
 * @param id - the call's id
 * @param toolIndex - the index of each tool call by its id, filled as calls start
 */
export function toChunk(part: StreamPart, modelId: string, id: string, toolIndex: Map<string, number>): PartChunk {
  const chunk: PartChunk = { id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: modelId, choices: [] };
  if (part.type === 'text-delta') chunk.choices = [{ index: 0, delta: { content: part.delta }, finish_reason: null }];
  else if (part.type === 'tool-input-start') {
    const index = toolIndex.size;
    toolIndex.set(part.id, index);
    chunk.choices = [{ index: 0, delta: { tool_calls: [{ index, id: part.id, type: 'function', function: { name: part.toolName, arguments: '' } }] }, finish_reason: null }];
  } else if (part.type === 'tool-input-delta') {
    chunk.choices = [{ index: 0, delta: { tool_calls: [{ index: toolIndex.get(part.id) ?? 0, function: { arguments: part.delta } }] }, finish_reason: null }];
  } else if (part.type === 'finish') {
    chunk.choices = [{ index: 0, delta: {}, finish_reason: toFinishReason(part.finishReason) }];
    const usage = toUsage(part.usage);
    if (usage) chunk.usage = usage;
  }
  Object.defineProperty(chunk, partOf, { value: part, enumerable: false });
  return chunk;
}
