import { EventEmitter } from 'eventemitter3';
import type { SluiceEvents } from './augmentable.js';

/** The listener signature for each event in {@link SluiceEvents}. */
export type SluiceEventListeners = {
  [K in keyof SluiceEvents]: (payload: SluiceEvents[K]) => void;
};

/** eventemitter3's stored listener (not in its public types). */
interface StoredListener {
  fn: (...args: unknown[]) => void;
  context: unknown;
  once: boolean;
}

/**
 * A pipeline's typed event emitter (eventemitter3). A listener that throws
 * never becomes the call's error and never keeps the other listeners of
 * the event from hearing it: each runs on its own, and a throw is
 * reported as a `listener-error` event instead.
 */
export class SluiceEmitter extends EventEmitter<SluiceEventListeners> {
  override emit<K extends EventEmitter.EventNames<SluiceEventListeners>>(
    event: K,
    ...args: EventEmitter.EventArgs<SluiceEventListeners, K>
  ): boolean {
    const stored = (this as unknown as { _events: Record<string | symbol, StoredListener | StoredListener[] | undefined> })
      ._events[EventEmitter.prefixed ? `${EventEmitter.prefixed}${String(event)}` : (event as string | symbol)];
    if (stored === undefined) return false;
    // A copy: a listener may add or remove listeners while we iterate.
    const listeners = Array.isArray(stored) ? stored.slice() : [stored];
    for (const listener of listeners) {
      if (listener.once) this.removeListener(event, listener.fn as never, listener.context, true);
      try {
        listener.fn.apply(listener.context, args);
      } catch (error) {
        if (event !== 'listener-error') this.emit('listener-error', { event: String(event), error });
      }
    }
    return true;
  }
}

/** Creates the typed emitter a pipeline uses; share one between pipelines to merge their events. */
export function createEmitter(): SluiceEmitter {
  return new SluiceEmitter();
}
