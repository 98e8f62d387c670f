// The quick example of packages/ratelimit/README.md, type-checked in CI and
// run against a mock upstream by readme-run.test.ts.
import { createPipeline, openAICompatible } from '@sluice/core';
import { rateLimit } from '@sluice/ratelimit';

// At most 100 requests and 200 000 tokens in any 60 s window, and 50 in flight, per tenant.
const llm = createPipeline({
  transport: openAICompatible({
    baseUrl: process.env.OPENAI_BASE_URL ?? 'https://api.deepseek.com/v1',
    apiKey: process.env.OPENAI_API_KEY,
  }),
}).use(rateLimit({ rpm: 100, tpm: 200_000, concurrency: 50, key: { tag: 'tenant' } }));

llm.events.on('limit-wait', (e) => console.info(`${e.key}: waiting ${e.waitMs} ms for ${e.limit} (${e.queued} queued)`));
llm.events.on('store-error', (e) => console.warn(`${e.name}: store failed, policy ${e.policy}`));

// Over the limit it waits; a 60 s deadline bounds the wait like everything else.
const reply = await llm.complete(
  { model: 'deepseek-v3.2', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 800 },
  { timeoutMs: 60_000, tags: { tenant: 'acme' } },
);
console.log(reply.choices[0]?.message.content);
await llm.close();
