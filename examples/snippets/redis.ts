// The quick example of packages/redis/README.md, type-checked in CI.
import { apiKey, baseUrl, log } from './declarations.js';

import { createPipeline, openAICompatible } from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { budget } from '@sluice/cost';
import { rateLimit } from '@sluice/ratelimit';
import { redisStore } from '@sluice/redis';
import { createClient } from 'redis';

const client = createClient({ url: process.env.REDIS_URL });
client.on('error', (error) => log.warn(error)); // the client reconnects by itself
await client.connect();

const store = redisStore({ client, prefix: 'myapp:' });
const llm = createPipeline({ transport: openAICompatible({ baseUrl, apiKey }), store, clock: store.clock })
  .use(budget({ limitUsd: 50, period: 'day' }))                       // one budget for the fleet
  .use(breaker({ failures: 10, openMs: 30_000 }))                     // failures counted across instances
  .use(rateLimit({ rpm: 100, onStoreError: 'memory' }))               // 100 a minute in total
  .use(rateLimit({ key: { tag: 'tenant' }, tpm: 50_000 }));           // per tenant, fleet-wide

llm.events.on('store-error', (e) => log.warn(`${e.name} store failed, policy ${e.policy}`));
