import { anthropic } from '@ai-sdk/anthropic';
import { breaker } from '@sluice/breaker';
import { createPipeline } from '@sluice/core';
import { budget, trackCost } from '@sluice/cost';
import { rateLimit } from '@sluice/ratelimit';
import { retry } from '@sluice/retry';
import { languageModels, sluiceMiddleware } from '@sluice/ai-sdk';
import { generateText, streamText, wrapLanguageModel } from 'ai';

const costs = trackCost();
const llm = createPipeline({ transport: languageModels() })   // each attempt is one call of the wrapped model
  .use(costs)
  .use(budget({ limits: [{ limitUsd: 50, period: 'day' }] }))
  .use(retry({ attempts: 3 }))
  .use(breaker({ failures: 10, openMs: 30_000 }))
  .use(rateLimit({ rpm: 100, tpm: 200_000 }));              // counts the model's real usage

const model = wrapLanguageModel({ model: anthropic('claude-sonnet-4-5'), middleware: sluiceMiddleware(llm) });

// maxRetries: 0, so the AI SDK does not retry on top of sluice.
const { text } = await generateText({ model, prompt: 'Name three uses of a sluice gate.', maxRetries: 0 });
console.log(text);

const result = streamText({
  model,
  prompt: 'And three more.',
  maxRetries: 0,
  providerOptions: { sluice: { tags: { tenant: 'acme' } } }, // tags for keyed limits and cost reports
});
for await (const delta of result.textStream) process.stdout.write(delta);
