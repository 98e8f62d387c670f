import { type Clock, type CompletionContext, type Middleware, type Settlement, type SluiceEmitter, type SluiceError, type Store, systemClock } from '@sluice/core';
import { afterNext, aheadOfClock, keepsChainRules, keyedState, toSluiceError } from '@sluice/core/kit';
import type { CircuitStateName } from './events.js';
import { type BreakerOptions, resolveBreakerOptions } from './options.js';
import {
  admit,
  type CallOutcome,
  type CircuitRecord,
  isolate,
  reset,
  lifetimeMs,
  settle,
  type Mark,
  type SettleContext,
  type Step,
  type Ticket,
  type Transition,
} from './circuit.js';
import { CircuitViews } from './circuit-views.js';
import { InFlight } from './in-flight.js';
import { CircuitOpenError } from './errors.js';
import { isBreakerFailure } from './is-breaker-failure.js';
import { type CircuitSnapshot, snapshot } from './circuit-snapshot.js';

/**
 * The middleware `breaker()` returns, with the circuits' manual controls
 * and health attached. Each method takes a circuit's key
 * as the `key` option makes it (`${origin}|${model}` by default, e.g.
 * `https://api.deepseek.com/v1|deepseek-v3.2`).
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
 * pipeline's) under `sluice:breaker:`, each record with a lifetime that
 * depends on its state; a call costs one store call, its result. Place it
 * inside `retry` and outside `rateLimit`: each attempt is judged, and an
 * open circuit fails fast without using any rate.
 *
 * @param options - see {@link BreakerOptions}; all optional
 * @returns the named middleware `breaker`, with `isolate`, `reset` and `state`
 * @throws ValidationError naming the bad option (`breaker.failures`, `breaker.failureRate.threshold`, `breaker.key`)
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
  const { rules } = config;
  const circuits = keyedState({
    name: 'breaker',
    key: config.key,
    defaultKey: 'origin-model',
    field: 'breaker.key',
    store: config.store,
    onStoreError: config.onStoreError,
  });
  /** With policy `closed` every admission must reach the store, so no view stands in for it. */
  const verify = config.onStoreError === 'closed';
  const views = new CircuitViews();
  const inFlight = new InFlight();
  /** The emitter and clock of the last call seen, for the manual methods. */
  let events: SluiceEmitter | undefined;
  let clock: Clock | undefined;
  let sequence = 0;
  /** Streams' successes being written to a shared store (see `judgeStream`). */
  const writing = new Set<Promise<unknown>>();
  /** Until the successes being written are: at once when there are none. */
  const successesWritten = (): Promise<unknown> | undefined => (writing.size === 0 ? undefined : Promise.all(writing));

  /**
   * Writes a change; sees and returns the stored record, or undefined when
   * the store failed (policy `open`). At once on an in-process store, else a promise.
   */
  function write<S extends Step>(
    ctx: CompletionContext | undefined,
    key: string,
    now: number,
    change: (current: CircuitRecord | undefined, inPlace?: true) => S,
    phase: 'admit' | 'settle',
    inPlace = false,
    afterIo = false,
  ): Written<S> | undefined | Promise<Written<S> | undefined> {
    let step: S | undefined;
    const seen = (record: CircuitRecord | undefined): Written<S> | undefined => {
      if (record === undefined || step === undefined) return undefined;
      views.see(circuits.storeFor(ctx), key, record, now, rules);
      const emitter = ctx?.events ?? events;
      if (emitter) emit(emitter, ctx?.id, key, step.transitions);
      return { record, step };
    };
    const record = circuits.updateNow<CircuitRecord>(ctx, key, (current, given) => (step = change(current, given)).record, {
      ttlMs: (next) => lifetimeMs(next, now, rules),
      phase,
      now,
      inPlace,
      afterIo,
    });
    return record instanceof Promise ? record.then(seen) : seen(record);
  }

  /**
   * Whether `error` counts against the circuit, by the user's `isFailure`.
   * One that throws is a `listener-error` event (`event: 'breaker.isFailure'`)
   * and the default rule decides: the call must still be counted, or a
   * half-open circuit would wait for its probe's outcome forever.
   */
  const isFailure = (ctx: CompletionContext, error: SluiceError): boolean => {
    try {
      return config.isFailure(error);
    } catch (thrown) {
      ctx.events.emit('listener-error', { id: ctx.id, event: 'breaker.isFailure', error: thrown });
      return isBreakerFailure(error);
    }
  };

  /** A call that failed before any response is judged by its error alone. */
  const outcomeOfError = (ctx: CompletionContext, error: unknown): CallOutcome => (isFailure(ctx, toSluiceError(error)) ? 'failure' : 'ignore');

  /** A call that got a response: its error if it broke later, else its speed, else how it ended. */
  const outcomeOfSettlement = (ctx: CompletionContext, settlement: Settlement, responseMs: number): CallOutcome => {
    if (settlement.outcome === 'error' && settlement.error && isFailure(ctx, settlement.error)) return 'failure';
    if (config.slowCallMs !== undefined && responseMs > config.slowCallMs) return 'failure';
    return settlement.outcome === 'success' ? 'success' : 'ignore';
  };

  /**
   * Records an outcome; returns the mark a counted success left, for a
   * later failure to amend. At once on an in-process store, else a promise.
   */
  function record(
    ctx: CompletionContext,
    key: string,
    ticket: Ticket,
    outcome: CallOutcome,
    amends?: Mark,
    at?: number,
    afterIo?: true,
  ): Mark | undefined | Promise<Mark | undefined> {
    // A normal call that counts neither way leaves the circuit as it is.
    if (outcome === 'ignore' && ticket.kind === 'call') return undefined;
    const now = at ?? ctx.clock.now();
    const context: SettleContext = { pending: inFlight.count(key), amends };
    // Every record a settlement writes is its own (a copy, or the record it was handed): the next may change it in place.
    const written = write(ctx, key, now, (current, inPlace) => settle(current, ticket, outcome, now, rules, context, inPlace), 'settle', true, afterIo);
    return written instanceof Promise ? written.then(markOf) : markOf(written);
  }

  /**
   * Admits a call, or says why not. A circuit this process knows only
   * closed admits without a store call, one it saw open fails fast without
   * one (see `circuit-views.ts`); the rest (half-open, due, isolated) read
   * the store, and taking a probe slot updates it.
   */
  async function admitCall(ctx: CompletionContext, key: string, now: number): Promise<Ticket | Refusal> {
    const store = circuits.storeFor(ctx);
    const view = verify ? undefined : views.get(store, key, now);
    if (!verify && !view) return { kind: 'call', at: now };
    // Open as last seen: refused without a store call, unless its time is over or the clock stepped back past its opening.
    if (view?.state === 'open' && view.openUntil !== null && now < view.openUntil && !(view.openedAt !== null && aheadOfClock(view.openedAt, now))) {
      return { refused: 'open', retryAfterMs: view.openUntil - now };
    }
    const id = `${ctx.id}#${++sequence}`;
    let step = admit(verify ? undefined : await circuits.get<CircuitRecord>(key, ctx), id, now, rules);
    let stored = step.record;
    if (verify || step.changed) {
      // Taking a probe slot must be atomic: decided again inside the update.
      const written = await write<AdmitStep>(ctx, key, now, (current) => admit(current, id, now, rules), 'admit');
      // The store failed under policy `open`: go ahead, as if closed.
      if (!written) return { kind: 'call', at: now };
      ({ step, record: stored } = written);
    } else {
      views.see(store, key, stored, now, rules);
      emit(ctx.events, ctx.id, key, step.transitions);
    }
    if (step.ticket) return step.ticket;
    const seen = snapshot(key, stored, now, rules);
    return { refused: seen.state as Refusal['refused'], retryAfterMs: seen.retryAfterMs ?? undefined };
  }

  function breaker(ctx: CompletionContext, next: () => Promise<void>): Promise<void> {
    const key = circuits.keyOf(ctx);
    events = ctx.events;
    clock = ctx.clock;
    const admittedAt = ctx.clock.now();
    // A circuit this process knows only closed admits at once: no promise, no await.
    const known = verify || views.get(circuits.storeFor(ctx), key, admittedAt) !== undefined;
    if (known) return admitCall(ctx, key, admittedAt).then((ticket) => pass(ctx, next, key, ticket));
    // Admitted in the same instant, without a wait: the clock is not read again.
    return pass(ctx, next, key, { kind: 'call', at: admittedAt }, admittedAt);
  }

  /** Refuses the call, or runs the rest of the pipeline and judges what it got. */
  function pass(ctx: CompletionContext, next: () => Promise<void>, key: string, ticket: Ticket | Refusal, now?: number): Promise<void> {
    const { state } = ctx;
    if ('refused' in ticket) {
      state.breaker = { key, state: ticket.refused };
      return Promise.reject(new CircuitOpenError(key, ticket.refused, ticket.retryAfterMs));
    }
    state.breaker = { key, state: ticket.kind === 'probe' ? 'half-open' : 'closed' };

    // A probe is judged alone, so only a closed circuit's calls count as in flight.
    // Each path below takes the call out of those in flight, once, as it is judged (written out
    // where it happens: a closure of its own was one more object held per call in flight).
    let pending = ticket.kind === 'call';
    if (pending) inFlight.enter(key);

    const calledAt = now ?? ctx.clock.now();
    // Judged from the error itself rather than a settlement listener: a
    // rejection by a layer before the transport (a limiter) has no response
    // for a listener to bind to, and would hand it the whole call's outcome.
    const failed = (error: unknown): Promise<never> => {
      if (pending) inFlight.leave(key);
      pending = false;
      const recorded = record(ctx, key, ticket, outcomeOfError(ctx, error));
      return recorded instanceof Promise ? recorded.then(() => Promise.reject(error)) : Promise.reject(error);
    };
    const answered = (): Promise<void> | undefined => {
      const respondedAt = ctx.clock.now();
      if (ctx.stream && ticket.kind === 'call' && (config.slowCallMs === undefined || respondedAt - calledAt <= config.slowCallMs)) {
        if (pending) inFlight.leave(key);
        pending = false;
        judgeStream(ctx, key, ticket);
        return undefined;
      }
      // After `next()` resolved, this binds to this attempt's response: at once
      // for a non-stream answer, when the stream ends, breaks or is cancelled.
      ctx.onSettled((settlement: Settlement) => {
        // Slowness is the upstream's time to the response (a stream's headers),
        // from when the request was sent: the settlement's duration runs from
        // the transport's start, so time queued in an inner limiter is left out.
        const settledAt = ctx.clock.now();
        const sentAt = settledAt - settlement.durationMs;
        if (pending) inFlight.leave(key);
        pending = false;
        const recorded = record(ctx, key, ticket, outcomeOfSettlement(ctx, settlement, respondedAt - sentAt), undefined, settledAt);
        return recorded instanceof Promise ? recorded.then(nothing) : undefined;
      });
      return undefined;
    };
    // Not async: one `then`, where an async frame and its awaits cost promises more and held a frame per call in flight.
    return afterNext(next, answered, failed);
  }

  /**
   * A stream is judged when the upstream accepted it, the moment a failure
   * before or at its headers is judged: counting its success only when it
   * ends would let every fast error land before the slow successes of the
   * same traffic and trip a healthy circuit. A stream cut later turns that
   * success into a failure (one call, one count). The caller checked that
   * the time to headers, bounded from above by `respondedAt - calledAt`, is
   * below `slowCallMs`; otherwise it is judged at its end, when its
   * settlement says how long the upstream really took (until then it counts
   * as in flight: one nobody reads never settles, which leaves the rate a
   * call more lenient, never stricter).
   */
  function judgeStream(ctx: CompletionContext, key: string, ticket: Ticket): void {
    const mark = record(ctx, key, ticket, 'success', undefined, undefined, true);
    if (!(mark instanceof Promise)) return watchForCut(ctx, key, ticket, mark);
    // On a shared store the first chunk waits neither for the write's round
    // trip nor for its start (after the I/O due now: the first chunk most
    // often came with the headers). The stream settles once the write is
    // done, amended if it was cut (bound now, to this attempt's response: a
    // retry's next attempt has its own).
    const written = mark.catch((error: unknown) => {
      ctx.events.emit('listener-error', { id: ctx.id, event: 'breaker.record', error });
      return undefined;
    });
    // `state()` and the manual changes wait for it: this process reads its own writes.
    writing.add(written);
    void written.then(() => writing.delete(written));
    ctx.onSettled((settlement: Settlement) =>
      written.then((counted) => (counted && isCut(ctx, settlement) ? amend(ctx, key, ticket, counted) : undefined)),
    );
  }

  /** Turns a stream's counted success into a failure if the stream breaks later. */
  function watchForCut(ctx: CompletionContext, key: string, ticket: Ticket, mark: Mark | undefined): void {
    // Without a mark the success was not counted (the circuit moved on, or the store failed): nothing to amend.
    if (!mark) return;
    ctx.onSettled((settlement: Settlement) => (isCut(ctx, settlement) ? amend(ctx, key, ticket, mark) : undefined));
  }

  /** Whether a stream counted a success broke later in a way that counts against the circuit. */
  const isCut = (ctx: CompletionContext, settlement: Settlement): boolean =>
    settlement.outcome === 'error' && settlement.error !== undefined && isFailure(ctx, settlement.error);

  /** Counts a stream's failure in place of the success it was counted as. */
  function amend(ctx: CompletionContext, key: string, ticket: Ticket, mark: Mark): Promise<void> | undefined {
    const recorded = record(ctx, key, ticket, 'failure', mark);
    return recorded instanceof Promise ? recorded.then(nothing) : undefined;
  }

  /**
   * A manual change, straight on the store (the explicit one, else the last
   * call's): an operator's action must fail loudly, not under a policy.
   */
  async function manual(key: string, change: (current: CircuitRecord | undefined, now: number) => Step) {
    await successesWritten();
    const now = (clock ?? systemClock).now();
    const store = circuits.storeFor();
    let step: Step | undefined;
    const stored = await store.update<CircuitRecord>(
      circuits.namespace + key,
      (current) => (step = change(current, now)).record,
      (next) => lifetimeMs(next, now, rules),
    );
    views.see(store, key, stored, now, rules);
    if (step && events) emit(events, undefined, key, step.transitions);
    return snapshot(key, stored, now, rules);
  }

  return Object.assign(keepsChainRules(breaker), {
    isolate: (key: string) => manual(key, (current, now) => isolate(current, now)),
    reset: (key: string) => manual(key, (current, now) => reset(current, now)),
    async state(key: string) {
      await successesWritten();
      const now = (clock ?? systemClock).now();
      const store = circuits.storeFor();
      const stored = await store.get<CircuitRecord>(circuits.namespace + key);
      views.see(store, key, stored, now, rules);
      return snapshot(key, stored, now, rules);
    },
  });
}

/** A change written: the stored record, and the step that made it. */
interface Written<S extends Step> {
  record: CircuitRecord;
  step: S;
}

type AdmitStep = ReturnType<typeof admit>;

const markOf = (written: Written<Step> | undefined): Mark | undefined => written?.step.mark;

function nothing(): void {}

/** Why a call was not admitted: the circuit's state and the time until half-open. */
interface Refusal {
  refused: Exclude<CircuitStateName, 'closed'>;
  retryAfterMs: number | undefined;
}

function emit(events: SluiceEmitter, id: string | undefined, key: string, transitions: readonly Transition[]): void {
  for (const transition of transitions) {
    if (transition.to === 'open') {
      const { reason, failures, openMs } = transition;
      events.emit('circuit-open', { id, key, reason, failures, openMs });
    } else if (transition.to === 'half-open') events.emit('circuit-half-open', { id, key });
    else events.emit('circuit-close', { id, key, reason: transition.reason });
  }
}
