import { z } from 'zod';

/*
 * Wire types for the OpenAI-compatible chat-completions API.
 *
 * Objects are "loose": fields this library does not know pass through
 * untouched, because providers add their own (reasoning_content, provider
 * routing, …) and a proxy layer must not drop them.
 */

const textPart = z.looseObject({ type: z.literal('text'), text: z.string() });
const imagePart = z.looseObject({
  type: z.literal('image_url'),
  image_url: z.looseObject({ url: z.string(), detail: z.enum(['auto', 'low', 'high']).optional() }),
});
const audioPart = z.looseObject({
  type: z.literal('input_audio'),
  input_audio: z.looseObject({ data: z.string(), format: z.string() }),
});
const filePart = z.looseObject({ type: z.literal('file'), file: z.looseObject({}) });
const refusalPart = z.looseObject({ type: z.literal('refusal'), refusal: z.string() });

/** One part of a message's content array. */
export const contentPartSchema = z.union([textPart, imagePart, audioPart, filePart, refusalPart]);
export type { ContentPart } from './chat-completion-request.js';

/** A function call the assistant asked for. */
export const toolCallSchema = z.looseObject({
  id: z.string(),
  type: z.literal('function'),
  function: z.looseObject({ name: z.string(), arguments: z.string() }),
});
export type { ToolCall } from './chat-completion-request.js';

const content = z.union([z.string(), z.array(contentPartSchema)]);

export const systemMessageSchema = z.looseObject({
  role: z.enum(['system', 'developer']),
  content,
  name: z.string().optional(),
});
export const userMessageSchema = z.looseObject({
  role: z.literal('user'),
  content,
  name: z.string().optional(),
});
export const assistantMessageSchema = z.looseObject({
  role: z.literal('assistant'),
  content: content.nullable().optional(),
  name: z.string().optional(),
  refusal: z.string().nullable().optional(),
  tool_calls: z.array(toolCallSchema).optional(),
});
export const toolMessageSchema = z.looseObject({
  role: z.literal('tool'),
  content,
  tool_call_id: z.string(),
});
/** The deprecated `function` role, still spoken by some relays. */
export const functionMessageSchema = z.looseObject({
  role: z.literal('function'),
  content: z.string().nullable(),
  name: z.string(),
});

/** Any chat message, discriminated by `role`. */
export const chatMessageSchema = z.discriminatedUnion('role', [
  systemMessageSchema,
  userMessageSchema,
  assistantMessageSchema,
  toolMessageSchema,
  functionMessageSchema,
]);
export type { ChatMessage, SystemMessage, UserMessage, AssistantMessage, ToolMessage } from './chat-completion-request.js';

/** A tool the model may call. */
export const toolDefinitionSchema = z.looseObject({
  type: z.literal('function'),
  function: z.looseObject({
    name: z.string(),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullable().optional(),
  }),
});
export type { ToolDefinition } from './chat-completion-request.js';

/** The body of `POST /chat/completions`. */
export const chatCompletionRequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(chatMessageSchema).min(1),
  stream: z.boolean().nullable().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  max_tokens: z.number().int().positive().nullable().optional(),
  max_completion_tokens: z.number().int().positive().nullable().optional(),
  n: z.number().int().positive().nullable().optional(),
  temperature: z.number().nullable().optional(),
  top_p: z.number().nullable().optional(),
  tools: z.array(toolDefinitionSchema).optional(),
  tool_choice: z.unknown().optional(),
  user: z.string().optional(),
});
export type { ChatCompletionRequest } from './chat-completion-request.js';

/** Token accounting as the API reports it. */
export const usageSchema = z.looseObject({
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  total_tokens: z.number(),
  prompt_tokens_details: z.looseObject({ cached_tokens: z.number().optional() }).nullable().optional(),
  completion_tokens_details: z
    .looseObject({ reasoning_tokens: z.number().optional() })
    .nullable()
    .optional(),
});
export type { Usage } from './chat-completion.js';

/** The fields a completion and each of its stream chunks share. */
const completionEnvelope = {
  id: z.string(),
  object: z.string().optional(),
  created: z.number().optional(),
  model: z.string(),
  usage: usageSchema.nullable().optional(),
};

/** A non-streamed completion. */
export const chatCompletionSchema = z.looseObject({
  ...completionEnvelope,
  choices: z.array(
    z.looseObject({
      index: z.number(),
      message: assistantMessageSchema,
      finish_reason: z.string().nullable(),
    }),
  ),
});
export type { ChatCompletion } from './chat-completion.js';

/** The incremental part of a streamed tool call. */
export const toolCallDeltaSchema = z.looseObject({
  index: z.number(),
  id: z.string().optional(),
  type: z.literal('function').optional(),
  function: z.looseObject({ name: z.string().optional(), arguments: z.string().optional() }).optional(),
});
export type { ToolCallDelta } from './chat-completion.js';

/** One `data:` event of a streamed completion. */
export const chatCompletionChunkSchema = z.looseObject({
  ...completionEnvelope,
  choices: z.array(
    z.looseObject({
      index: z.number(),
      delta: z.looseObject({
        role: z.string().optional(),
        content: z.string().nullable().optional(),
        refusal: z.string().nullable().optional(),
        tool_calls: z.array(toolCallDeltaSchema).optional(),
      }),
      finish_reason: z.string().nullable().optional(),
    }),
  ),
});
export type { ChatCompletionChunk } from './chat-completion.js';
