// The quick example of packages/redis/README.md, type-checked in CI (it needs a Redis server to run).
import { createPipeline, openAICompatible } from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { budget, trackCost } from '@sluice/cost';
import { rateLimit } from '@sluice/ratelimit';
import { redisStore } from '@sluice/redis';
import { createClient } from 'redis';

const client = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
client.on('error', (error) => console.warn('redis:', error)); // the client reconnects by itself
await client.connect();

const store = redisStore({ client, prefix: 'myapp:' });
const costs = trackCost();                                            // one spend ledger for the fleet
const llm = createPipeline({
  transport: openAICompatible({ baseUrl: process.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1', apiKey: process.env.OPENAI_API_KEY }),
  store,
  clock: store.clock,                                                 // every instance on Redis's time
})
  .use(costs)
  .use(budget({ limitUsd: 50, period: 'day' }))                       // one budget for the fleet
  .use(breaker({ failures: 10, openMs: 30_000 }))                     // failures counted across instances
  .use(rateLimit({ rpm: 100, onStoreError: 'memory' }))               // 100 a minute in total
  .use(rateLimit({ key: { tag: 'tenant' }, tpm: 50_000 }));           // per tenant, fleet-wide

llm.events.on('store-error', (e) => console.warn(`${e.name} store failed, policy ${e.policy}`));
const reply = await llm.complete({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'What is a sluice for?' }] }, { tags: { tenant: 'acme' } });
console.log(reply.choices[0]?.message.content);
console.log(await costs.ledger.report({ by: 'model' }));              // from any instance
await llm.close();
await client.close();
