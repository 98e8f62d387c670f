import type { SluiceEmitter, SluiceEvents } from '@sluice/core';

/** One recorded event: its name and its payload. */
export type RecordedEvent<K extends keyof SluiceEvents = keyof SluiceEvents> = {
  [N in K]: { name: N; payload: SluiceEvents[N] };
}[K];

/** What {@link recordEvents} returns. */
export interface EventRecorder<K extends keyof SluiceEvents = keyof SluiceEvents> {
  /** Every recorded event, in the order they were emitted. */
  readonly all: ReadonlyArray<RecordedEvent<K>>;
  /** The payloads of every `name` event so far, in order. */
  of<N extends K>(name: N): Array<SluiceEvents[N]>;
  /** The names of the events so far, in order (repeats kept). */
  names(): K[];
  /**
   * The payload of the next `name` event emitted from now on (that
   * `predicate` accepts, when given).
   */
  next<N extends K>(name: N, predicate?: (payload: SluiceEvents[N]) => boolean): Promise<SluiceEvents[N]>;
  /** Forgets what was recorded so far. */
  clear(): void;
  /** Stops recording and detaches from the emitter. */
  stop(): void;
}

type Emit = (event: string, ...args: unknown[]) => boolean;
type ListenerCount = (event: string) => number;
interface Patchable {
  emit: Emit;
  listenerCount: ListenerCount;
  on(event: string, listener: (payload: unknown) => void): unknown;
  off(event: string, listener: (payload: unknown) => void): unknown;
}

/**
 * Records the events emitted on `emitter`, in order: those in `names`, or
 * every event. It is a listener like any other, so an emitter that skips
 * building a payload nobody listens to still emits it. Recording every
 * event works by wrapping the emitter's own `emit` and `listenerCount`
 * (the recorder counts as one listener of each event); `stop()` undoes it.
 *
 * @param emitter - a pipeline's `events`
 * @param names - the events to keep (default: all)
 * @example
 * ```ts
 * const events = recordEvents(llm.events, ['retry', 'retry-stop']);
 * await llm.complete(chat('Hi'));
 * expect(events.of('retry')).toHaveLength(1);
 * ```
 */
export function recordEvents<K extends keyof SluiceEvents = keyof SluiceEvents>(
  emitter: SluiceEmitter,
  names?: readonly K[],
): EventRecorder<K> {
  const all: Array<RecordedEvent<K>> = [];
  const waiters = new Set<{ name: string; accept: (payload: unknown) => boolean; resolve: (payload: never) => void }>();
  const record = (name: string, payload: unknown) => {
    all.push({ name, payload } as RecordedEvent<K>);
    for (const waiter of waiters) {
      if (waiter.name === name && waiter.accept(payload)) {
        waiters.delete(waiter);
        waiter.resolve(payload as never);
      }
    }
  };

  const target = emitter as unknown as Patchable;
  const listeners = new Map<string, (payload: unknown) => void>();
  const listen = (name: string) => {
    const listener = (payload: unknown) => record(name, payload);
    listeners.set(name, listener);
    target.on(name, listener);
  };
  let unpatch = () => {};
  if (names !== undefined) {
    for (const name of new Set(names)) listen(String(name));
  } else {
    // The emitter reports a throwing listener with its base class's emit, past any wrapper.
    listen('listener-error');
    const patched = { emit: Object.hasOwn(target, 'emit'), listenerCount: Object.hasOwn(target, 'listenerCount') };
    const { emit, listenerCount } = target;
    const wrappedEmit: Emit = function (this: unknown, event, ...args) {
      if (event !== 'listener-error') record(event, args[0]);
      return emit.call(this, event, ...args);
    };
    const wrappedCount: ListenerCount = function (this: unknown, event) {
      return listenerCount.call(this, event) + (event === 'listener-error' ? 0 : 1);
    };
    target.emit = wrappedEmit;
    target.listenerCount = wrappedCount;
    unpatch = () => {
      // Undo only what is still ours: a later recorder may have wrapped over us.
      if (target.emit === wrappedEmit) {
        if (patched.emit) target.emit = emit;
        else delete (target as Partial<Patchable>).emit;
      }
      if (target.listenerCount === wrappedCount) {
        if (patched.listenerCount) target.listenerCount = listenerCount;
        else delete (target as Partial<Patchable>).listenerCount;
      }
    };
  }

  return {
    all,
    of: <N extends K>(name: N) => all.filter((event) => event.name === name).map((event) => event.payload as SluiceEvents[N]),
    names: () => all.map((event) => event.name as K),
    next<N extends K>(name: N, predicate?: (payload: SluiceEvents[N]) => boolean) {
      return new Promise<SluiceEvents[N]>((resolve) => {
        waiters.add({ name: String(name), accept: (payload) => predicate?.(payload as SluiceEvents[N]) ?? true, resolve });
      });
    },
    clear: () => void all.splice(0),
    stop() {
      waiters.clear();
      for (const [name, listener] of listeners) target.off(name, listener);
      listeners.clear();
      unpatch();
      unpatch = () => {};
    },
  };
}
