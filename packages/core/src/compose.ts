import type { CompletionContext, Middleware } from './context.js';
import { SluiceError, ValidationError } from './errors.js';

const nameOf = (fn: Function) => fn.name || 'anonymous middleware';
const done = () => Promise.resolve();

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
 * @throws ValidationError when an entry is not a function
 * @example
 * ```ts
 * const run = compose([logTiming, retry()]);
 * await run(ctx, async () => transport.send(ctx));
 * ```
 */
export function compose<S extends object = object>(
  middleware: readonly Middleware<S>[],
): (ctx: CompletionContext<S>, next?: () => Promise<void>) => Promise<void> {
  middleware.forEach((fn, index) => checkMiddleware(fn, `middleware.${index}`));
  return function composed(ctx: CompletionContext<S>, last: () => Promise<void> = done): Promise<void> {
    // The innermost step is called directly: an async wrapper around it
    // would add a promise and a microtask to every call for nothing.
    const dispatch = (index: number): Promise<void> => {
      if (index < middleware.length) return step(index);
      try {
        return last();
      } catch (error) {
        return Promise.reject(error);
      }
    };
    const step = async (index: number): Promise<void> => {
      const fn = middleware[index] as Middleware<S>;
      let pending: Promise<void> | undefined;
      const next = (): Promise<void> => {
        if (pending) {
          return Promise.reject(
            new SluiceError('NEXT_PENDING', `${nameOf(fn)} called next() again while its previous call was pending`),
          );
        }
        const call = dispatch(index + 1);
        pending = call;
        // Registered before the caller's own `await`, so it runs first.
        const clear = () => {
          if (pending === call) pending = undefined;
        };
        call.then(clear, clear);
        return call;
      };
      const returned: unknown = await fn(ctx, next);
      // A factory used uncalled (`use(timing)` for `use(timing())`) returns the middleware it made.
      if (typeof returned === 'function') {
        throw new ValidationError(`middleware.${index}`, `${nameOf(fn)} returned a function: it is a middleware factory, so call it, as in use(${nameOf(fn)}())`);
      }
      if (pending) {
        pending.catch(() => {});
        throw new SluiceError(
          'MISSING_AWAIT',
          `${nameOf(fn)} resolved while its next() was still pending: is an \`await\` missing?`,
        );
      }
    };
    return dispatch(0);
  };
}

/** Rejects what is not a middleware, naming the field. */
export function checkMiddleware(middleware: unknown, field: string): void {
  if (typeof middleware !== 'function') throw new ValidationError(field, 'must be a function');
}
