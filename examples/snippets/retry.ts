// The quick example of packages/retry/README.md, type-checked in CI and run
// against a mock upstream by readme-run.test.ts.
import { createPipeline, openAICompatible } from '@sluice/core';
import { retry } from '@sluice/retry';

const llm = createPipeline({
  transport: openAICompatible({
    baseUrl: process.env.OPENAI_BASE_URL ?? 'https://api.deepseek.com/v1',
    apiKey: process.env.OPENAI_API_KEY,
  }),
}).use(retry({ attempts: 3 }));

llm.events.on('retry', (e) => console.warn(`${e.code}: attempt ${e.attempt} in ${e.delayMs} ms`));

// 60 s for the whole call: every attempt, every wait, everything downstream.
const reply = await llm.complete(
  { model: 'deepseek-v3.2', messages: [{ role: 'user', content: 'Hello' }] },
  { timeoutMs: 60_000 },
);
console.log(reply.choices[0]?.message.content);
await llm.close();
