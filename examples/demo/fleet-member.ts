/**
 * One process of the demo's "three processes, one limit": its own
 * pipeline, its own Redis connection, the fleet's one limit. Started by
 * fleet.ts as `node fleet-member.ts <redis url> <upstream url> <name>`.
 */
import { createPipeline, openAICompatible } from '@sluice/core';
import { rateLimit } from '@sluice/ratelimit';
import { redisStore } from '@sluice/redis';
import { createClient } from 'redis';

const [redisUrl, baseUrl, name] = process.argv.slice(2) as [string, string, string];
const client = createClient({ url: redisUrl });
client.on('error', () => undefined);
await client.connect();

// A store call waits at most 500 ms for Redis here, not the default 50: three processes, the demo and
// Redis share this machine's cores, and a member starved of CPU for longer than the default (its own
// first calls still compiling, say) would see a store error, and under the `open` policy let a call
// through without the limit. In production Redis has its own machine and the default fits.
const store = redisStore({ client, timeoutMs: 500 });
// Connected and the clock measured: tell fleet.ts, and wait until all three are, so they start together.
await store.syncClock();
console.log('ready');
await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
const llm = createPipeline({ transport: openAICompatible({ baseUrl, apiKey: 'sk-demo' }), store, clock: store.clock })
  // 10 requests a second for the whole fleet, not for each process. The window is padded by half a
  // second: the upstream counts arrivals, each a transit after its booking (the redis README's
  // "Arrival times at the upstream").
  .use(rateLimit({ requests: { limit: 10, windowMs: 1_500 } }))
  // When the fleet's window booked the call, on the fleet's one clock (none if it went unrecorded): fleet.ts checks these.
  .use(async function stampAdmission(ctx, next) {
    ctx.request = { ...ctx.request, metadata: { ...ctx.request.metadata, admitted_at: String(ctx.state.ratelimit?.admittedAt) } };
    await next();
  });

let waits = 0;
let storeErrors = 0;
let storeError: string | undefined;
llm.events.on('limit-wait', () => waits++);
llm.events.on('store-error', (event) => {
  storeErrors++;
  storeError ??= `${event.operation} ${event.key}: ${event.error instanceof Error ? event.error.message : String(event.error)}`;
});
const replies = await Promise.allSettled(
  Array.from({ length: 15 }, (_, n) => llm.complete({ model: 'deepseek-v3.2', messages: [{ role: 'user', content: `${name} asks ${n}` }] })),
);
console.log(JSON.stringify({ name, ok: replies.filter((reply) => reply.status === 'fulfilled').length, waits, storeErrors, storeError }));
await llm.close();
await client.close();
