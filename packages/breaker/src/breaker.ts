import {
  type Clock,
  type CompletionContext,
  memoryStore,
  type Middleware,
  type Settlement,
  type SluiceEmitter,
  type Store,
  systemClock,
  toSluiceError,
  ValidationError,
} from '@sluice/core';
import type { CircuitStateName } from './breaker-events.js';
import { type BreakerOptions, resolveBreakerOptions } from './breaker-options.js';
import { admit, type CallOutcome, type CircuitRecord, isolate, reset, settle, type Ticket, type Transition } from './circuit.js';
import { CircuitOpenError } from './circuit-open-error.js';
import { type CircuitSnapshot, snapshot } from './circuit-snapshot.js';

/**
 * The middleware `breaker()` returns, with the circuits' manual controls
 * and health attached. Each method takes a circuit's key
 * (`${origin}|${model}` by default, e.g. `https://api.deepseek.com/v1|deepseek-v3.2`).
 *
 * @example
 * ```ts
 * const circuit: BreakerMiddleware = breaker();
 * app.get('/health/llm', () => circuit.state(`${transport.origin}|deepseek-v3.2`));
 * ```
 */
export interface BreakerMiddleware extends Middleware {
  /**
   * Holds the circuit open, failing its calls fast, until {@link BreakerMiddleware.reset}.
   *
   * @param key - the circuit's key
   * @returns its snapshot afterwards
   */
  isolate(key: string): Promise<CircuitSnapshot>;
  /**
   * Closes the circuit and forgets its failures, trips and probes.
   *
   * @param key - the circuit's key
   * @returns its snapshot afterwards
   */
  reset(key: string): Promise<CircuitSnapshot>;
  /**
   * The circuit's health, as plain JSON.
   *
   * @param key - the circuit's key
   */
  state(key: string): Promise<CircuitSnapshot>;
}

/**
 * A keyed circuit breaker: one circuit per upstream and model by default,
 * so one failing model does not block the others. A circuit opens on
 * `failures` consecutive failures (default 10) or on a `failureRate` over a
 * sliding window; while open (`openMs`, default 30 s, growing with
 * `backoff`) its calls fail fast with {@link CircuitOpenError} without
 * reaching the upstream; then it lets `probes` calls through (default 1)
 * while the rest still fail fast: their success closes it, a failure
 * reopens it. A stream counts when it settles: cut mid-way is a failure,
 * read to its end a success, cancelled by its consumer neither.
 *
 * Circuits live as plain JSON in a core `Store` (`options.store`, else the
 * pipeline's), two store calls a request. Place it inside `retry` and
 * outside `rateLimit`: each attempt is judged, and an open circuit fails
 * fast without using any rate.
 *
 * @param options - see {@link BreakerOptions}; all optional
 * @returns the named middleware `breaker`, with `isolate`, `reset` and `state`
 * @throws ValidationError naming the bad option (`breaker.failures`, `breaker.failureRate.threshold`)
 * @example
 * ```ts
 * const circuit = breaker({ failures: 10, openMs: 30_000 });
 * const llm = createPipeline({ transport }).use(retry()).use(circuit).use(rateLimit({ rpm: 100 }));
 * llm.events.on('circuit-open', (e) => log.error(e));
 * await circuit.state(`${transport.origin}|deepseek-v3.2`); // { state: 'closed', … }
 * ```
 */
export function breaker(options: BreakerOptions = {}): BreakerMiddleware {
  const config = resolveBreakerOptions(options);
  const { rules, prefix } = config;
  // One breaker, one set of circuits: the store is fixed at first use (see BreakerOptions.store).
  let store = config.store;
  let events: SluiceEmitter | undefined;
  let clock: Clock | undefined;
  let sequence = 0;

  const keyOf = (ctx: CompletionContext): string => {
    const key = config.key(ctx);
    if (typeof key !== 'string' || key === '') throw new ValidationError('breaker.key', 'must return a non-empty string');
    return key;
  };

  /** A call that failed before any response is judged by its error alone. */
  const outcomeOfError = (error: unknown): CallOutcome => (config.isFailure(toSluiceError(error)) ? 'failure' : 'ignore');

  /** A call that got a response: its error if it broke later, else its speed, else how it ended. */
  const outcomeOfSettlement = (settlement: Settlement, responseMs: number): CallOutcome => {
    if (settlement.outcome === 'error' && settlement.error && config.isFailure(settlement.error)) return 'failure';
    if (config.slowCallMs !== undefined && responseMs > config.slowCallMs) return 'failure';
    return settlement.outcome === 'success' ? 'success' : 'ignore';
  };

  async function record(ctx: CompletionContext, circuits: Store, key: string, ticket: Ticket, outcome: CallOutcome) {
    // A normal call that counts neither way leaves the circuit as it is.
    if (outcome === 'ignore' && ticket.kind === 'call') return;
    const now = ctx.clock.now();
    let step: ReturnType<typeof settle> | undefined;
    await circuits.update<CircuitRecord>(prefix + key, (current) => (step = settle(current, ticket, outcome, now, rules)).record);
    if (step) emit(ctx.events, key, step.transitions);
  }

  async function breaker(ctx: CompletionContext, next: () => Promise<void>): Promise<void> {
    const key = keyOf(ctx);
    store ??= ctx.store;
    events ??= ctx.events;
    clock ??= ctx.clock;
    const circuits = store;
    const id = `${ctx.id}#${++sequence}`;
    const admittedAt = ctx.clock.now();
    let step = admit(await circuits.get<CircuitRecord>(prefix + key), id, admittedAt, rules);
    if (step.changed) {
      // Taking a probe slot must be atomic: read again inside the update.
      await circuits.update<CircuitRecord>(prefix + key, (current) => (step = admit(current, id, admittedAt, rules)).record);
    }
    emit(ctx.events, key, step.transitions);
    const { state } = ctx;
    const { ticket } = step;
    if (!ticket) {
      const seen = snapshot(key, step.record, admittedAt, rules);
      const open = seen.state as Exclude<CircuitStateName, 'closed'>;
      state.breaker = { key, state: open };
      throw new CircuitOpenError(key, open, seen.retryAfterMs ?? undefined);
    }
    state.breaker = { key, state: ticket.kind === 'probe' ? 'half-open' : 'closed' };

    try {
      await next();
    } catch (error) {
      // Judged from the error itself rather than a settlement listener: a
      // rejection by a layer before the transport (a limiter) has no response
      // for a listener to bind to, and would hand it the whole call's outcome.
      try {
        await record(ctx, circuits, key, ticket, outcomeOfError(error));
      } catch (storeError) {
        // The caller needs the upstream's error; a failing store must not hide it.
        ctx.events.emit('listener-error', { id: ctx.id, error: storeError });
      }
      throw error;
    }
    const respondedAt = ctx.clock.now();
    // After `next()` resolved, this binds to this attempt's response: at once
    // for a non-stream answer, when the stream ends, breaks or is cancelled.
    ctx.onSettled((settlement: Settlement) => {
      // Slowness is the upstream's time to the response (a stream's headers),
      // from when the request was sent: the settlement's duration runs from
      // the transport's start, so time queued in an inner limiter is left out.
      const sentAt = ctx.clock.now() - settlement.durationMs;
      return record(ctx, circuits, key, ticket, outcomeOfSettlement(settlement, respondedAt - sentAt));
    });
  }

  /** Where manual calls act: the breaker's store, or its own memory store before any call. */
  const manual = () => {
    store ??= memoryStore();
    return { circuits: store, now: (clock ?? systemClock).now() };
  };

  return Object.assign(breaker, {
    async isolate(key: string) {
      const { circuits, now } = manual();
      let step: ReturnType<typeof isolate> | undefined;
      const stored = await circuits.update<CircuitRecord>(prefix + key, (current) => (step = isolate(current, now)).record);
      if (step && events) emit(events, key, step.transitions);
      return snapshot(key, stored, now, rules);
    },
    async reset(key: string) {
      const { circuits, now } = manual();
      let step: ReturnType<typeof reset> | undefined;
      const stored = await circuits.update<CircuitRecord>(prefix + key, (current) => (step = reset(current)).record);
      if (step && events) emit(events, key, step.transitions);
      return snapshot(key, stored, now, rules);
    },
    async state(key: string) {
      const { circuits, now } = manual();
      return snapshot(key, await circuits.get<CircuitRecord>(prefix + key), now, rules);
    },
  });
}

function emit(events: SluiceEmitter, key: string, transitions: readonly Transition[]): void {
  for (const transition of transitions) {
    if (transition.to === 'open') {
      const { reason, failures, openMs } = transition;
      events.emit('circuit-open', { key, reason, failures, openMs });
    } else if (transition.to === 'half-open') events.emit('circuit-half-open', { key });
    else events.emit('circuit-close', { key, reason: transition.reason });
  }
}
