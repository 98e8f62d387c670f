import type { AbortSource } from './abort-source.js';
import { AbortError } from './errors.js';

/**
 * The calls following one caller's `AbortSignal`, behind a single listener
 * on it; internal. A caller who passes one signal to many calls at once (a
 * batch, a `Promise.all` under one AbortController) would otherwise get a
 * listener per call, and past ten Node prints "MaxListenersExceededWarning:
 * Possible EventTarget memory leak detected", which is no leak: each
 * listener was removed when its call settled. The listener (this object,
 * through `handleEvent`: no closure) goes when the last call following the
 * signal lets go of it, so a long-lived signal holds nothing between calls.
 */
export class SignalFollowers {
  /** The first call following the signal, and the rest (most signals have one). */
  private first: AbortSource | undefined;
  private more: AbortSource[] | undefined = undefined;

  constructor(
    private readonly signal: AbortSignal,
    source: AbortSource,
  ) {
    this.first = source;
    signal.addEventListener('abort', this, { once: true });
  }

  /** The signal aborted: every call following it is aborted, each with an error of its own. */
  handleEvent(): void {
    followers.delete(this.signal);
    const { first, more } = this;
    this.first = undefined;
    this.more = undefined;
    const cause = this.signal.reason;
    first?.abort(new AbortError('The call was aborted', { cause }));
    if (more) for (const source of more) source.abort(new AbortError('The call was aborted', { cause }));
  }

  add(source: AbortSource): void {
    if (this.first === undefined) this.first = source;
    else (this.more ??= []).push(source);
  }

  /** Stops following for `source`; the listener goes with the last one. */
  remove(source: AbortSource): void {
    if (this.first === source) this.first = this.more?.pop();
    else if (this.more) {
      const at = this.more.indexOf(source);
      if (at !== -1) {
        // Order does not matter: the last takes the place of the one leaving.
        const last = this.more.pop() as AbortSource;
        if (at < this.more.length) this.more[at] = last;
      }
    }
    if (this.first === undefined && followers.get(this.signal) === this) {
      followers.delete(this.signal);
      this.signal.removeEventListener('abort', this);
    }
  }
}

const followers = new WeakMap<AbortSignal, SignalFollowers>();

/**
 * Aborts `source` (a call's) when the caller's `signal` aborts, with an
 * `ABORTED` error whose cause is the signal's reason; returns what to
 * call `remove(source)` on once the call no longer follows it. One
 * listener on the signal serves every call following it at once; internal.
 *
 * @param signal - the caller's signal, not aborted yet
 * @param source - the call's abort source
 */
export function followCallerSignal(signal: AbortSignal, source: AbortSource): SignalFollowers {
  const found = followers.get(signal);
  if (found !== undefined) {
    found.add(source);
    return found;
  }
  const created = new SignalFollowers(signal, source);
  followers.set(signal, created);
  return created;
}
