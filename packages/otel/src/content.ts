import type { ChatCompletion, ChatMessage } from '@sluice/core';

/*
 * Prompts and completions in the conventions' message schema
 * (gen-ai-input-messages.json, gen-ai-output-messages.json), serialised to
 * JSON because span attributes cannot hold structures yet. Only ever built
 * when the user opted in with `captureContent`.
 */

type Part =
  | { type: 'text'; content: string }
  | { type: 'tool_call'; id: string; name: string; arguments: unknown }
  | { type: 'tool_call_response'; id: string; response: unknown }
  | { type: 'uri'; modality: 'image'; uri: string }
  | { type: string };

interface Message {
  role: string;
  parts: Part[];
  finish_reason?: string;
}

/** Tool arguments are JSON text on the wire; the schema wants the value when it parses. */
function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function partsOf(content: ChatMessage['content']): Part[] {
  if (content === null || content === undefined) return [];
  if (typeof content === 'string') return [{ type: 'text', content }];
  return content.map((part): Part => {
    if (part.type === 'text') return { type: 'text', content: part.text };
    if (part.type === 'refusal') return { type: 'text', content: part.refusal };
    // Images may be data: URIs of megabytes; a URL is kept, inline data is not.
    if (part.type === 'image_url' && !part.image_url.url.startsWith('data:')) return { type: 'uri', modality: 'image', uri: part.image_url.url };
    return { type: part.type };
  });
}

/**
 * The request's messages as `gen_ai.input.messages`.
 *
 * @param messages - what is sent
 */
export function inputMessages(messages: readonly ChatMessage[]): string {
  const out: Message[] = messages.map((message) => {
    if (message.role === 'tool') {
      return { role: 'tool', parts: [{ type: 'tool_call_response', id: message.tool_call_id, response: message.content }] };
    }
    const parts = partsOf(message.content);
    if (message.role === 'assistant') {
      for (const call of message.tool_calls ?? []) {
        if (call.type === 'custom') parts.push({ type: 'tool_call', id: call.id, name: call.custom.name, arguments: call.custom.input });
        else parts.push({ type: 'tool_call', id: call.id, name: call.function.name, arguments: parsed(call.function.arguments) });
      }
    }
    return { role: message.role, parts };
  });
  return JSON.stringify(out);
}

/** What a streamed choice accumulated. */
export interface StreamedChoice {
  text: string;
  finishReason: string | undefined;
}

/**
 * A completion's choices as `gen_ai.output.messages`.
 *
 * @param choices - a non-stream completion's choices
 */
export function outputMessages(choices: ChatCompletion['choices']): string {
  return JSON.stringify(
    choices.map((choice): Message => {
      const parts = partsOf(choice.message.content);
      for (const call of choice.message.tool_calls ?? []) {
        parts.push({ type: 'tool_call', id: call.id, name: call.function.name, arguments: parsed(call.function.arguments) });
      }
      return { role: 'assistant', parts, finish_reason: choice.finish_reason ?? 'error' };
    }),
  );
}

/**
 * A stream's choices as `gen_ai.output.messages` (text only: tool-call
 * deltas are not reassembled). A choice cut before its end has the
 * finish reason `error`.
 *
 * @param choices - the text each choice index streamed
 */
export function streamedMessages(choices: ReadonlyMap<number, StreamedChoice>): string {
  return JSON.stringify(
    [...choices.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, choice]): Message => ({
        role: 'assistant',
        parts: [{ type: 'text', content: choice.text }],
        finish_reason: choice.finishReason ?? 'error',
      })),
  );
}
