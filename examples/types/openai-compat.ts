/**
 * Type tests, checked by `tsc` and never run: sluice's request and
 * response types against openai-node's. Requests built for the openai SDK
 * go into `complete()`, `stream()`, `run()` and `batch()` as they are;
 * what comes out goes wherever openai-node's own values go; a misspelt
 * field in an object literal is a compile error. Each `@ts-expect-error`
 * fails the type check the day its line starts compiling.
 */
import type {
  AssistantMessage,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatMessage,
  Pipeline,
  SystemMessage,
  ToolMessage,
  UserMessage,
} from '@sluice/core';
import type { ContentPart, FileContentPart, ImageContentPart, TextContentPart } from '@sluice/core/kit';
import type { CompletionUsage } from 'openai/resources/completions';
import type * as OpenAI from 'openai/resources/chat/completions';

// The escape hatch, as a user writes it: provider fields declared once, for every request and answer.
declare module '@sluice/core' {
  interface ChatCompletionExtras {
    /** OpenRouter's provider routing. */
    provider?: { order?: string[]; allow_fallbacks?: boolean };
  }
  interface ChatCompletionMessageExtras {
    /** DeepSeek's and vLLM's reasoning text. */
    reasoning_content?: string | null;
  }
}

declare const llm: Pipeline;
declare const nonStreaming: OpenAI.ChatCompletionCreateParamsNonStreaming;
declare const streaming: OpenAI.ChatCompletionCreateParamsStreaming;
declare const either: OpenAI.ChatCompletionCreateParams;

/** `true` only when `T` is `never`: a type-level "expect no leftovers". */
type Empty<T> = [T] extends [never] ? true : false;

// Every request field and message field openai-node knows is a field here too, so a
// literal written from OpenAI's docs compiles. An SDK upgrade that adds one fails here.
export const requestKeys: Empty<Exclude<keyof OpenAI.ChatCompletionCreateParamsBase, keyof ChatCompletionRequest>> = true;
export const messageKeys: [
  Empty<Exclude<keyof OpenAI.ChatCompletionSystemMessageParam, keyof SystemMessage>>,
  Empty<Exclude<keyof OpenAI.ChatCompletionDeveloperMessageParam, keyof SystemMessage>>,
  Empty<Exclude<keyof OpenAI.ChatCompletionUserMessageParam, keyof UserMessage>>,
  Empty<Exclude<keyof OpenAI.ChatCompletionAssistantMessageParam, keyof AssistantMessage>>,
  Empty<Exclude<keyof OpenAI.ChatCompletionToolMessageParam, keyof ToolMessage>>,
  Empty<Exclude<keyof OpenAI.ChatCompletionContentPartText, keyof TextContentPart>>,
  Empty<Exclude<keyof OpenAI.ChatCompletionContentPartImage, keyof ImageContentPart>>,
  Empty<Exclude<keyof OpenAI.ChatCompletionContentPart.File, keyof FileContentPart>>,
] = [true, true, true, true, true, true, true, true];

/** openai-node's requests go in as they are, and what comes out is openai-node's. */
export async function openAIRequestsInOpenAIResultsOut(): Promise<void> {
  const completion: OpenAI.ChatCompletion = await llm.complete(nonStreaming);
  for await (const chunk of llm.stream(streaming)) {
    const same: OpenAI.ChatCompletionChunk = chunk;
    void same;
  }
  const chunks: AsyncIterable<OpenAI.ChatCompletionChunk> = llm.stream(nonStreaming);
  const ctx = await llm.run(either);
  const response: OpenAI.ChatCompletion | undefined = ctx.response;
  const stream: AsyncIterable<OpenAI.ChatCompletionChunk> | undefined = ctx.chunks;
  const usage: CompletionUsage | undefined = ctx.usage;
  const results = await llm.batch([nonStreaming, nonStreaming]);
  const first = results[0];
  const value: OpenAI.ChatCompletion | undefined = first?.ok ? first.value : undefined;

  // An answer goes back into the history, sluice's or openai-node's.
  const reply = completion.choices[0]?.message;
  if (reply) {
    const history: OpenAI.ChatCompletionMessageParam[] = [...nonStreaming.messages, reply];
    const ours: ChatMessage[] = [...nonStreaming.messages, reply];
    await llm.complete({ model: nonStreaming.model, messages: ours });
    void history;
  }
  void [chunks, response, stream, usage, value];
}

/** openai-node's message and content types are sluice's. */
export function openAIMessagesAreMessages(
  message: OpenAI.ChatCompletionMessageParam,
  part: OpenAI.ChatCompletionContentPart,
  tool: OpenAI.ChatCompletionTool,
  toolChoice: OpenAI.ChatCompletionToolChoiceOption,
  answer: OpenAI.ChatCompletionMessage,
): [ChatMessage, ContentPart, ChatCompletionRequest['tools'], ChatCompletionRequest['tool_choice'], ChatMessage] {
  return [message, part, [tool], toolChoice, answer];
}

/** sluice's own results are openai-node's. */
export function resultsAreOpenAIs(completion: ChatCompletion, chunk: ChatCompletionChunk): [OpenAI.ChatCompletion, OpenAI.ChatCompletionChunk] {
  return [completion, chunk];
}

/** A literal written from OpenAI's API reference compiles, field for field. */
export async function literalsFromTheDocs(): Promise<void> {
  await llm.complete({
    model: 'gpt-4.1',
    messages: [
      { role: 'developer', content: 'Answer in JSON.' },
      { role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'https://x.test/a.png', detail: 'low' } }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'look', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'a sluice gate' },
    ],
    temperature: 0.2,
    max_completion_tokens: 500,
    stop: ['\n\n'],
    seed: 7,
    reasoning_effort: 'low',
    response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object' }, strict: true } },
    tools: [{ type: 'function', function: { name: 'look', parameters: { type: 'object', properties: {} } } }],
    tool_choice: 'auto',
    parallel_tool_calls: false,
    stream_options: { include_usage: true },
    metadata: { feature: 'demo' },
    service_tier: 'flex',
  });
  // Values openai-node does not list yet (or a provider's own) are accepted where OpenAI's set is open.
  await llm.complete({ model: 'deepseek-reasoner', messages: [{ role: 'user', content: 'Hi' }], reasoning_effort: 'ultra' });
}

/** The escape hatch: fields declared in `ChatCompletionExtras` and `ChatCompletionMessageExtras` type-check. */
export async function providerExtras(): Promise<string | null | undefined> {
  await llm.complete({ model: 'openrouter/auto', messages: [{ role: 'user', content: 'Hi' }], provider: { order: ['deepseek'] } });
  await llm.complete({
    model: 'openrouter/auto',
    messages: [{ role: 'user', content: 'Hi' }],
    // @ts-expect-error a misspelt extra is as wrong as a misspelt standard field
    providr: { order: ['deepseek'] },
  });
  for await (const chunk of llm.stream({ model: 'deepseek-reasoner', messages: [{ role: 'user', content: 'Hi' }] })) {
    const thinking: string | null | undefined = chunk.choices[0]?.delta.reasoning_content;
    void thinking;
  }
  const reply = await llm.complete({ model: 'deepseek-reasoner', messages: [{ role: 'user', content: 'Hi' }] });
  // @ts-expect-error a field nobody declared is not there to read (OpenRouter's `reasoning`)
  void reply.choices[0]?.message.reasoning;
  return reply.choices[0]?.message.reasoning_content;
}

/** Misspelt or mistyped fields in a literal are compile errors, in every method. */
export async function misspellingsAreErrors(): Promise<void> {
  const messages: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
  // @ts-expect-error temprature
  await llm.complete({ model: 'gpt-4.1', messages, temprature: 0.2 });
  // @ts-expect-error max_token
  await llm.complete({ model: 'gpt-4.1', messages, max_token: 100 });
  // @ts-expect-error temprature, next to a spread of openai-node's params
  await llm.complete({ ...nonStreaming, temprature: 0.2 });
  // @ts-expect-error max_token, in a stream
  llm.stream({ model: 'gpt-4.1', messages, max_token: 100 });
  // @ts-expect-error temprature, in run
  await llm.run({ model: 'gpt-4.1', messages, temprature: 0.2 });
  // @ts-expect-error temprature, in a batch
  await llm.batch([{ model: 'gpt-4.1', messages, temprature: 0.2 }]);
  // @ts-expect-error a string where a number belongs
  await llm.complete({ model: 'gpt-4.1', messages, temperature: '0.2' });
  // @ts-expect-error a misspelt field of a nested object
  await llm.complete({ model: 'gpt-4.1', messages, stream_options: { include_usgae: true } });
  // @ts-expect-error a misspelt message field
  await llm.complete({ model: 'gpt-4.1', messages: [{ role: 'user', contnet: 'Hi' }] });
  // @ts-expect-error an unknown role
  await llm.complete({ model: 'gpt-4.1', messages: [{ role: 'usr', content: 'Hi' }] });
  // @ts-expect-error a tool message needs the call it answers
  await llm.complete({ model: 'gpt-4.1', messages: [{ role: 'tool', content: '42' }] });
  // @ts-expect-error a misspelt content-part field
  await llm.complete({ model: 'gpt-4.1', messages: [{ role: 'user', content: [{ type: 'text', txt: 'Hi' }] }] });
  // @ts-expect-error model is required
  await llm.complete({ messages });
}

/** What the results guarantee, as types. */
export async function resultGuarantees(): Promise<void> {
  const completion = await llm.complete({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Hi' }] });
  const choice = completion.choices[0];
  const text: string | null | undefined = choice?.message.content;
  const prompt: number | undefined = completion.usage?.prompt_tokens;
  const id: string = completion.id;
  const created: number = completion.created;
  for await (const chunk of llm.stream({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Hi' }] })) {
    const delta: string | null | undefined = chunk.choices[0]?.delta.content;
    const finish: OpenAI.ChatCompletionChunk.Choice['finish_reason'] | undefined = chunk.choices[0]?.finish_reason;
    void [delta, finish];
  }
  // @ts-expect-error a choice has no index signature: a misspelt field is not `unknown`, it is an error
  void choice?.mesage;
  // @ts-expect-error a completion's message is not a delta
  void choice?.delta;
  void [text, prompt, id, created];
}
