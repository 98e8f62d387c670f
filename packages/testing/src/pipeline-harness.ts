import {
  type ChatCompletionRequest,
  type Clock,
  createPipeline,
  type Middleware,
  openAICompatible,
  type OpenAICompatibleOptions,
  type Pipeline,
  type SettleOutcome,
  type Store,
} from '@sluice/core';
import { type CheckedStore, checkedStore } from './checked-store.js';
import { type EventRecorder, recordEvents } from './record-events.js';
import { type ManualClock, manualClock } from './manual-clock.js';
import { mockUpstream, type MockUpstream } from './mock-upstream.js';
import type { MockUpstreamOptions } from './mock-upstream-options.js';

/** Options of {@link testPipeline}; all optional. */
export interface TestPipelineOptions<C extends Clock = ManualClock> {
  /** The middleware under test, outermost first. */
  middleware?: Middleware | readonly Middleware[];
  /**
   * A running mock to use (it stays open after `close()`), or options for
   * one to start (it runs on the pipeline's clock unless they name another).
   */
  upstream?: MockUpstream | MockUpstreamOptions;
  /** The pipeline's clock (default: a new {@link manualClock}). */
  clock?: C;
  /** The pipeline's store (default: a {@link checkedStore} on the clock). */
  store?: Store;
  /** Transport options besides the base URL and key (timeouts, headers). */
  transport?: Omit<OpenAICompatibleOptions, 'baseUrl'>;
}

/** One request that reached the transport (after every middleware). */
export interface Attempt {
  /** The clock's time when it reached the transport. */
  at: number;
  /** The request as the transport got it. */
  request: ChatCompletionRequest;
  /** How it settled, once it has: `error` when it failed before an answer came back; a stream's once it was read, cut or cancelled. */
  outcome: SettleOutcome | undefined;
}

/** What {@link testPipeline} returns. */
export interface TestPipeline<C extends Clock = ManualClock> {
  llm: Pipeline;
  upstream: MockUpstream;
  clock: C;
  store: Store;
  /** Every event of the pipeline, from its creation on. */
  events: EventRecorder;
  /** Every request that reached the transport, in order. */
  attempts: Attempt[];
  /**
   * Closes the pipeline, ending any call still in flight with `CLOSED`,
   * then the upstream it started; safe to call twice.
   *
   * @throws AssertionError when the default checked store saw an impure reducer or non-JSON state
   */
  close(): Promise<void>;
}

const open = new Set<{ close(): Promise<void> }>();

/**
 * Starts a {@link mockUpstream} (or takes one) and builds a pipeline whose
 * transport points at it, on a {@link manualClock} and a {@link checkedStore}
 * unless given others, running `middleware` with a recorder inside them
 * that sees every attempt reach the transport.
 *
 * Nothing global is faked: sockets run in real time while the pipeline's
 * timers (backoff, waits, deadlines, transport timeouts) and the mock's
 * delays wait on the clock. Drive a call with `clock.run(promise)`, or wait
 * for what you expect with `clock.until(() => …)` before `clock.advanceAsync(ms)`.
 *
 * @param options - middleware, upstream, clock, store and transport options
 * @throws ValidationError from core when an option or middleware is invalid
 * @example
 * ```ts
 * afterEach(closeTestPipelines);
 *
 * it('retries a 503', async () => {
 *   const { llm, upstream, clock, events } = await testPipeline({ middleware: retry() });
 *   upstream.enqueue({ kind: 'status', status: 503 });
 *   await clock.run(llm.complete(chat('Hi')));
 *   expect(events.names()).toContain('retry');
 * });
 * ```
 */
export async function testPipeline<C extends Clock = ManualClock>(options: TestPipelineOptions<C> = {}): Promise<TestPipeline<C>> {
  const clock = options.clock ?? (manualClock() as Clock as C);
  const store: Store = options.store ?? checkedStore({ clock });
  const given = isUpstream(options.upstream) ? options.upstream : undefined;
  const upstream = given ?? (await mockUpstream({ clock, ...(options.upstream as MockUpstreamOptions | undefined) }));
  let closing: Promise<void> | undefined;
  let harness: TestPipeline<C> | undefined;
  try {
    const llm = createPipeline({
      transport: openAICompatible({ apiKey: 'sk-test', ...options.transport, baseUrl: upstream.url }),
      clock,
      store,
    });
    const events = recordEvents(llm.events);
    const attempts: Attempt[] = [];
    const middleware = options.middleware === undefined ? [] : Array.isArray(options.middleware) ? options.middleware : [options.middleware];
    for (const step of middleware as Middleware[]) llm.use(step);
    llm.use(async function recordAttempt(ctx, next) {
      const attempt: Attempt = { at: ctx.clock.now(), request: ctx.request, outcome: undefined };
      attempts.push(attempt);
      try {
        await next();
      } catch (error) {
        attempt.outcome = 'error';
        throw error;
      }
      ctx.onSettled((settlement) => void (attempt.outcome = settlement.outcome));
    });
    harness = {
      llm,
      upstream,
      clock,
      store,
      events,
      attempts,
      close() {
        closing ??= (async () => {
          open.delete(harness!);
          // No grace: a call still in flight (waiting on a backoff, a hung
          // upstream) is ended with CLOSED. close() times its steps on the
          // pipeline's clock, so a manual clock must be driven meanwhile.
          const closed = llm.close({ graceMs: 0 });
          await (isManual(clock) ? clock.run(closed) : closed);
          events.stop();
          if (given === undefined) await upstream.close();
          if (options.store === undefined) (store as CheckedStore).assertClean();
        })();
        return closing;
      },
    };
  } catch (error) {
    if (given === undefined) await upstream.close();
    throw error;
  }
  open.add(harness);
  return harness;
}

/**
 * Closes every {@link testPipeline} this test file made and has not closed
 * yet; use it as `afterEach(closeTestPipelines)`.
 *
 * @throws AssertionError - the first failure of a default checked store, after closing them all
 * @example
 * ```ts
 * afterEach(closeTestPipelines);
 * ```
 */
export async function closeTestPipelines(): Promise<void> {
  const results = await Promise.allSettled([...open].map((harness) => harness.close()));
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

function isManual(clock: Clock): clock is ManualClock {
  return typeof (clock as Partial<ManualClock>).run === 'function';
}

function isUpstream(value: unknown): value is MockUpstream {
  return typeof (value as MockUpstream | undefined)?.enqueue === 'function';
}
