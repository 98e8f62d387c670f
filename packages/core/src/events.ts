import { EventEmitter } from 'eventemitter3';
import type { Usage } from './schemas.js';

/**
 * Every event a pipeline can emit, by name. Packages add theirs by
 * declaration merging from their own `index.ts`:
 *
 * ```ts
 * declare module '@sluice/core' {
 *   interface SluiceEvents { retry: RetryEvent }
 * }
 * ```
 */
export interface SluiceEvents {
  /** A call entered the pipeline. */
  request: { id: string; model: string; stream: boolean; tags: Readonly<Record<string, string>> };
  /** A call settled (for a stream: when its last chunk was read, it broke, or it was cancelled). */
  response: {
    id: string;
    model: string;
    stream: boolean;
    outcome: SettleOutcome;
    durationMs: number;
    usage: Usage | undefined;
    /** The error's code when the outcome is `error`. */
    errorCode: string | undefined;
  };
  /** One more request of a batch finished. */
  'batch-progress': { done: number; failed: number; total: number };
  /** A settlement listener threw; the call's own result is unaffected. */
  'listener-error': { id: string; error: unknown };
}

/** How a call ended. */
export type SettleOutcome = 'success' | 'error' | 'cancelled';

/** The listener signature for each event in {@link SluiceEvents}. */
export type SluiceEventListeners = {
  [K in keyof SluiceEvents]: (payload: SluiceEvents[K]) => void;
};

/** A pipeline's typed event emitter (eventemitter3). */
export type SluiceEmitter = EventEmitter<SluiceEventListeners>;

/** Creates the typed emitter a pipeline uses; share one between pipelines to merge their events. */
export function createEmitter(): SluiceEmitter {
  return new EventEmitter<SluiceEventListeners>();
}
