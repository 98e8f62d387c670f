import type { ChatCompletion, ChatCompletionChunk, Usage } from '@sluice/core';
import type { GenerateResult, ModelFinishReason, ModelUsage, StreamPart } from './model-types.js';

/*
 * The other way round from to-completion.ts: the AI SDK result a completion
 * (or the parts a stream of chunks) stands for, when no model call produced
 * the answer. A middleware answered it itself: `@sluice/cache` on a hit, a
 * test double, a fallback of the user's own. Without this the caller got
 * nothing (a stream of no parts) or a TypeError (no result).
 */

const unifiedReasons: Record<string, ModelFinishReason['unified']> = {
  stop: 'stop',
  length: 'length',
  content_filter: 'content-filter',
  tool_calls: 'tool-calls',
  function_call: 'tool-calls',
  error: 'error',
};

function finishReason(reason: string | null | undefined): ModelFinishReason {
  return { unified: (reason ? unifiedReasons[reason] : undefined) ?? 'other', raw: reason ?? undefined };
}

/** The usage as the AI SDK reports it, from the API's. */
export function fromUsage(usage: Usage | null | undefined): ModelUsage {
  const input = usage?.prompt_tokens;
  const output = usage?.completion_tokens;
  const cached = usage?.prompt_tokens_details?.cached_tokens ?? undefined;
  const reasoning = usage?.completion_tokens_details?.reasoning_tokens ?? undefined;
  return {
    inputTokens: { total: input, noCache: input === undefined ? undefined : input - (cached ?? 0), cacheRead: cached, cacheWrite: undefined },
    outputTokens: { total: output, text: output === undefined ? undefined : output - (reasoning ?? 0), reasoning },
  };
}

/**
 * The result a completion stands for: its first choice's text and tool
 * calls, finish reason and usage.
 *
 * @param completion - what the pipeline answered with
 */
export function fromCompletion(completion: ChatCompletion): GenerateResult {
  const choice = completion.choices[0];
  const content: GenerateResult['content'] = [];
  const text = choice?.message.content;
  if (typeof text === 'string' && text !== '') content.push({ type: 'text', text });
  for (const call of choice?.message.tool_calls ?? []) {
    if (call.type !== 'function') continue;
    content.push({ type: 'tool-call', toolCallId: call.id, toolName: call.function.name, input: call.function.arguments });
  }
  return {
    content,
    finishReason: finishReason(choice?.finish_reason),
    usage: fromUsage(completion.usage),
    warnings: [],
    response: { id: completion.id, modelId: completion.model, timestamp: new Date(completion.created * 1000) },
  };
}

/**
 * The parts a stream of chunks stands for, chunk by chunk: text as
 * `text-start`, `text-delta`s and `text-end`; tool calls gathered from
 * their deltas and handed on whole (`tool-input-*` and `tool-call`) when
 * the stream ends; then `finish` with the reason and the usage chunk's usage.
 */
export class PartsOfChunks {
  private textOpen = false;
  private reason: string | null | undefined = undefined;
  private usage: Usage | null | undefined = undefined;
  private readonly calls = new Map<number, { id: string; name: string; args: string }>();

  /** The parts of one chunk (often none). */
  parts(chunk: ChatCompletionChunk): StreamPart[] {
    const parts: StreamPart[] = [];
    if (chunk.usage) this.usage = chunk.usage;
    const choice = chunk.choices.find((candidate) => candidate.index === 0);
    if (!choice) return parts;
    const { content, tool_calls: toolCalls } = choice.delta;
    if (typeof content === 'string' && content !== '') {
      if (!this.textOpen) parts.push({ type: 'text-start', id: '0' });
      this.textOpen = true;
      parts.push({ type: 'text-delta', id: '0', delta: content });
    }
    for (const delta of toolCalls ?? []) {
      const call = this.calls.get(delta.index) ?? { id: '', name: '', args: '' };
      if (delta.id) call.id = delta.id;
      if (delta.function?.name) call.name += delta.function.name;
      if (delta.function?.arguments) call.args += delta.function.arguments;
      this.calls.set(delta.index, call);
    }
    if (choice.finish_reason) this.reason = choice.finish_reason;
    return parts;
  }

  /** The parts that close the stream: open text, the tool calls, the finish. */
  end(): StreamPart[] {
    const parts: StreamPart[] = [];
    if (this.textOpen) parts.push({ type: 'text-end', id: '0' });
    for (const [index, call] of [...this.calls].sort(([x], [y]) => x - y)) {
      const id = call.id || `call_${index}`;
      parts.push({ type: 'tool-input-start', id, toolName: call.name });
      if (call.args !== '') parts.push({ type: 'tool-input-delta', id, delta: call.args });
      parts.push({ type: 'tool-input-end', id });
      parts.push({ type: 'tool-call', toolCallId: id, toolName: call.name, input: call.args || '{}' });
    }
    parts.push({ type: 'finish', finishReason: finishReason(this.reason), usage: fromUsage(this.usage) });
    return parts;
  }
}
