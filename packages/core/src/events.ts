import { EventEmitter } from 'eventemitter3';
import type { SluiceEvents } from './index.js';

/** How a call ended. */
export type SettleOutcome = 'success' | 'error' | 'cancelled';

/** The listener signature for each event in {@link SluiceEvents}. */
export type SluiceEventListeners = {
  [K in keyof SluiceEvents]: (payload: SluiceEvents[K]) => void;
};

/**
 * A pipeline's typed event emitter (eventemitter3). A listener that throws
 * never becomes the call's error: `emit` catches it and reports it as a
 * `listener-error` event instead.
 */
export class SluiceEmitter extends EventEmitter<SluiceEventListeners> {
  override emit<K extends EventEmitter.EventNames<SluiceEventListeners>>(
    event: K,
    ...args: EventEmitter.EventArgs<SluiceEventListeners, K>
  ): boolean {
    try {
      return super.emit(event, ...args);
    } catch (error) {
      if (event !== 'listener-error') super.emit('listener-error', { event: String(event), error });
      return true;
    }
  }
}

/** Creates the typed emitter a pipeline uses; share one between pipelines to merge their events. */
export function createEmitter(): SluiceEmitter {
  return new SluiceEmitter();
}
