/**
 * The README's fifteen lines, type-checked in CI so the README never drifts.
 */
import { createPipeline, openAICompatible } from '@sluice/core';
import { retry } from '@sluice/retry';
import { breaker } from '@sluice/breaker';
import { rateLimit } from '@sluice/ratelimit';

const llm = createPipeline({
  transport: openAICompatible({ baseUrl: 'https://api.deepseek.com/v1', apiKey: process.env.DEEPSEEK_API_KEY }),
})
  .use(retry({ attempts: 3 }))
  .use(breaker({ failures: 10, openMs: 30_000 }))
  .use(rateLimit({ rpm: 100 }));

const reply = await llm.complete({ model: 'deepseek-chat', messages: [{ role: 'user', content: 'Hello' }] });
for await (const chunk of llm.stream({ model: 'deepseek-chat', messages: [{ role: 'user', content: 'Tell me more' }] }))
  process.stdout.write(chunk.choices[0]?.delta.content ?? '');
