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
import type { CircuitStateName } from './events.js';
import { type BreakerOptions, resolveBreakerOptions } from './options.js';
import {
  admit,
  type CallOutcome,
  type CircuitRecord,
  isolate,
  reset,
  settle,
  type Mark,
  type SettleContext,
  type Step,
  type Ticket,
  type Transition,
} from './circuit.js';
import { CircuitViews } from './circuit-views.js';
import { CircuitOpenError } from './errors.js';
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
 * reopens it. A call counts when the upstream answers it: a stream when the
 * upstream accepted it (a success, turned into a failure if it is cut
 * later), like an error at its headers; the failure rate allows for the
 * calls still in flight, so fast errors cannot trip it ahead of slow successes.
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

  /**
   * Calls of each circuit in flight in this process: admitted by a closed
   * circuit and not judged yet. The failure rate counts them as calls that
   * may still succeed (see `settle`). A key leaves the map at zero, so it
   * holds only the keys with calls out.
   */
  const inFlight = new Map<string, number>();
  const views = new CircuitViews();
  const leave = (key: string) => {
    const left = (inFlight.get(key) ?? 1) - 1;
    if (left > 0) inFlight.set(key, left);
    else inFlight.delete(key);
  };

  /** Records an outcome; returns the mark a counted success left, for a later failure to amend. */
  async function record(
    ctx: CompletionContext,
    circuits: Store,
    key: string,
    ticket: Ticket,
    outcome: CallOutcome,
    amends?: Mark,
  ): Promise<Mark | undefined> {
    // A normal call that counts neither way leaves the circuit as it is.
    if (outcome === 'ignore' && ticket.kind === 'call') return undefined;
    const now = ctx.clock.now();
    const context: SettleContext = { pending: inFlight.get(key) ?? 0, ...(amends && { amends }) };
    let step: Step | undefined;
    const stored = await circuits.update<CircuitRecord>(prefix + key, (current) => (step = settle(current, ticket, outcome, now, rules, context)).record);
    views.see(circuits, prefix + key, stored, now, rules);
    if (!step) return undefined;
    emit(ctx.events, key, step.transitions);
    return step.mark;
  }

  /** Records without letting a failing store replace what the caller gets. */
  async function recordQuietly(...args: Parameters<typeof record>): Promise<Mark | undefined> {
    try {
      return await record(...args);
    } catch (storeError) {
      args[0].events.emit('listener-error', { id: args[0].id, error: storeError });
      return undefined;
    }
  }

  /**
   * Admits a call, or says why not. A circuit this process knows only
   * closed admits without a store call, one it saw open fails fast without
   * one (see `circuit-views.ts`); the rest (half-open, due, isolated) read
   * the store, and taking a probe slot updates it.
   */
  async function admitCall(
    ctx: CompletionContext,
    circuits: Store,
    key: string,
    now: number,
  ): Promise<
    | { ticket: Ticket; refused?: undefined }
    | { ticket?: undefined; refused: { state: Exclude<CircuitStateName, 'closed'>; retryAfterMs: number | undefined } }
  > {
    const view = views.get(circuits, prefix + key, now);
    if (!view) return { ticket: { kind: 'call', at: now } };
    if (view.state === 'open' && view.openUntil !== null && now < view.openUntil) {
      return { refused: { state: 'open', retryAfterMs: view.openUntil - now } };
    }
    const id = `${ctx.id}#${++sequence}`;
    let step = admit(await circuits.get<CircuitRecord>(prefix + key), id, now, rules);
    if (step.changed) {
      // Taking a probe slot must be atomic: read again inside the update.
      await circuits.update<CircuitRecord>(prefix + key, (current) => (step = admit(current, id, now, rules)).record);
    }
    views.see(circuits, prefix + key, step.record, now, rules);
    emit(ctx.events, key, step.transitions);
    if (step.ticket) return { ticket: step.ticket };
    const seen = snapshot(key, step.record, now, rules);
    return { refused: { state: seen.state as Exclude<CircuitStateName, 'closed'>, retryAfterMs: seen.retryAfterMs ?? undefined } };
  }

  async function breaker(ctx: CompletionContext, next: () => Promise<void>): Promise<void> {
    const key = keyOf(ctx);
    store ??= ctx.store;
    events ??= ctx.events;
    clock ??= ctx.clock;
    const circuits = store;
    const admittedAt = ctx.clock.now();
    const { state } = ctx;
    const { ticket, refused } = await admitCall(ctx, circuits, key, admittedAt);
    if (!ticket) {
      state.breaker = { key, state: refused.state };
      throw new CircuitOpenError(key, refused.state, refused.retryAfterMs);
    }
    state.breaker = { key, state: ticket.kind === 'probe' ? 'half-open' : 'closed' };

    // A probe is judged alone, so only a closed circuit's calls count as in flight.
    let pending = ticket.kind === 'call';
    if (pending) inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
    /** Takes the call out of those in flight, once: it is about to be judged. */
    const judged = () => {
      if (pending) leave(key);
      pending = false;
    };

    const calledAt = ctx.clock.now();
    try {
      await next();
    } catch (error) {
      // Judged from the error itself rather than a settlement listener: a
      // rejection by a layer before the transport (a limiter) has no response
      // for a listener to bind to, and would hand it the whole call's outcome.
      judged();
      await recordQuietly(ctx, circuits, key, ticket, outcomeOfError(error));
      throw error;
    }
    const respondedAt = ctx.clock.now();
    if (ctx.stream && ticket.kind === 'call' && (config.slowCallMs === undefined || respondedAt - calledAt <= config.slowCallMs)) {
      // A stream is judged when the upstream accepted it, the moment a
      // failure before or at its headers is judged: counting its success
      // only when it ends would let every fast error land before the slow
      // successes of the same traffic and trip a healthy circuit. A stream
      // cut later turns that success into a failure (one call, one count).
      // `respondedAt - calledAt` bounds its time to headers from above, so
      // below `slowCallMs` it is surely not slow; otherwise it is judged at
      // its end, when its settlement says how long the upstream really took.
      judged();
      const mark = await recordQuietly(ctx, circuits, key, ticket, 'success');
      ctx.onSettled(async (settlement: Settlement) => {
        // Without a mark the success was not counted (the circuit moved on, or the store failed).
        if (!mark || settlement.outcome !== 'error' || !settlement.error || !config.isFailure(settlement.error)) return;
        await record(ctx, circuits, key, ticket, 'failure', mark);
      });
      return;
    }
    // After `next()` resolved, this binds to this attempt's response: at once
    // for a non-stream answer, when the stream ends, breaks or is cancelled.
    ctx.onSettled(async (settlement: Settlement) => {
      // Slowness is the upstream's time to the response (a stream's headers),
      // from when the request was sent: the settlement's duration runs from
      // the transport's start, so time queued in an inner limiter is left out.
      const sentAt = ctx.clock.now() - settlement.durationMs;
      judged();
      await record(ctx, circuits, key, ticket, outcomeOfSettlement(settlement, respondedAt - sentAt));
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
      views.see(circuits, prefix + key, stored, now, rules);
      if (step && events) emit(events, key, step.transitions);
      return snapshot(key, stored, now, rules);
    },
    async reset(key: string) {
      const { circuits, now } = manual();
      let step: ReturnType<typeof reset> | undefined;
      const stored = await circuits.update<CircuitRecord>(prefix + key, (current) => (step = reset(current, now)).record);
      views.see(circuits, prefix + key, stored, now, rules);
      if (step && events) emit(events, key, step.transitions);
      return snapshot(key, stored, now, rules);
    },
    async state(key: string) {
      const { circuits, now } = manual();
      const stored = await circuits.get<CircuitRecord>(prefix + key);
      views.see(circuits, prefix + key, stored, now, rules);
      return snapshot(key, stored, now, rules);
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
