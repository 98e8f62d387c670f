import type { CompletionContext, Middleware } from './context.js';
import { SluiceError, ValidationError } from './errors.js';

const nameOf = (fn: Function) => fn.name || 'anonymous middleware';
const done = () => Promise.resolve();

// Symbol.for, so that two copies of core in one program read the same mark.
const kKeepsRules = Symbol.for('sluice.middleware.keeps-chain-rules');

/**
 * Marks a middleware that keeps the chain's rules by construction, so that
 * `compose` spends nothing on checking them for it: it never calls `next()`
 * while its previous call is pending, never settles before a `next()` it
 * called has settled, and never resolves with a function. Each of those is
 * checked at run time for any other middleware (a `then` on every step of
 * every call, and a promise and handlers held for as long as the call is in
 * flight); a marked one's promise is passed on as it is, unless the step
 * that called it needs the check to hear it settle. For sluice's own
 * middleware, whose tests hold them to the rules. A mark on one that breaks
 * them removes the errors that would have caught it (`NEXT_PENDING`,
 * `MISSING_AWAIT`): its mistake then runs as written (the rest of the
 * pipeline twice at once, or a step that settles before its response), so
 * leave your own middleware unmarked. Returns `middleware`, marked.
 *
 * @param middleware - the middleware to mark
 * @example
 * ```ts
 * return keepsChainRules(function retry(ctx, next) { … });
 * ```
 */
export function keepsChainRules<M extends (ctx: never, next: () => Promise<void>) => unknown>(middleware: M): M {
  Object.defineProperty(middleware, kKeepsRules, { value: true });
  return middleware;
}

/** Whether `middleware` was marked with {@link keepsChainRules}; internal. */
function keepsRules(middleware: Function): boolean {
  return (middleware as unknown as Record<symbol, unknown>)[kKeepsRules] === true;
}

/**
 * Composes middleware into one, Koa-style: the first is the outermost.
 *
 * Unlike koa-compose, a middleware may call `next()` again once the
 * previous call settled (retry needs it), which runs everything downstream
 * afresh. Calling it while a call is still pending rejects, and so does a
 * middleware that resolves while its `next()` is pending, which is almost
 * always a missing `await`.
 *
 * @param middleware - the steps, outermost first; the composed function's
 *   own `next` is optional (without it, the innermost `next()` does nothing)
 *   and is given the context, so one function can serve every call
 * @param onNext - runs each time a step calls `next()`, before the next step starts
 * @throws ValidationError when an entry is not a function
 * @example
 * ```ts
 * const run = compose([logTiming, retry()]);
 * await run(ctx, async () => transport.send(ctx));
 * ```
 */
export function compose<S extends object = object>(
  middleware: readonly Middleware<S>[],
  onNext?: (ctx: CompletionContext<S>) => void,
): (ctx: CompletionContext<S>, next?: (ctx: CompletionContext<S>) => Promise<void>) => Promise<void> {
  middleware.forEach((fn, index) => checkMiddleware(fn, `middleware.${index}`));
  const steps = [...middleware];
  const trusted = steps.map(keepsRules);
  return function composed(ctx: CompletionContext<S>, last: (ctx: CompletionContext<S>) => Promise<void> = done): Promise<void> {
    return dispatch({ steps, trusted, ctx, last, onNext }, 0, undefined);
  };
}

/** One composed call: what every step of it shares (one object, where closures per call would be two). */
interface Run<S extends object> {
  steps: readonly Middleware<S>[];
  /** By step: marked with {@link keepsChainRules}, so neither its promise nor its `next()` is checked. */
  trusted: readonly boolean[];
  ctx: CompletionContext<S>;
  last: (ctx: CompletionContext<S>) => Promise<void>;
  onNext: ((ctx: CompletionContext<S>) => void) | undefined;
}

// The innermost step is called directly: an async wrapper around it
// would add a promise and a microtask to every call for nothing.
function dispatch<S extends object>(run: Run<S>, index: number, caller: Link<S> | undefined): Promise<void> {
  if (index < run.steps.length) return step(run, index, caller);
  try {
    return run.last(run.ctx);
  } catch (error) {
    return Promise.reject(error);
  }
}

// Not async: a step is one `then` on its middleware's promise, where an
// async frame (which holds a register file for as long as the call is in
// flight) cost each step of each call several times as many bytes.
function step<S extends object>(run: Run<S>, index: number, caller: Link<S> | undefined): Promise<void> {
  const fn = run.steps[index] as Middleware<S>;
  if (run.trusted[index] === true && calledByTrusted(run, caller)) return trustedStep(run, index, fn);
  const link = new Link(run, index, fn, caller);
  let returned: unknown;
  try {
    returned = fn(run.ctx, link.next);
  } catch (error) {
    // Through the same `then` as a rejection, so the step that called this one hears it settle.
    returned = Promise.reject(error);
  }
  // A middleware that hands back its own pending next() (`return next()`)
  // settles exactly when that call does, so there is nothing to check: its
  // call is passed on as it is, without a `then`, its handlers or a microtask.
  // Not a marked one here: it was called by a checked step, which must hear
  // it settle to clear its pending call, and a marked step's pending call is
  // cleared by no one.
  if (returned !== undefined && returned === link.pending && !run.trusted[index]) {
    link.forwards = true;
    return returned as Promise<void>;
  }
  return Promise.resolve(returned).then(
    (value: unknown) => link.check(value),
    (error: unknown) => link.fail(error),
  );
}

/**
 * A marked step called by a marked step (or first): nothing of it is
 * checked and no step needs to hear it settle, so it needs no {@link Link}
 * (a link, its `next` and that closure's context: about 100 bytes held per
 * step for as long as the call is in flight). Its `next` is one closure,
 * and a step it starts has no caller to report to, as the first has none.
 */
function trustedStep<S extends object>(run: Run<S>, index: number, fn: Middleware<S>): Promise<void> {
  const next = (): Promise<void> => {
    run.onNext?.(run.ctx);
    return dispatch(run, index + 1, undefined);
  };
  let returned: unknown;
  try {
    returned = fn(run.ctx, next);
  } catch (error) {
    return Promise.reject(error);
  }
  if (returned instanceof Promise) return returned as Promise<void>;
  return Promise.resolve(returned).then((value: unknown) => {
    if (typeof value === 'function') throw factoryError(fn, index);
  });
}

/** A middleware factory used uncalled (`use(timing)` for `use(timing())`) returns the middleware it made. */
function factoryError(fn: Function, index: number): ValidationError {
  return new ValidationError(`middleware.${index}`, `${nameOf(fn)} returned a function: it is a middleware factory, so call it, as in use(${nameOf(fn)}())`);
}

/** The `next` a step's middleware gets, and the call it has pending. */
class Link<S extends object> {
  pending: Promise<void> | undefined = undefined;
  /** Its middleware returned its pending call as its own: that call settling settles this step too. */
  forwards = false;

  constructor(
    private readonly run: Run<S>,
    readonly index: number,
    private readonly fn: Middleware<S>,
    /** The step whose `next()` started this one: its pending call is this step's promise. */
    readonly caller: Link<S> | undefined,
  ) {}

  readonly next = (): Promise<void> => {
    // A marked middleware never calls next() while a call is pending, so
    // its call is kept (to tell a `return next()`) but neither checked nor cleared.
    if (this.run.trusted[this.index]) {
      this.run.onNext?.(this.run.ctx);
      return (this.pending = dispatch(this.run, this.index + 1, this));
    }
    if (this.pending) {
      return Promise.reject(new SluiceError('NEXT_PENDING', `${nameOf(this.fn)} called next() again while its previous call was pending`));
    }
    this.run.onNext?.(this.run.ctx);
    const call = dispatch(this.run, this.index + 1, this);
    this.pending = call;
    // A step's call is cleared by the step it started, as that step's
    // promise settles (see `settled`), which costs no promise of its own;
    // the innermost (the transport, no step) is cleared by a `then`. Either
    // runs before the caller's own `await` resumes, so a call settles
    // before its middleware can call next() again, and the pending call it
    // clears is always this one.
    if (this.index + 1 === this.run.steps.length) {
      const clear = () => settle(this);
      call.then(clear, clear);
    }
    return call;
  };

  /** The middleware's promise resolved: it must not have returned a factory's product, nor left its next() pending. */
  check(returned: unknown): void {
    if (this.caller) settle(this.caller);
    const { fn, index } = this;
    // A factory used uncalled (`use(timing)` for `use(timing())`) returns the middleware it made.
    if (typeof returned === 'function') throw factoryError(fn, index);
    if (this.pending && !this.run.trusted[index]) {
      this.pending.catch(() => {});
      throw new SluiceError('MISSING_AWAIT', `${nameOf(fn)} resolved while its next() was still pending: is an \`await\` missing?`);
    }
  }

  /** The middleware's promise rejected: the step that called it hears it settle, and the error goes on. */
  fail(error: unknown): never {
    if (this.caller) settle(this.caller);
    throw error;
  }
}

/** Whether the step that started another (`caller`; none for the first, or a step started by a marked step without a link) is marked, so nothing waits to hear the one it started settle. */
function calledByTrusted<S extends object>(run: Run<S>, caller: Link<S> | undefined): boolean {
  return caller === undefined || run.trusted[caller.index] === true;
}

/**
 * `link`'s pending call settled: cleared there, and in each step that
 * passed that same call on as its own (they settle with it).
 */
function settle<S extends object>(link: Link<S>): void {
  let current: Link<S> | undefined = link;
  while (current) {
    current.pending = undefined;
    if (!current.forwards) return;
    current = current.caller;
  }
}

/** Rejects what is not a middleware, naming the field. */
export function checkMiddleware(middleware: unknown, field: string): void {
  if (typeof middleware !== 'function') throw new ValidationError(field, 'must be a function');
}
