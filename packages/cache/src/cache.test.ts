import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createPipeline, memoryStore, openAICompatible } from '@sluice/core';
import { mockUpstream } from '@sluice/testing';
import { readAhead, streamReading } from '@sluice/core/kit';
import { chat, closeTestPipelines, collect, drain, manualClock, testPipeline } from '@sluice/testing/kit';
import { afterEach, describe, expect, it } from 'vitest';
import { cache } from './cache.js';
import { storeBackend } from './cache-storage.js';
import { lruStorage } from './lru-storage.js';
import type { CacheState } from './events.js';
import './index.js';

afterEach(closeTestPipelines);

const cold = (content = 'What is 2 + 2?', extra = {}) => chat(content, { temperature: 0, ...extra });
const streamed = (content = 'Tell me a story', extra = {}) => chat(content, { temperature: 0, stream: true, ...extra });

/** A pipeline with the cache outermost and a middleware outside it that keeps each call's cache state. */
async function cached(options: Parameters<typeof cache>[0] = {}, upstream = {}) {
  const states: Array<CacheState | undefined> = [];
  const answeredBy: Array<string | undefined> = [];
  const harness = await testPipeline({
    middleware: [
      async function observe(ctx, next) {
        await next();
        states.push(ctx.state.cache);
        answeredBy.push(ctx.state.answeredBy);
      },
      cache(options),
    ],
    upstream,
  });
  return { ...harness, states, answeredBy };
}

describe('cache: completions', () => {
  it('answers a repeated deterministic request from the cache, with the usage it cost', async () => {
    const { llm, clock, upstream, states, answeredBy } = await cached();
    const first = await clock.run(llm.complete(cold()));
    const again = await clock.run(llm.complete(cold()));
    expect(upstream.requests).toHaveLength(1);
    expect(again).toEqual(first);
    expect(again).not.toBe(first);
    expect(states.map((state) => state?.status)).toEqual(['miss', 'hit']);
    expect(answeredBy).toEqual([undefined, 'cache']);
    expect(states[1]?.savedUsage).toEqual(first.usage);
  });

  it('hands each caller its own copy: changing a reply changes nothing stored', async () => {
    const { llm, clock } = await cached();
    const first = await clock.run(llm.complete(cold()));
    const original = structuredClone(first);
    (first.choices[0] as { message: { content: string } }).message.content = 'changed';
    expect(await clock.run(llm.complete(cold()))).toEqual(original);
  });

  it('keys on the request regardless of the order of its JSON keys', async () => {
    const { llm, clock, upstream } = await cached();
    await clock.run(llm.complete({ model: 'gpt-4.1', temperature: 0, messages: [{ role: 'user', content: 'Hi' }] }));
    await clock.run(llm.complete({ temperature: 0, messages: [{ content: 'Hi', role: 'user' }], model: 'gpt-4.1' }));
    expect(upstream.requests).toHaveLength(1);
  });

  it('sends a request that differs in anything that changes the answer', async () => {
    const { llm, clock, upstream } = await cached();
    await clock.run(llm.complete(cold('Hi')));
    await clock.run(llm.complete(cold('Hi!')));
    await clock.run(llm.complete(cold('Hi', { model: 'deepseek-v3.2' })));
    await clock.run(llm.complete(cold('Hi', { max_tokens: 10 })));
    await clock.run(llm.complete(chat('Hi', { seed: 7 } as object)));
    await clock.run(llm.complete(chat('Hi', { seed: 8 } as object)));
    expect(upstream.requests).toHaveLength(6);
    // `user` names who asked, not what: it does not change the answer.
    await clock.run(llm.complete(cold('Hi', { user: 'someone-else' })));
    expect(upstream.requests).toHaveLength(6);
  });

  it('caches by default only temperature 0 or an explicit seed', async () => {
    const { llm, clock, upstream, states } = await cached();
    await clock.run(llm.complete(chat('Hi', { temperature: 0.7 })));
    await clock.run(llm.complete(chat('Hi', { temperature: 0.7 })));
    await clock.run(llm.complete(chat('Hi')));
    expect(upstream.requests).toHaveLength(3);
    expect(states.every((state) => state?.status === 'bypass')).toBe(true);
  });

  it('follows a call tag: on caches, off bypasses, refresh fetches anew and stores it', async () => {
    const { llm, clock, upstream, states } = await cached();
    await clock.run(llm.complete(chat('Hi', { temperature: 1 }), { tags: { cache: 'on' } }));
    await clock.run(llm.complete(chat('Hi', { temperature: 1 }), { tags: { cache: 'on' } }));
    expect(upstream.requests).toHaveLength(1);
    await clock.run(llm.complete(cold('Hi'), { tags: { cache: 'off' } }));
    await clock.run(llm.complete(cold('Hi')));
    await clock.run(llm.complete(cold('Hi'), { tags: { cache: 'refresh' } }));
    await clock.run(llm.complete(cold('Hi')));
    expect(upstream.requests).toHaveLength(4);
    expect(states.map((state) => state?.status)).toEqual(['miss', 'hit', 'bypass', 'miss', 'miss', 'hit']);
  });

  it('takes a predicate of its own', async () => {
    const { llm, clock, upstream } = await cached({ when: (_request, ctx) => ctx.tags.feature === 'faq' });
    await clock.run(llm.complete(chat('Hi', { temperature: 1 }), { tags: { feature: 'faq' } }));
    await clock.run(llm.complete(chat('Hi', { temperature: 1 }), { tags: { feature: 'faq' } }));
    await clock.run(llm.complete(cold('Hi')));
    await clock.run(llm.complete(cold('Hi')));
    expect(upstream.requests).toHaveLength(3);
  });

  it('serves an answer for ttlMs, then asks again', async () => {
    const { llm, clock, upstream } = await cached({ ttlMs: 60_000 });
    await clock.run(llm.complete(cold()));
    await clock.advanceAsync(59_000);
    await clock.run(llm.complete(cold()));
    expect(upstream.requests).toHaveLength(1);
    await clock.advanceAsync(1_000);
    await clock.run(llm.complete(cold()));
    expect(upstream.requests).toHaveLength(2);
  });

  it('keeps tenants apart with a keyed scope', async () => {
    const { llm, clock, upstream } = await cached({ key: { tag: 'tenant' } });
    await clock.run(llm.complete(cold(), { tags: { tenant: 'a' } }));
    await clock.run(llm.complete(cold(), { tags: { tenant: 'b' } }));
    await clock.run(llm.complete(cold(), { tags: { tenant: 'a' } }));
    expect(upstream.requests).toHaveLength(2);
  });

  it('never stores an error, and the next call asks again', async () => {
    const { llm, clock, upstream } = await cached();
    upstream.enqueue({ kind: 'status', status: 500 });
    await expect(clock.run(llm.complete(cold()))).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    const reply = await clock.run(llm.complete(cold()));
    expect(reply.choices[0]?.message.content).toContain('Echo');
    expect(upstream.requests).toHaveLength(2);
    await clock.run(llm.complete(cold()));
    expect(upstream.requests).toHaveLength(2);
  });

  /**
   * A pipeline whose middleware inside the cache puts a BigInt (which JSON
   * cannot write) into the answer, its third chunk for a stream, until
   * `spoil` is set false.
   */
  const spoiling = async () => {
    const control = { spoil: true };
    const harness = await testPipeline({
      middleware: [
        cache(),
        async function addBigInt(ctx, next) {
          await next();
          if (!control.spoil) return;
          if (ctx.response) Object.assign(ctx.response, { tokens: 1n });
          const chunks = ctx.chunks;
          if (!chunks) return;
          ctx.chunks = (async function* spoiled() {
            let index = 0;
            for await (const chunk of chunks) yield index++ === 2 ? Object.assign(chunk, { tokens: 1n }) : chunk;
          })();
        },
      ],
    });
    return { ...harness, control };
  };

  it('lets the next identical call go upstream after an answer it could not serialise', async () => {
    const { llm, clock, upstream, control } = await spoiling();
    await expect(clock.run(llm.complete(cold()))).rejects.toMatchObject({ code: 'UNEXPECTED' });
    control.spoil = false;
    await clock.run(llm.complete(cold()));
    await clock.run(llm.complete(cold()));
    expect(upstream.requests).toHaveLength(2);
  });

  it('fails a stream whose chunk it cannot serialise, keeps none of it, and sends the next identical stream upstream', async () => {
    const { llm, clock, upstream, control } = await spoiling();
    await expect(clock.run(collect(llm.stream(streamed())))).rejects.toMatchObject({ code: 'UNEXPECTED' });
    control.spoil = false;
    const whole = await clock.run(collect(llm.stream(streamed())));
    expect(await clock.run(collect(llm.stream(streamed())))).toEqual(whole);
    expect(upstream.requests).toHaveLength(2);
  });

  it('emits cache-miss and cache-hit with the saved usage', async () => {
    const { llm, clock, events } = await cached();
    const first = await clock.run(llm.complete(cold()));
    await clock.advanceAsync(5_000);
    await clock.run(llm.complete(cold()));
    expect(events.names().filter((name) => name.startsWith('cache-'))).toEqual(['cache-miss', 'cache-hit']);
    const [hit] = events.of('cache-hit');
    expect(hit).toMatchObject({ source: 'storage', stream: false, savedUsage: first.usage });
    // clock.run moves time in 50 ms steps while it waits.
    expect(hit?.ageMs).toBeGreaterThanOrEqual(5_000);
    expect(hit?.ageMs).toBeLessThanOrEqual(5_100);
  });
});

describe('cache: streams', () => {
  it('replays a stream chunk for chunk, with its usage', async () => {
    const { llm, clock, upstream, states } = await cached();
    const first = await clock.run(collect(llm.stream(streamed('one two three four five six'))));
    const again = await clock.run(collect(llm.stream(streamed('one two three four five six'))));
    expect(upstream.requests).toHaveLength(1);
    expect(first.length).toBeGreaterThan(3);
    expect(again).toEqual(first);
    expect(states.map((state) => state?.status)).toEqual(['miss', 'hit']);
    expect(states[1]?.key).toMatch(/^stream:/);
  });

  it("stores each chunk as the upstream's own text when nothing inside read the stream, and replays it as it came", async () => {
    const storage = lruStorage();
    const { llm, clock, upstream, states } = await cached({ storage });
    // The upstream's spacing, which serialising the chunks again would not keep.
    upstream.enqueue({ kind: 'raw', chunks: (chunks) => chunks.map((chunk) => JSON.stringify(chunk).replaceAll(',"', ', "')) });
    const first = await clock.run(collect(llm.stream(streamed('one two three'))));
    const entry = storage.getSync(`sluice:cache:global:${states[0]?.key}`) ?? '';
    expect(entry).toContain('"chunks":[{"id":"chatcmpl-mock-1", "object":');
    expect(entry.match(/, "object":/g)).toHaveLength(first.length);
    expect(await clock.run(collect(llm.stream(streamed('one two three'))))).toEqual(first);
    expect(upstream.requests).toHaveLength(1);
  });

  it("keeps the upstream's text behind a middleware inside that reads the first chunk ahead through core, as retry does", async () => {
    const storage = lruStorage();
    const states: Array<CacheState | undefined> = [];
    const { llm, clock, upstream } = await testPipeline({
      middleware: [
        async function observe(ctx, next) {
          await next();
          states.push(ctx.state.cache);
        },
        cache({ storage }),
        async function firstChunk(ctx, next) {
          await next();
          await readAhead(ctx);
        },
      ],
    });
    upstream.enqueue({ kind: 'raw', chunks: (chunks) => chunks.map((chunk) => JSON.stringify(chunk).replaceAll(',"', ', "')) });
    const first = await clock.run(collect(llm.stream(streamed('one two three'))));
    const entry = storage.getSync(`sluice:cache:global:${states[0]?.key}`) ?? '';
    expect(entry.match(/, "object":/g)).toHaveLength(first.length);
    expect(await clock.run(collect(llm.stream(streamed('one two three'))))).toEqual(first);
  });

  it('keeps streams and completions apart, each replayed as what it was', async () => {
    const { llm, clock, upstream } = await cached();
    await clock.run(collect(llm.stream(streamed('Hi'))));
    const completion = await clock.run(llm.complete(cold('Hi')));
    expect(upstream.requests).toHaveLength(2);
    expect(completion.object).toBe('chat.completion');
  });

  it('never stores a cut stream', async () => {
    const { llm, clock, upstream } = await cached();
    upstream.enqueue({ kind: 'cut', afterChunks: 2 });
    const cut = await clock.run(drain(llm.stream(streamed())));
    expect(cut.error).toMatchObject({ code: 'STREAM_CUT' });
    const whole = await clock.run(collect(llm.stream(streamed())));
    await clock.run(collect(llm.stream(streamed())));
    expect(upstream.requests).toHaveLength(2);
    expect(whole.length).toBeGreaterThan(cut.chunks.length);
  });

  it('never stores a stream its reader left before the end', async () => {
    const { llm, clock, upstream } = await cached();
    const read = async () => {
      for await (const _chunk of llm.stream(streamed())) break;
    };
    await clock.run(read());
    await clock.run(collect(llm.stream(streamed())));
    expect(upstream.requests).toHaveLength(2);
  });
});

describe('cache: single flight', () => {
  it('sends 100 identical concurrent calls upstream once', async () => {
    const { llm, clock, upstream, states, answeredBy } = await cached({}, { latencyMs: 200 });
    const replies = await clock.run(Promise.all(Array.from({ length: 100 }, () => llm.complete(cold()))));
    expect(upstream.requests).toHaveLength(1);
    expect(new Set(replies.map((reply) => JSON.stringify(reply))).size).toBe(1);
    expect(states.filter((state) => state?.status === 'shared')).toHaveLength(99);
    expect(answeredBy.filter((by) => by === 'cache')).toHaveLength(99);
  });

  it('sends identical concurrent calls upstream once over a storage that answers asynchronously too', async () => {
    const store = memoryStore();
    const { llm, clock, upstream, states } = await cached({ storage: storeBackend(store) }, { latencyMs: 200 });
    await clock.run(Promise.all(Array.from({ length: 20 }, () => llm.complete(cold()))));
    expect(upstream.requests).toHaveLength(1);
    expect(states.filter((state) => state?.status === 'shared')).toHaveLength(19);
    await clock.run(llm.complete(cold()));
    expect(states.at(-1)?.status).toBe('hit');
    expect(store.size).toBe(1);
  });

  it('tees one upstream stream to 100 identical concurrent streams, chunk for chunk', async () => {
    const { llm, clock, upstream, states } = await cached({}, { latencyMs: 100, chunkDelayMs: 10 });
    const all = await clock.run(Promise.all(Array.from({ length: 100 }, () => collect(llm.stream(streamed('a b c d e f'))))));
    expect(upstream.requests).toHaveLength(1);
    for (const chunks of all) expect(chunks).toEqual(all[0]);
    expect(states.filter((state) => state?.status === 'shared' && state.savedUsage?.total_tokens)).toHaveLength(99);
    expect(all[0]?.length).toBeGreaterThan(3);
    // And it was stored whole.
    expect(await clock.run(collect(llm.stream(streamed('a b c d e f'))))).toEqual(all[0]);
    expect(upstream.requests).toHaveLength(1);
  });

  it("answers next()s asked at once in order on a miss, a hit and a joined stream (run()'s ctx.chunks)", async () => {
    const { llm, clock, upstream } = await cached({}, { latencyMs: 100, chunkDelayMs: 10 });
    const deltas = (results: Array<IteratorResult<unknown>>) =>
      results.filter((result) => !result.done).map((result) => (result.value as { choices: Array<{ delta: unknown }> }).choices[0]?.delta);
    const atOnce = async (chunks: unknown) => {
      const reader = (chunks as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      return Promise.all(Array.from({ length: 12 }, () => reader.next()));
    };
    const sender = await clock.run(llm.run(streamed('a b c d e f')));
    const joiner = await clock.run(llm.run(streamed('a b c d e f')));
    // Before, each read asked before the last landed got the same chunk again.
    const [sent, joined] = await clock.run(Promise.all([atOnce(sender.chunks), atOnce(joiner.chunks)]));
    const hit = await clock.run(llm.run(streamed('a b c d e f')));
    // Each says no read is under way, so stream() passes its reads straight through (see streamReading).
    for (const chunks of [sender.chunks, joiner.chunks, hit.chunks]) expect((chunks as unknown as Record<symbol, unknown>)[streamReading]).toBe(false);
    const replayed = await clock.run(atOnce(hit.chunks));
    // Through stream(), which passes a read straight through while none is under way.
    const streamedHit = await clock.run(atOnce(llm.stream(streamed('a b c d e f'))));
    const expected = await clock.run(collect(llm.stream(streamed('a b c d e f'))));
    expect(expected.length).toBeGreaterThan(3);
    const wanted = expected.map((chunk) => chunk.choices[0]?.delta);
    for (const results of [sent, joined, replayed, streamedHit]) {
      expect(deltas(results)).toEqual(wanted);
      expect(results.slice(expected.length).every((result) => result.done)).toBe(true);
    }
    expect(upstream.requests).toHaveLength(1);
  });

  it('shares an upstream error with the calls that joined, and stores nothing', async () => {
    const { llm, clock, upstream } = await cached({}, { latencyMs: 100 });
    upstream.enqueue({ kind: 'status', status: 503 });
    const results = await clock.run(Promise.allSettled([llm.complete(cold()), llm.complete(cold()), llm.complete(cold())]));
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(upstream.requests).toHaveLength(1);
    // A call after the failure is not handed it: it sends its own request.
    await clock.run(llm.complete(cold()));
    expect(upstream.requests).toHaveLength(2);
  });

  it('cuts every joined stream when the shared one is cut, and a later call sends its own', async () => {
    const { llm, clock, upstream } = await cached({}, { latencyMs: 100, chunkDelayMs: 10 });
    upstream.enqueue({ kind: 'cut', afterChunks: 2 });
    const both = await clock.run(Promise.all([drain(llm.stream(streamed('a b c d e f'))), drain(llm.stream(streamed('a b c d e f')))]));
    expect(both.map((read) => read.error)).toMatchObject([{ code: 'STREAM_CUT' }, { code: 'STREAM_CUT' }]);
    expect(both[1]?.chunks).toEqual(both[0]?.chunks);
    expect(upstream.requests).toHaveLength(1);
    const whole = await clock.run(drain(llm.stream(streamed('a b c d e f'))));
    expect(whole.error).toBeUndefined();
    expect(upstream.requests).toHaveLength(2);
  });

  it('lets a call that was aborted before it joined leave, and the flight fail later, with no stray rejection', async () => {
    const { llm, clock, upstream } = await cached({}, { latencyMs: 100 });
    upstream.enqueue({ kind: 'status', status: 500 });
    const sender = llm.complete(cold());
    sender.catch(() => {});
    await clock.until(() => upstream.requests.length === 1);
    await expect(llm.complete(cold(), { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' });
    // The flight fails after the aborted call left: vitest fails the run on an unhandled rejection.
    await expect(clock.run(sender)).rejects.toMatchObject({ status: 500 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(upstream.requests).toHaveLength(1);
  });

  it('sends again for the joined calls when the sender aborted its own call', async () => {
    const { llm, clock, upstream } = await cached({}, { latencyMs: 100 });
    const controller = new AbortController();
    const sender = llm.complete(cold(), { signal: controller.signal });
    sender.catch(() => {});
    await clock.until(() => upstream.requests.length === 1);
    const joined = llm.complete(cold());
    await clock.settle();
    controller.abort();
    await expect(sender).rejects.toMatchObject({ code: 'ABORTED' });
    const reply = await clock.run(joined);
    expect(reply.choices[0]?.message.content).toContain('Echo');
    expect(upstream.requests).toHaveLength(2);
  });

  it('ends a joined stream at its own abort, mid-stream, while the others read to the end', async () => {
    const { llm, clock, upstream } = await cached({}, { latencyMs: 100, chunkDelayMs: 10 });
    const controller = new AbortController();
    const sender = collect(llm.stream(streamed('a b c d e f')));
    await clock.until(() => upstream.requests.length === 1);
    const leaving = (async () => {
      let read = 0;
      for await (const _chunk of llm.stream(streamed('a b c d e f'), { signal: controller.signal })) {
        if (++read === 2) controller.abort();
      }
      return read;
    })();
    const other = collect(llm.stream(streamed('a b c d e f')));
    await expect(clock.run(leaving)).rejects.toMatchObject({ code: 'ABORTED' });
    const [first, second] = await clock.run(Promise.all([sender, other]));
    expect(second).toEqual(first);
    expect(first?.length).toBeGreaterThan(3);
    expect(upstream.requests).toHaveLength(1);
  });

  it('ends a joined stream waiting for its next chunk at its own deadline, and the others read on', async () => {
    const { llm, clock, upstream } = await cached({}, { latencyMs: 100, chunkDelayMs: 100 });
    const sender = collect(llm.stream(streamed('a b c d e f')));
    await clock.until(() => upstream.requests.length === 1);
    const late = drain(llm.stream(streamed('a b c d e f'), { timeoutMs: 350 }));
    const whole = await clock.run(sender);
    const cut = await clock.run(late);
    expect(cut.error).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(cut.chunks.length).toBeGreaterThan(0);
    expect(cut.chunks.length).toBeLessThan(whole.length);
    expect(upstream.requests).toHaveLength(1);
  });

  /** The cache, with a middleware inside it that hears how each upstream request ended (and, with `wrap`, wraps its stream). */
  async function withInner(wrap = false, upstream: object = { latencyMs: 100, chunkDelayMs: 10 }) {
    const upstreamEnds: string[] = [];
    const harness = await testPipeline({
      middleware: [
        cache(),
        async function inner(ctx, next) {
          await next();
          ctx.onSettled((settlement) => void upstreamEnds.push(settlement.outcome));
          if (wrap && ctx.chunks) {
            const chunks = ctx.chunks;
            ctx.chunks = (async function* () {
              yield* chunks;
            })();
          }
        },
      ],
      upstream,
    });
    return { ...harness, upstreamEnds };
  }

  /** A stream call that aborts its own call after reading `chunks` chunks. */
  const leavesAfter = (llm: Awaited<ReturnType<typeof withInner>>['llm'], chunks: number) => {
    const controller = new AbortController();
    const reading = (async () => {
      let read = 0;
      for await (const _chunk of llm.stream(streamed('a b c d e f'), { signal: controller.signal })) {
        if (++read === chunks) controller.abort();
      }
    })();
    reading.catch(() => {});
    return reading;
  };

  it('reads the shared stream on for the joined calls when the sender is aborted mid-stream, and keeps it', async () => {
    const { llm, clock, upstream, upstreamEnds } = await withInner();
    const sender = leavesAfter(llm, 2);
    await clock.until(() => upstream.requests.length === 1);
    const joined = drain(llm.stream(streamed('a b c d e f')));
    await expect(clock.run(sender)).rejects.toMatchObject({ code: 'ABORTED' });
    const read = await clock.run(joined);
    expect(read.error).toBeUndefined();
    expect(read.chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toContain('a b c d e f');
    // The upstream request was read to its end, once, and what it answered was kept.
    expect(upstreamEnds).toEqual(['success']);
    expect(await clock.run(collect(llm.stream(streamed('a b c d e f'))))).toEqual(read.chunks);
    expect(upstream.requests).toHaveLength(1);
  });

  it('cancels the shared upstream request once the sender and every joined call have left, and keeps nothing', async () => {
    const { llm, clock, upstream, upstreamEnds } = await withInner();
    const sender = leavesAfter(llm, 2);
    await clock.until(() => upstream.requests.length === 1);
    const joined = leavesAfter(llm, 5);
    await expect(clock.run(sender)).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(clock.run(joined)).rejects.toMatchObject({ code: 'ABORTED' });
    await clock.settle();
    expect(upstreamEnds).toHaveLength(1);
    expect(upstreamEnds[0]).not.toBe('success');
    await clock.run(collect(llm.stream(streamed('a b c d e f'))));
    expect(upstream.requests).toHaveLength(2);
  });

  it('ends a stream nobody joined at its sender\'s abort, as the call alone would', async () => {
    const { llm, clock, upstream, upstreamEnds } = await withInner();
    await expect(clock.run(leavesAfter(llm, 2))).rejects.toMatchObject({ code: 'ABORTED' });
    await clock.settle();
    expect(upstreamEnds).toEqual(['error']);
    expect(upstream.requests).toHaveLength(1);
  });

  it("ends the sender's read at its own deadline while the joined call reads the shared stream on", async () => {
    const { llm, clock, upstream, upstreamEnds } = await withInner(false, { latencyMs: 100, chunkDelayMs: 100 });
    const sender = drain(llm.stream(streamed('a b c d e f g h i j k l'), { timeoutMs: 350 }));
    await clock.until(() => upstream.requests.length === 1);
    const joined = drain(llm.stream(streamed('a b c d e f g h i j k l')));
    const start = clock.now();
    const cut = await clock.run(sender);
    expect(cut.error).toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    // At the deadline, not at the next chunk or the end of the stream.
    expect(clock.now() - start).toBeLessThanOrEqual(350);
    const whole = await clock.run(joined);
    expect(whole.error).toBeUndefined();
    expect(whole.chunks.length).toBeGreaterThan(cut.chunks.length);
    expect(upstreamEnds).toEqual(['success']);
    expect(upstream.requests).toHaveLength(1);
  });

  /** The cache behind a middleware that keeps, for each call as it settled, who is charged for its request. */
  async function billed() {
    const bills: Array<{ id: string; answeredBy?: string; carriedBy?: string; carries?: true; outcome: string; usage: boolean }> = [];
    const harness = await testPipeline({
      middleware: [
        async function observe(ctx, next) {
          ctx.onSettled((settlement) => {
            bills.push({
              id: ctx.id,
              ...(ctx.state.answeredBy === undefined ? {} : { answeredBy: ctx.state.answeredBy }),
              ...(ctx.state.costCarriedBy === undefined ? {} : { carriedBy: ctx.state.costCarriedBy }),
              ...(ctx.state.cache?.carries ? { carries: true as const } : {}),
              outcome: settlement.outcome,
              usage: settlement.usage !== undefined,
            });
          });
          await next();
        },
        cache(),
      ],
      upstream: { latencyMs: 100, chunkDelayMs: 10 },
    });
    return { ...harness, bills };
  }

  it('charges the joined call that reads the shared stream to its end, not the sender that left it early', async () => {
    const { llm, clock, upstream, bills } = await billed();
    const sender = leavesAfter(llm, 2);
    await clock.until(() => upstream.requests.length === 1);
    const first = drain(llm.stream(streamed('a b c d e f')));
    const second = drain(llm.stream(streamed('a b c d e f')));
    await expect(clock.run(sender)).rejects.toMatchObject({ code: 'ABORTED' });
    await clock.run(Promise.all([first, second]));
    const [left, ...joined] = bills;
    expect(left).toMatchObject({ carriedBy: 'cache', outcome: 'error' });
    expect(left).not.toHaveProperty('answeredBy');
    // One of the two carries the request, with its whole usage; the other was answered by the cache.
    expect(joined).toHaveLength(2);
    expect(joined.filter((bill) => bill.carries)).toEqual([{ id: expect.any(String), carries: true, outcome: 'success', usage: true }]);
    expect(joined.filter((bill) => !bill.carries)).toMatchObject([{ answeredBy: 'cache', outcome: 'success', usage: true }]);
    expect(upstream.requests).toHaveLength(1);
  });

  it('charges the last joined call to leave when none reads the stream its sender left to the end', async () => {
    const { llm, clock, upstream, bills } = await billed();
    const sender = leavesAfter(llm, 1);
    await clock.until(() => upstream.requests.length === 1);
    const joined = leavesAfter(llm, 4);
    await expect(clock.run(sender)).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(clock.run(joined)).rejects.toMatchObject({ code: 'ABORTED' });
    expect(bills).toMatchObject([{ carriedBy: 'cache' }, { carries: true, outcome: 'error' }]);
    expect(bills[1]).not.toHaveProperty('answeredBy');
    expect(upstream.requests).toHaveLength(1);
  });

  it('leaves the sender charged when it reads the shared stream to its end', async () => {
    const { llm, clock, bills } = await billed();
    const sender = drain(llm.stream(streamed('a b c d e f')));
    const joined = leavesAfter(llm, 2);
    await clock.run(sender);
    await clock.run(joined).catch(() => {});
    expect(bills.find((bill) => bill.carriedBy || bill.carries)).toBeUndefined();
    expect(bills.filter((bill) => bill.answeredBy === undefined)).toHaveLength(1);
  });

  it("gives the joined streams a retryable cut, not the sender's own abort, when something inside wrapped the stream", async () => {
    const { llm, clock, upstream } = await withInner(true);
    const sender = leavesAfter(llm, 2);
    await clock.until(() => upstream.requests.length === 1);
    const joined = drain(llm.stream(streamed('a b c d e f')));
    await expect(clock.run(sender)).rejects.toMatchObject({ code: 'ABORTED' });
    const read = await clock.run(joined);
    expect(read.error).toMatchObject({ code: 'STREAM_CUT', retryable: true, cause: { code: 'ABORTED' } });
    // Nothing of it was kept: the next identical call goes upstream.
    await clock.run(collect(llm.stream(streamed('a b c d e f'))));
    expect(upstream.requests).toHaveLength(2);
  });

  it('lets the joined streams finish (and stores it) when the sender stops reading', async () => {
    const { llm, clock, upstream } = await cached({}, { latencyMs: 100, chunkDelayMs: 10 });
    const sender = (async () => {
      for await (const _chunk of llm.stream(streamed('a b c d e f'))) break;
    })();
    const joined = collect(llm.stream(streamed('a b c d e f')));
    await clock.run(sender);
    const chunks = await clock.run(joined);
    expect(chunks.length).toBeGreaterThan(3);
    expect(await clock.run(collect(llm.stream(streamed('a b c d e f'))))).toEqual(chunks);
    expect(upstream.requests).toHaveLength(1);
  });
});

describe('cache: a sender that drops its stream', () => {
  it('lets the joined streams finish when the sender lets its stream go half-read and it is collected', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const { llm, clock, upstream, events } = await cached({}, { latencyMs: 100, chunkDelayMs: 10 });
    // A peek at the first chunk, then nothing refers to the reader: returned for it once collected,
    // as a break would have, so the others read on (an abort of its call would cut them).
    const peek = async () => {
      const reader = llm.stream(streamed('a b c d e f'))[Symbol.asyncIterator]();
      await reader.next();
    };
    const sender = peek();
    const joined = collect(llm.stream(streamed('a b c d e f')));
    await clock.run(sender);
    for (let round = 0; round < 10; round++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const chunks = await clock.run(joined);
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toContain('a b c d e f');
    expect(upstream.requests).toHaveLength(1);
    expect(events.of('response').map((event) => event.outcome).sort()).toEqual(['cancelled', 'success']);
  });
});

describe('cache: a stream nothing watches', () => {
  it('keeps its call in flight until it is read to its end, a miss and a hit alike, so close() waits for it', async () => {
    const upstream = await mockUpstream({ reply: 'one two three four five six' });
    // One storage for both pipelines: the first call stores the answer, the second (on a pipeline of its own) is a hit.
    const storage = lruStorage();
    try {
      for (const expected of ['miss', 'hit']) {
        const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: null }) }).use(cache({ storage }));
        const ctx = await llm.run(streamed('one two three four five six'));
        expect(ctx.state.cache?.status).toBe(expected);
        const reader = (ctx.chunks as AsyncIterable<unknown>)[Symbol.asyncIterator]();
        await reader.next();
        let closed = false;
        const closing = llm.close({ graceMs: 60_000 }).then(() => (closed = true));
        for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
        expect(closed, expected).toBe(false);
        while (!(await reader.next()).done);
        await closing;
        expect(closed).toBe(true);
      }
      expect(upstream.requests).toHaveLength(1);
    } finally {
      await upstream.close();
    }
  });
});

describe('cache: storage', () => {
  it('keeps answers in any core Store through storeBackend, with their TTL', async () => {
    const clock = manualClock();
    const store = memoryStore({ clock });
    const { llm, upstream } = await testPipeline({ clock, middleware: cache({ storage: storeBackend(store), ttlMs: 10_000 }) });
    await clock.run(llm.complete(cold()));
    await clock.run(llm.complete(cold()));
    expect(upstream.requests).toHaveLength(1);
    expect(store.size).toBe(1);
    await clock.advanceAsync(10_000);
    await clock.run(llm.complete(cold()));
    expect(upstream.requests).toHaveLength(2);
  });

  it('treats an entry whose answer or usage the transport would refuse as a miss', async () => {
    const entries = [
      { v: 1, storedAt: 0, expiresAt: 1e300, usage: null, response: { id: 'x' } },
      { v: 1, storedAt: 0, expiresAt: 1e300, usage: { prompt_tokens: 'abc', completion_tokens: 1 }, response: { id: 'x', model: 'm', choices: [] } },
      { v: 1, storedAt: 'then', expiresAt: 1e300, usage: null, response: { id: 'x', model: 'm', choices: [] } },
      { v: 1, storedAt: 0, expiresAt: 1e300, usage: null, chunks: [null] },
      { v: 1, storedAt: 0, expiresAt: 1e300, usage: null, chunks: [{ id: 'c', model: 'm', choices: [{ index: 0, delta: { content: 7 } }] }] },
    ];
    let next = 0;
    const storage = { get: async () => JSON.stringify(entries[next++]), set: async () => {}, delete: async () => {} };
    const { llm, clock, upstream, states } = await cached({ storage });
    for (let call = 0; call < 3; call++) expect((await clock.run(llm.complete(cold()))).choices[0]?.message.content).toContain('Echo');
    for (let call = 0; call < 2; call++) expect((await clock.run(collect(llm.stream(streamed())))).length).toBeGreaterThan(1);
    expect(states.map((state) => state?.status)).toEqual(['miss', 'miss', 'miss', 'miss', 'miss']);
    expect(upstream.requests).toHaveLength(5);
  });

  it('goes upstream and reports store-error when its storage fails', async () => {
    const broken = { get: () => Promise.reject(new Error('down')), set: () => Promise.reject(new Error('down')), delete: async () => {} };
    const { llm, clock, upstream, events } = await cached({ storage: broken });
    await clock.run(llm.complete(cold()));
    await clock.run(llm.complete(cold()));
    expect(upstream.requests).toHaveLength(2);
    expect(events.of('store-error').map((event) => event.operation)).toEqual(['get', 'update', 'get', 'update']);
    expect(events.of('store-error')[0]).toMatchObject({ name: 'cache', policy: 'open' });
  });

  it('goes upstream and reports store-error when a synchronous storage throws', async () => {
    const down = () => {
      throw new Error('down');
    };
    const broken = { get: async () => undefined, set: async () => {}, delete: async () => {}, getSync: down, setSync: down };
    const { llm, clock, upstream, events } = await cached({ storage: broken });
    await clock.run(llm.complete(cold()));
    await clock.run(llm.complete(cold()));
    expect(upstream.requests).toHaveLength(2);
    expect(events.of('store-error').map((event) => event.operation)).toEqual(['get', 'update', 'get', 'update']);
  });

  it('reads and writes the default LRU synchronously, and answers from it', async () => {
    const storage = lruStorage();
    const reads: string[] = [];
    const watched = { ...storage, get: () => Promise.reject(new Error('not used')), getSync: (key: string) => (reads.push(key), storage.getSync(key)) };
    const { llm, clock, upstream, states } = await cached({ storage: watched });
    await clock.run(llm.complete(cold()));
    await clock.run(llm.complete(cold()));
    expect(upstream.requests).toHaveLength(1);
    expect(states.map((state) => state?.status)).toEqual(['miss', 'hit']);
    expect(reads).toHaveLength(2);
    expect(reads[0]).toMatch(/^sluice:cache:global:completion:[0-9a-f]{64}$/);
  });

  it('times out a storage that does not answer, without holding the call', async () => {
    const silent = { get: () => new Promise<undefined>(() => {}), set: () => new Promise<void>(() => {}), delete: async () => {} };
    const { llm, clock, upstream, events } = await cached({ storage: silent, timeoutMs: 20 });
    await clock.run(llm.complete(cold()));
    expect(upstream.requests).toHaveLength(1);
    await clock.advanceAsync(20);
    expect(events.of('store-error').map((event) => event.error)).toMatchObject([{ code: 'STORE_UNAVAILABLE' }, { code: 'STORE_UNAVAILABLE' }]);
  });

  it('takes a storage that answers with values, not promises, and one that throws as a miss', async () => {
    const map = new Map<string, string>();
    const plain = { get: (key: string) => map.get(key), set: (key: string, value: string) => void map.set(key, value), delete: (key: string) => void map.delete(key) };
    const { llm, clock, upstream, states, events } = await cached({ storage: plain as never });
    await clock.run(llm.complete(cold()));
    await clock.run(llm.complete(cold()));
    expect(states.map((state) => state?.status)).toEqual(['miss', 'hit']);
    expect(upstream.requests).toHaveLength(1);
    expect(events.of('store-error')).toEqual([]);
    const throwing = {
      get: () => {
        throw new Error('not connected');
      },
      set: () => {
        throw new Error('not connected');
      },
      delete: async () => {},
    };
    const broken = await cached({ storage: throwing as never });
    await broken.clock.run(broken.llm.complete(cold()));
    expect(broken.events.of('store-error').map((event) => event.error)).toEqual([new Error('not connected'), new Error('not connected')]);
    // Nothing left armed: the timers of the storage calls went with them.
    expect(broken.clock.pending).toBe(0);
  });

  it('sizes each entry at exactly its UTF-8 bytes from its parts, completions and streams, so maxBytes holds', async () => {
    const storage = lruStorage();
    const { llm, clock, states } = await cached({ storage });
    const encoder = new TextEncoder();
    let total = 0;
    const calls: Array<() => Promise<unknown>> = [() => llm.complete(cold('héllo wörld 😀 世界')), () => collect(llm.stream(streamed('ça va 😀 très bien 世界')))];
    for (const call of calls) {
      await clock.run(call());
      total += encoder.encode(storage.getSync(`sluice:cache:global:${states.at(-1)?.key}`)).length;
      expect(storage.bytes).toBe(total);
    }
  });

  it('bounds the default LRU by entries', async () => {
    const storage = lruStorage({ maxEntries: 2 });
    const { llm, clock, upstream } = await cached({ storage });
    for (const content of ['a', 'b', 'c', 'a']) await clock.run(llm.complete(cold(content)));
    expect(storage.size).toBe(2);
    expect(upstream.requests).toHaveLength(4);
  });
});

describe('cache: rawJson', () => {
  /** The cache over a middleware that rewrites every answer's text in place, as a redactor might. */
  async function overEditor(options: Parameters<typeof cache>[0], keepRawJson: boolean) {
    return testPipeline({
      middleware: [
        cache(options),
        async function editInPlace(ctx, next) {
          await next();
          const message = ctx.response?.choices[0]?.message;
          if (message) message.content = 'edited';
          const chunks = ctx.chunks;
          if (!chunks) return;
          ctx.chunks = (async function* edited() {
            for await (const chunk of chunks) {
              const delta = chunk.choices[0]?.delta;
              if (delta?.content) delta.content = 'edited';
              yield chunk;
            }
          })();
        },
      ],
      transport: { keepRawJson },
    });
  }
  const contentOf = (reply: { choices: Array<{ message: { content: string | null } }> }) => reply.choices[0]?.message.content;
  const textOf = (chunks: Array<{ choices: Array<{ delta: { content?: string | null } }> }>) =>
    chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');

  it('stores what the call inside left by default, an edit in place included', async () => {
    const { llm, clock } = await overEditor({}, true);
    expect(contentOf(await clock.run(llm.complete(cold())))).toBe('edited');
    expect(contentOf(await clock.run(llm.complete(cold())))).toBe('edited');
    const streamedText = textOf(await clock.run(collect(llm.stream(streamed()))));
    expect(textOf(await clock.run(collect(llm.stream(streamed()))))).toBe(streamedText);
  });

  it("stores the upstream's own text with rawJson and a transport that keeps it: an edit in place does not reach the entry", async () => {
    const { llm, clock, upstream } = await overEditor({ rawJson: true }, true);
    expect(contentOf(await clock.run(llm.complete(cold())))).toBe('edited');
    expect(contentOf(await clock.run(llm.complete(cold())))).not.toBe('edited');
    expect(textOf(await clock.run(collect(llm.stream(streamed()))))).toMatch(/^(edited)+$/);
    expect(textOf(await clock.run(collect(llm.stream(streamed()))))).not.toMatch(/edited/);
    expect(upstream.requests).toHaveLength(2);
  });

  it('serialises the answer with rawJson when the transport kept no text', async () => {
    const { llm, clock, upstream } = await overEditor({ rawJson: true }, false);
    expect(contentOf(await clock.run(llm.complete(cold())))).toBe('edited');
    expect(contentOf(await clock.run(llm.complete(cold())))).toBe('edited');
    expect(upstream.requests).toHaveLength(1);
  });

  it('serialises an answer that something inside replaced, rawJson or not', async () => {
    const { llm, clock } = await testPipeline({
      middleware: [
        cache({ rawJson: true }),
        async function replace(ctx, next) {
          await next();
          if (ctx.response) ctx.response = { ...ctx.response, choices: [{ ...ctx.response.choices[0]!, message: { role: 'assistant', content: 'new', refusal: null } }] };
        },
      ],
      transport: { keepRawJson: true },
    });
    await clock.run(llm.complete(cold()));
    expect(contentOf(await clock.run(llm.complete(cold())))).toBe('new');
  });
});
