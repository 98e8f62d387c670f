/**
 * Your own transport: a model behind an in-house client instead of an
 * OpenAI-compatible endpoint, with the same middleware in front of it.
 * Run: `pnpm tsx --conditions=@sluice/source examples/custom-transport.ts`.
 */
import { type ChatCompletion, createPipeline, type Transport } from '@sluice/core';
import { untilAborted } from '@sluice/core/kit';
import { retry } from '@sluice/retry';

/** Stands for a client of your own (an internal service, a local model). */
async function inHouseModel(prompt: string): Promise<string> {
  return `You said: ${prompt}`;
}

const transport: Transport = {
  name: 'in-house',
  origin: 'in-house://echo',
  // Every wait goes through untilAborted, so the call's abort and deadline end it: the pipeline need not.
  honoursAbort: true,
  async send(ctx) {
    const last = ctx.request.messages.at(-1);
    const text = await untilAborted(ctx, inHouseModel(typeof last?.content === 'string' ? last.content : ''));
    const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
    const response: ChatCompletion = {
      id: `inhouse-${ctx.id}`,
      object: 'chat.completion',
      created: Math.floor(ctx.clock.now() / 1000),
      model: ctx.request.model,
      choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, finish_reason: 'stop', logprobs: null }],
      usage,
    };
    ctx.response = response;
    ctx.usage = usage;
  },
};

const llm = createPipeline({ transport }).use(retry());
const reply = await llm.complete({ model: 'echo-1', messages: [{ role: 'user', content: 'hello' }] }, { timeoutMs: 5_000 });
console.log(reply.choices[0]?.message.content);
await llm.close();
