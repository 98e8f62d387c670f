/**
 * Writing your own middleware against the sluice contract, and testing it
 * against the mock upstream. Run: `pnpm tsx --conditions=@sluice/source examples/custom-middleware.ts`.
 */
import { createPipeline, type Middleware, openAICompatible, SluiceError } from '@sluice/core';
import { mockUpstream } from '@sluice/testing';

/** Per-request data of this middleware, typed everywhere through `ctx.state`. */
declare module '@sluice/core' {
  interface SluiceState {
    timing?: { ms: number };
    chunksSeen?: number;
  }
}

/** Logs how long each call took, streams included, once it is completely done. */
export function timing(log: (line: string) => void = console.log): Middleware {
  return async function timing(ctx, next) {
    ctx.onSettled((settled) => {
      ctx.state.timing = { ms: settled.durationMs };
      log(`${ctx.request.model} ${settled.outcome} in ${settled.durationMs} ms (${settled.usage?.total_tokens ?? '?'} tokens)`);
    });
    await next();
  };
}

/** Refuses prompts that mention a forbidden word, without calling the upstream. */
export function guard(word: string): Middleware {
  return async function guard(ctx, next) {
    const text = JSON.stringify(ctx.request.messages);
    if (text.includes(word)) throw new SluiceError('GUARD_REJECTED', `the prompt mentions "${word}"`);
    await next();
  };
}

/**
 * Counts the chunks its caller is handed, in `ctx.state.chunksSeen`: a
 * stream of the middleware's own, an async generator around the
 * transport's chunks. With nothing else watching the call, the call stays
 * in flight while the upstream stream under it is read, so `llm.close()`
 * gives it its grace period, then stops it with `CLOSED`.
 */
export function countChunks(): Middleware {
  return async function countChunks(ctx, next) {
    await next();
    const source = ctx.chunks;
    if (!source) return;
    ctx.state.chunksSeen = 0;
    ctx.chunks = (async function* () {
      for await (const chunk of source) {
        ctx.state.chunksSeen = (ctx.state.chunksSeen ?? 0) + 1;
        yield chunk;
      }
    })();
  };
}

const upstream = await mockUpstream();
const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url }) })
  .use(timing())
  .use(guard('password'));

await llm.complete({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'Hello' }] });
await llm.complete({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'my password is…' }] }).catch((error: unknown) => {
  if (error instanceof SluiceError) console.log(`refused: ${error.code}`);
});
const streamed = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url }) }).use(countChunks());
const ctx = await streamed.run({ model: 'gpt-4.1-mini', messages: [{ role: 'user', content: 'Hello' }], stream: true });
for await (const _chunk of ctx.chunks ?? []) {
  // read to the end
}
console.log(`streamed ${ctx.state.chunksSeen} chunks`);
await streamed.close();
console.log(`the upstream saw ${upstream.requests.length} request(s)`);
await llm.close();
await upstream.close();
