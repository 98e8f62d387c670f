// One instance of a fleet, run as its own Node process by fleet.test.ts:
// a pipeline with a global request limit, a per-tenant token limit, a
// breaker and a budget, all on one Redis, firing concurrent calls at the
// mock upstream and printing what each call ended as, as one JSON line.
// The process runs every scenario the test sends it, one JSON line each on
// stdin (`{ "scenario", "upstreamUrl" }`), in order, each on a client, a
// store and a pipeline of its own, so the fleet's processes start once.
import { createInterface } from 'node:readline';
import { type CompletionContext, createPipeline, openAICompatible, SluiceError, type Store, type TimeToLive } from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { budget } from '@sluice/cost';
import { rateLimit } from '@sluice/ratelimit';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { redisStore } from './redis-store.js';

type Scenario = 'limits' | 'outage' | 'restart' | 'arrivals';
/** The arrivals scenario's request limit, its window, and the headroom the window is padded with (see fleet.test.ts). */
interface Arrivals {
  limit: number;
  windowMs: number;
  marginMs: number;
}
const [redisUrl, index] = process.argv.slice(2) as [string, string];
/** The test's lines, read one at a time: a scenario, and a scenario's go-ahead. */
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
let unhandled = 0;
process.on('unhandledRejection', () => unhandled++);

// Half the fleet on node-redis, half on ioredis: both clients share the same records.
async function connect(): Promise<{ store: ReturnType<typeof redisStore>; close(): Promise<unknown> }> {
  if (Number(index) % 2 === 0) {
    const client = createClient({ url: redisUrl, socket: { reconnectStrategy: () => 50 } });
    client.on('error', () => undefined);
    await client.connect();
    return { store: redisStore({ client, timeoutMs: 2_000 }), close: () => client.close() };
  }
  const client = new Redis(redisUrl, { maxRetriesPerRequest: 0, retryStrategy: () => 50, lazyConnect: true });
  client.on('error', () => undefined);
  // Wait for the client to be ready rather than for connect(): a child that starts slowly may meet
  // Redis stopped by the restart scenario, and connect() then rejects while the client goes on
  // reconnecting (every 50 ms) until Redis is back.
  const ready = new Promise((resolve) => client.once('ready', resolve));
  client.connect().catch(() => undefined);
  await ready;
  return { store: redisStore({ client, timeoutMs: 2_000 }), close: async () => client.disconnect() };
}

const bookings = new WeakMap<CompletionContext, Map<string, number>>();
type Result = { ok: true; tenant: string; prompt: number; completion: number } | { ok: false; code: string; typed: boolean };

/**
 * Each call's view of the store: it notes the time each limit booked the
 * call's request at, on the fleet's one clock, as the `at` of the window
 * state its admitting update wrote (bookings are made at that time: see
 * ratelimit's window-state.ts). Any clock reading taken after an admission
 * (the upstream's arrival time, or `clock.now()` once the limit lets the
 * call go) adds that process's store round trip and event-loop delay, which
 * on a loaded 2-core machine runs past 50 ms and blurs the windows. A limit
 * reads and writes through the store of the call it is admitting (even when
 * it admits a queued call from another call's turn), so this store is seen
 * by exactly that call's updates.
 */
function noteBookings(ctx: CompletionContext, next: () => Promise<void>) {
  const booked = new Map<string, number>();
  const shared = ctx.store;
  const mine: Store = Object.create(shared, {
    update: {
      value: async <T>(key: string, reducer: (current: T | undefined) => T, ttlMs?: TimeToLive<T>): Promise<T> => {
        const state = await shared.update(key, reducer, ttlMs);
        const at = (state as { at?: unknown } | undefined)?.at;
        if (key.includes(':ratelimit:') && typeof at === 'number') booked.set(key, at);
        return state;
      },
    },
  });
  Object.defineProperty(ctx, 'store', { value: mine });
  bookings.set(ctx, booked);
  return next();
}
/** Records, in the request the upstream sees, when the limit just outside it booked the attempt. */
function stamp(field: 'requests_at' | 'tokens_at', keyPart: string) {
  return async function stampAdmission(ctx: CompletionContext, next: () => Promise<void>) {
    const metadata = (ctx.request.metadata ?? {}) as Record<string, string>;
    const at = [...(bookings.get(ctx) ?? [])].find(([key]) => key.includes(keyPart))?.[1];
    ctx.request = { ...ctx.request, metadata: { ...metadata, [field]: String(at) } };
    await next();
  };
}

async function runScenario(scenario: Scenario, upstreamUrl: string, arrivals?: Arrivals): Promise<{ results: Result[]; storeErrors: Record<string, number>; unhandled: number }> {
  const unhandledBefore = unhandled;
  const { store, close } = await connect();
  // Redis's time. The store's timeout is 2 s (see connect()), not the default 50 ms: four processes
  // starting on a loaded 2-core machine miss 50 ms often, and every miss would refuse a call
  // ('closed') instead of testing the bound. The store bounds its own calls, so that is the only timer.
  const clock = store.clock;
  const transport = openAICompatible({ baseUrl: upstreamUrl, apiKey: 'sk-test' });
  const llm = arrivals
    ? // Only the shared request limit, just outside the transport: what the upstream counts is when requests arrive.
      createPipeline({ transport, store: store as Store, clock }).use(
        rateLimit({ requests: { limit: arrivals.limit, windowMs: arrivals.windowMs + arrivals.marginMs }, onStoreError: 'closed' }),
      )
    : createPipeline({ transport, store: store as Store, clock })
    .use(noteBookings)
    .use(budget({ limitUsd: 0.0015, period: 'day', name: `budget-${scenario}` }))
    // Where a bound is asserted, a slow store (a loaded test machine) refuses calls: 'closed'. With
    // Redis stopped mid-run, the breaker falls back to memory and the global limit goes on without state.
    .use(breaker({ failures: 5, openMs: 300, key: 'global', onStoreError: scenario === 'restart' ? 'memory' : 'closed' }))
    .use(rateLimit({ requests: { limit: 16, windowMs: 1_000 }, onStoreError: scenario === 'restart' ? 'open' : 'closed' }))
    .use(stamp('requests_at', ':global'))
    .use(rateLimit({ key: { tag: 'tenant' }, tokens: { limit: 90, windowMs: 1_000 }, onStoreError: 'closed' }))
    .use(stamp('tokens_at', ':tenant'));

  const storeErrors: Record<string, number> = {};
  llm.events.on('store-error', (event) => {
    storeErrors[`${event.name}:${event.policy}`] = (storeErrors[`${event.name}:${event.policy}`] ?? 0) + 1;
  });

  const call = async (n: number): Promise<Result> => {
    const tenant = n % 2 === 0 ? 'a' : 'b';
    try {
      const reply = await llm.complete(
        { model: 'gpt-4.1', messages: [{ role: 'user', content: 'hello' }], max_tokens: 4, user: tenant },
        { tags: { tenant }, timeoutMs: 20_000 },
      );
      return { ok: true, tenant, prompt: reply.usage?.prompt_tokens ?? -1, completion: reply.usage?.completion_tokens ?? -1 };
    } catch (error) {
      return { ok: false, code: (error as { code?: string }).code ?? String(error), typed: error instanceof SluiceError };
    }
  };

  const results: Result[] = [];
  if (arrivals) {
    // Connections first, outside the limit (marked, so the test leaves them out): a cold connection
    // adds its handshake to one request's transit and not to the next window's, on a loaded machine
    // more than the margin the test pads its window with.
    const warm = createPipeline({ transport }); // closed with the transport, by llm.close()
    const request = { model: 'gpt-4.1', messages: [{ role: 'user' as const, content: 'warm-up' }], metadata: { warmup: 'yes' } };
    await Promise.all(Array.from({ length: 32 }, () => warm.complete(request)));
    console.log(JSON.stringify({ scenario, ready: true }));
    await lines.next(); // { go: true }: every process of the fleet is warm
  }
  if (scenario === 'outage') {
    // One call at a time per process, for a while, so the circuit's open periods come and go.
    for (let n = 0; n < 60; n++) {
      results.push(await call(n));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } else {
    results.push(...(await Promise.all(Array.from({ length: 32 }, (_, n) => call(n)))));
  }
  await llm.close();
  await close();
  return { results, storeErrors, unhandled: unhandled - unhandledBefore };
}

for (let line = await lines.next(); !line.done; line = await lines.next()) {
  const { scenario, upstreamUrl, arrivals } = JSON.parse(line.value) as { scenario: Scenario; upstreamUrl: string; arrivals?: Arrivals };
  console.log(JSON.stringify({ scenario, report: await runScenario(scenario, upstreamUrl, arrivals) }));
}
