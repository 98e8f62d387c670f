// The quick example of packages/cache/README.md, type-checked in CI and run
// against a mock upstream by readme-run.test.ts.
import { createPipeline, openAICompatible } from '@sluice/core';
import { cache } from '@sluice/cache';
import { trackCost } from '@sluice/cost';
import { retry } from '@sluice/retry';

const llm = createPipeline({
  transport: openAICompatible({
    baseUrl: process.env.OPENAI_BASE_URL ?? 'https://api.deepseek.com/v1',
    apiKey: process.env.OPENAI_API_KEY,
  }),
})
  .use(trackCost()) // outermost: sees a hit as a call that cost $0
  .use(cache({ ttlMs: 3_600_000 })) // temperature 0 or a seed: cached
  .use(retry()); // inside the cache: only a miss is retried

llm.events.on('cache-hit', (e) => console.log(`${e.model}: from the ${e.source}, ${e.ageMs} ms old`));

const request = { model: 'deepseek-v3.2', temperature: 0, messages: [{ role: 'user' as const, content: 'What are sluices for?' }] };
const first = await llm.complete(request); // sent upstream
const again = await llm.complete(request); // answered by the cache: no request, $0
console.log(again.choices[0]?.message.content); // the same answer: again.id === first.id
for await (const chunk of llm.stream({ ...request, seed: 7 })) process.stdout.write(chunk.choices[0]?.delta.content ?? '');
await llm.close();
