/**
 * Runs the rest of the pipeline and goes on with `answered` or `failed`,
 * as `await next()` in a try/catch would, but as one `then`: an async
 * middleware's frame and its awaits cost promises, and stay alive for as
 * long as the call waits on the network, which with many calls in flight
 * costs more than the middleware's own work. A `next` that throws at once
 * goes to `failed` too.
 *
 * @param next - the middleware's `next`
 * @param answered - runs when the rest of the pipeline resolved
 * @param failed - runs with what it rejected or threw with; rethrow to fail the call
 * @returns what `answered` or `failed` gave
 * @example
 * ```ts
 * const timed: Middleware = (ctx, next) => {
 *   const started = ctx.clock.now();
 *   return afterNext(
 *     next,
 *     () => void (ctx.state.tookMs = ctx.clock.now() - started),
 *     (error) => { ctx.state.tookMs = ctx.clock.now() - started; throw error; },
 *   );
 * };
 * ```
 */
export function afterNext<T>(
  next: () => Promise<void>,
  answered: () => T | PromiseLike<T>,
  failed: (error: unknown) => T | PromiseLike<T>,
): Promise<T> {
  let running: Promise<void>;
  try {
    running = next();
  } catch (error) {
    try {
      return Promise.resolve(failed(error));
    } catch (rethrown) {
      return Promise.reject(rethrown);
    }
  }
  return running.then(answered, failed);
}
