import * as z from 'zod/mini';

/*
 * The runtime schemas of the OpenAI-compatible chat-completions API (the
 * types users see are written by hand in chat-completion-request.ts and
 * chat-completion.ts; these check what arrives).
 *
 * Objects are "loose": fields this library does not know pass through
 * untouched, because providers add their own (reasoning_content, provider
 * routing, …) and a proxy layer must not drop them.
 */

const textPart = z.looseObject({ type: z.literal('text'), text: z.string() });
const imagePart = z.looseObject({
  type: z.literal('image_url'),
  image_url: z.looseObject({ url: z.string(), detail: z.optional(z.enum(['auto', 'low', 'high'])) }),
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

/** A call the assistant asked for: of a function, or of a custom (free-form input) tool. */
export const toolCallSchema = z.discriminatedUnion('type', [
  z.looseObject({
    id: z.string(),
    type: z.literal('function'),
    function: z.looseObject({ name: z.string(), arguments: z.string() }),
  }),
  z.looseObject({
    id: z.string(),
    type: z.literal('custom'),
    custom: z.looseObject({ name: z.string(), input: z.string() }),
  }),
]);
export type { ToolCall } from './chat-completion-request.js';

const content = z.union([z.string(), z.array(contentPartSchema)]);

export const systemMessageSchema = z.looseObject({
  role: z.enum(['system', 'developer']),
  content,
  name: z.optional(z.string()),
});
export const userMessageSchema = z.looseObject({
  role: z.literal('user'),
  content,
  name: z.optional(z.string()),
});
export const assistantMessageSchema = z.looseObject({
  role: z.literal('assistant'),
  content: z.nullish(content),
  name: z.optional(z.string()),
  refusal: z.nullish(z.string()),
  tool_calls: z.optional(z.array(toolCallSchema)),
});
export const toolMessageSchema = z.looseObject({
  role: z.literal('tool'),
  content,
  tool_call_id: z.string(),
});
/** The deprecated `function` role, still spoken by some relays. */
export const functionMessageSchema = z.looseObject({
  role: z.literal('function'),
  content: z.nullable(z.string()),
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

/** A tool the model may call: a function, or a custom tool taking free-form input. */
export const toolDefinitionSchema = z.discriminatedUnion('type', [
  z.looseObject({
    type: z.literal('function'),
    function: z.looseObject({
      name: z.string(),
      description: z.optional(z.string()),
      parameters: z.optional(z.record(z.string(), z.unknown())),
      strict: z.nullish(z.boolean()),
    }),
  }),
  z.looseObject({
    type: z.literal('custom'),
    custom: z.looseObject({ name: z.string(), description: z.optional(z.string()) }),
  }),
]);
export type { ToolDefinition } from './chat-completion-request.js';

/** The body of `POST /chat/completions`. */
export const chatCompletionRequestSchema = z.looseObject({
  model: z.string().check(z.minLength(1)),
  messages: z.array(chatMessageSchema).check(z.minLength(1)),
  stream: z.nullish(z.boolean()),
  stream_options: z.nullish(z.looseObject({ include_usage: z.optional(z.boolean()) })),
  max_tokens: z.nullish(z.number().check(z.int(), z.positive())),
  max_completion_tokens: z.nullish(z.number().check(z.int(), z.positive())),
  n: z.nullish(z.number().check(z.int(), z.positive())),
  temperature: z.nullish(z.number()),
  top_p: z.nullish(z.number()),
  tools: z.optional(z.array(toolDefinitionSchema)),
  tool_choice: z.optional(z.unknown()),
  user: z.optional(z.string()),
});
export type { ChatCompletionRequest } from './chat-completion-request.js';

/** Token accounting as the API reports it. */
export const usageSchema = z.looseObject({
  prompt_tokens: z.number(),
  completion_tokens: z.number(),
  total_tokens: z.number(),
  prompt_tokens_details: z.nullish(z.looseObject({ cached_tokens: z.optional(z.number()) })),
  completion_tokens_details: z.nullish(z.looseObject({ reasoning_tokens: z.optional(z.number()) })),
});
export type { Usage } from './chat-completion.js';

/** The fields a completion and each of its stream chunks share. */
const completionEnvelope = {
  id: z.string(),
  object: z.optional(z.string()),
  created: z.optional(z.number()),
  model: z.string(),
  usage: z.nullish(usageSchema),
};

/** A non-streamed completion. */
export const chatCompletionSchema = z.looseObject({
  ...completionEnvelope,
  choices: z.array(
    z.looseObject({
      index: z.number(),
      message: assistantMessageSchema,
      finish_reason: z.nullable(z.string()),
    }),
  ),
});
export type { ChatCompletion } from './chat-completion.js';

/** The incremental part of a streamed tool call. */
export const toolCallDeltaSchema = z.looseObject({
  index: z.number(),
  id: z.optional(z.string()),
  type: z.optional(z.literal('function')),
  function: z.optional(z.looseObject({ name: z.optional(z.string()), arguments: z.optional(z.string()) })),
});
export type { ToolCallDelta } from './chat-completion.js';

/** One `data:` event of a streamed completion. */
export const chatCompletionChunkSchema = z.looseObject({
  ...completionEnvelope,
  choices: z.array(
    z.looseObject({
      index: z.number(),
      delta: z.looseObject({
        role: z.optional(z.string()),
        content: z.nullish(z.string()),
        refusal: z.nullish(z.string()),
        tool_calls: z.optional(z.array(toolCallDeltaSchema)),
      }),
      finish_reason: z.nullish(z.string()),
    }),
  ),
});
export type { ChatCompletionChunk } from './chat-completion.js';
