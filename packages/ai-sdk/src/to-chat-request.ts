import type { ChatCompletionRequest, ChatMessage, ToolDefinition } from '@sluice/core';
import type { CallParams } from './model-types.js';

type PromptMessage = CallParams['prompt'][number];

/** The text a prompt part stands for, for counting: files and images as a short placeholder. */
function partText(part: { type: string; text?: string; input?: unknown; output?: unknown; toolName?: string }): string {
  if (part.type === 'text' || part.type === 'reasoning') return part.text ?? '';
  if (part.type === 'tool-call') return typeof part.input === 'string' ? part.input : JSON.stringify(part.input ?? {});
  if (part.type === 'tool-result') return JSON.stringify(part.output ?? null);
  return `[${part.type}]`;
}

function toMessage(message: PromptMessage): ChatMessage[] {
  switch (message.role) {
    case 'system':
      return [{ role: 'system', content: message.content }];
    case 'user':
      return [{ role: 'user', content: message.content.map(partText).join('') }];
    case 'assistant': {
      const calls = message.content.filter((part) => part.type === 'tool-call');
      const text = message.content.filter((part) => part.type !== 'tool-call').map(partText).join('');
      return [
        {
          role: 'assistant',
          content: text === '' ? null : text,
          ...(calls.length > 0
            ? {
                tool_calls: calls.map((call) => ({
                  id: call.toolCallId,
                  type: 'function' as const,
                  function: { name: call.toolName, arguments: partText(call) },
                })),
              }
            : {}),
        },
      ];
    }
    case 'tool':
      return message.content
        .filter((part) => part.type === 'tool-result')
        .map((part) => ({ role: 'tool' as const, tool_call_id: part.toolCallId, content: partText(part) }));
    default:
      return [];
  }
}

/**
 * The chat-completions request a model call stands for: what the
 * pipeline's middleware price, count and key on (model, messages, tools,
 * `max_tokens`). It is never sent: the model sends its own request.
 *
 * @param modelId - the wrapped model's id
 * @param params - the call's options
 */
export function toChatRequest(modelId: string, params: CallParams): ChatCompletionRequest {
  const messages = params.prompt.flatMap(toMessage);
  const tools: ToolDefinition[] | undefined = params.tools
    ?.filter((tool) => tool.type === 'function')
    .map((tool) => ({
      type: 'function',
      function: {
        name: tool.name,
        ...(tool.description ? { description: tool.description } : {}),
        parameters: tool.inputSchema as Record<string, unknown>,
      },
    }));
  return {
    model: modelId,
    // The pipeline requires one message; a prompt of none still gets one to count.
    messages: messages.length > 0 ? messages : [{ role: 'user', content: '' }],
    ...(params.maxOutputTokens !== undefined ? { max_tokens: params.maxOutputTokens } : {}),
    ...(params.temperature !== undefined ? { temperature: params.temperature } : {}),
    ...(params.topP !== undefined ? { top_p: params.topP } : {}),
    ...(tools && tools.length > 0 ? { tools } : {}),
  };
}
