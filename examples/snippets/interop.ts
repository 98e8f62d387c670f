/*
 * The root README's integration examples, type-checked here.
 */
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { createPipeline, openAICompatible, toFetch } from '@sluice/core';
import { retry } from '@sluice/retry';
import { generateText } from 'ai';
import OpenAI from 'openai';

export async function openaiSdk(): Promise<void> {
  // #region openai
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: 'https://api.openai.com/v1', apiKey: process.env.OPENAI_API_KEY }) })
    .use(retry({ attempts: 3 }));

  // The SDK's key and URL are unused: the pipeline's transport holds the real ones.
  const openai = new OpenAI({ apiKey: 'unused', fetch: toFetch(llm) });
  const reply = await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Hi' }] });
  console.log(reply.choices[0]?.message.content);
  // #endregion openai
}

export async function aiSdkProviders(): Promise<void> {
  // #region ai-sdk-fetch
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: 'https://api.deepseek.com/v1', apiKey: process.env.DEEPSEEK_API_KEY }) })
    .use(retry({ attempts: 3 }));

  const openai = createOpenAI({ apiKey: 'unused', fetch: toFetch(llm) });
  const deepseek = createOpenAICompatible({ name: 'deepseek', baseURL: 'https://api.deepseek.com/v1', fetch: toFetch(llm) });

  // maxRetries: 0 — sluice retries; the AI SDK would multiply the attempts.
  const a = await generateText({ model: openai.chat('gpt-4.1'), prompt: 'Hi', maxRetries: 0 });
  const b = await generateText({ model: deepseek.chatModel('deepseek-chat'), prompt: 'Hi', maxRetries: 0 });
  console.log(a.text, b.text);
  // #endregion ai-sdk-fetch
}

export function server(): (request: Request) => Promise<Response> {
  // #region server
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: 'https://api.deepseek.com/v1', apiKey: process.env.DEEPSEEK_API_KEY }) })
    .use(retry({ attempts: 3 }));

  // A (Request) => Promise<Response>: Bun.serve({ fetch: handler }), Deno.serve(handler), a Worker, Hono.
  const handler = toFetch(llm, { fallback: null, tags: (headers) => ({ tenant: headers.get('x-tenant') ?? 'anonymous' }) });
  // #endregion server
  return handler;
}
