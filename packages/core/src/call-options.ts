import * as z from 'zod/mini';
import type { CompletionContext } from './context.js';

/** Per-call options of `complete`, `stream`, `run` and `batch`. */
export interface CallOptions {
  signal?: AbortSignal;
  /** One deadline for the whole call: every attempt, wait and middleware. */
  timeoutMs?: number;
  /** Labels (user, tenant, feature) that keyed middleware and reports use. */
  tags?: Record<string, string>;
  /**
   * The call this one is made for (a router's hop, say): aborting it (its
   * caller, its deadline, `close()`) aborts this one with the same reason,
   * and this one's deadline is no later than its. Cheaper than passing
   * `signal` and `timeoutMs` along: no AbortSignal, no second timer.
   */
  parent?: CompletionContext;
}

/** The schema of {@link CallOptions}: its parse gives every error about them. */
export const callOptionsSchema = z.strictObject({
  signal: z.optional(z.custom<AbortSignal>((value) => value instanceof AbortSignal, 'must be an AbortSignal')),
  timeoutMs: z.optional(z.number().check(z.positive())),
  tags: z.optional(z.record(z.string(), z.string())),
  parent: z.optional(
    z.custom<CompletionContext>((value) => typeof (value as CompletionContext | undefined)?.remainingMs === 'function', 'must be a CompletionContext'),
  ),
});

/**
 * The options of a call, when a plain look can vouch for them: only known
 * keys, each of the type the schema asks for. Anything else (an unknown or
 * misspelt key, a wrong type, a tags object that is not a plain record of
 * strings) returns `undefined`, and the caller parses with the schema, so
 * every error and its message come from one place. Every hop of a router
 * and every request of `sluice serve` passes options; the schema's parse
 * of them cost more than the rest of an empty pipeline's own bookkeeping.
 *
 * @param options - what the caller passed
 */
export function plainCallOptions(options: unknown): CallOptions | undefined {
  if (typeof options !== 'object' || options === null || Object.getPrototypeOf(options) !== Object.prototype) return undefined;
  const given = options as Record<string, unknown>;
  // `for…in` rather than `Object.keys`: no array per call, and with the
  // plain prototype checked above it sees exactly the own enumerable keys.
  for (const key in given) {
    const value = given[key];
    switch (key) {
      case 'signal':
        if (value !== undefined && !(value instanceof AbortSignal)) return undefined;
        break;
      case 'timeoutMs':
        if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)) return undefined;
        break;
      case 'tags':
        if (value !== undefined && !isStringRecord(value)) return undefined;
        break;
      case 'parent':
        if (value !== undefined && typeof (value as Partial<CompletionContext> | null)?.remainingMs !== 'function') return undefined;
        break;
      default:
        return undefined;
    }
  }
  return given as CallOptions;
}

function isStringRecord(value: unknown): value is Record<string, string> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return false;
  for (const key in value) if (Object.hasOwn(value, key) && typeof (value as Record<string, unknown>)[key] !== 'string') return false;
  return true;
}
