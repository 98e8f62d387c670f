/**
 * A minimal abort source. undici accepts any object with `aborted`,
 * `reason` and `addEventListener`; a real AbortController costs several
 * microseconds and, on Node 20, keeps garbage alive across collections,
 * which the benchmark showed as the largest single overhead per call.
 * Where a real `AbortSignal` is needed (`ctx.signal`), it is made lazily
 * from one of these.
 */
export class AbortSource {
  aborted = false;
  reason: unknown = undefined;
  private listeners: Array<() => void> | undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const index = this.listeners?.indexOf(listener) ?? -1;
    if (index >= 0) this.listeners?.splice(index, 1);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const listener of listeners) listener();
  }

  /** A real AbortSignal that follows this source. */
  toSignal(): AbortSignal {
    const controller = new AbortController();
    if (this.aborted) controller.abort(this.reason);
    else this.addEventListener('abort', () => controller.abort(this.reason));
    return controller.signal;
  }
}
