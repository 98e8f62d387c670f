// The quick example of packages/cache/README.md, type-checked in CI.
import { apiKey, log, messages } from './declarations.js';

import { createPipeline, openAICompatible } from '@sluice/core';
import { cache, lruStorage } from '@sluice/cache';
import { trackCost } from '@sluice/cost';
import { retry } from '@sluice/retry';

const llm = createPipeline({ transport: openAICompatible({ baseUrl: 'https://api.deepseek.com/v1', apiKey }) })
  .use(trackCost()) // outermost: sees a hit as a $0 call
  .use(cache({ ttlMs: 3_600_000, storage: lruStorage({ maxEntries: 10_000, maxBytes: 64 * 1024 * 1024 }) }))
  .use(retry()); // inside the cache: only a miss is retried

llm.events.on('cache-hit', (e) => log.info(`${e.model} answered from the ${e.source}, ${e.ageMs} ms old`));
const first = await llm.complete({ model: 'deepseek-v3.2', temperature: 0, messages }); // upstream
const again = await llm.complete({ model: 'deepseek-v3.2', temperature: 0, messages }); // the cache: no request
for await (const chunk of llm.stream({ model: 'deepseek-v3.2', seed: 7, messages }))
  process.stdout.write(chunk.choices[0]?.delta.content ?? '');
