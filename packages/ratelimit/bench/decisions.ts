/*
 * A micro-measure of limiter decisions per second (not a test). Run from the
 * repo root:  npx tsx --conditions=@sluice/source packages/ratelimit/bench/decisions.ts
 *
 * 1. the engine alone: acquire + finish (with a token correction) on the memory store;
 * 2. a whole pipeline call with rateLimit() against an in-process transport,
 *    beside the same pipeline without it, to show the middleware's share.
 */
import { createEmitter, createPipeline, memoryStore, systemClock, type Transport } from '@sluice/core';
import { Limiter } from '../src/limiter.js';
import { rateLimit } from '../src/index.js';


async function engine(keys: number, count: number): Promise<number> {
  const store = memoryStore();
  const limiter = new Limiter({
    requests: { limit: 1e9, windowMs: 60_000 }, tokens: { limit: 1e12, windowMs: 60_000 }, concurrency: 1_000, mode: 'wait',
    maxWaitMs: Infinity, maxQueue: Infinity, store: undefined, prefix: 'bench',
  });
  const caller = { id: 'b', clock: systemClock, events: createEmitter(), signal: new AbortController().signal, store, remainingMs: () => Infinity };
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const ticket = await limiter.acquire(caller, `k${i % keys}`, 1_000);
    await limiter.finish(ticket, caller, { usedTokens: 400 });
  }
  return count / ((performance.now() - started) / 1000);
}

async function pipeline(withLimit: boolean, count: number): Promise<number> {
  const transport: Transport = {
    name: 'memory',
    origin: 'memory://',
    async send(ctx) {
      ctx.response = {
        id: 'x', object: 'chat.completion', created: 0, model: ctx.request.model,
        choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 10, completion_tokens: 1, total_tokens: 11 },
      };
      ctx.usage = ctx.response.usage ?? undefined;
    },
  };
  const llm = createPipeline({ transport });
  if (withLimit) llm.use(rateLimit({ rpm: 1e9, tpm: 1e12, concurrency: 1_000 }));
  const request = { model: 'm', messages: [{ role: 'user' as const, content: 'Hello there, how are you?' }] };
  const started = performance.now();
  for (let i = 0; i < count; i++) await llm.complete(request);
  return count / ((performance.now() - started) / 1000);
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
for (const keys of [1, 1_000]) {
  await engine(keys, 20_000);
  console.log(`engine, ${keys} key(s): ${fmt(await engine(keys, 200_000))} admit+settle decisions/s`);
}
await pipeline(true, 5_000);
await pipeline(false, 5_000);
console.log(`pipeline without rateLimit: ${fmt(await pipeline(false, 50_000))} calls/s`);
console.log(`pipeline with rateLimit (rpm + tpm + concurrency): ${fmt(await pipeline(true, 50_000))} calls/s`);
