import type { ChatMessage, Usage } from './schemas.js';

// The two interfaces other packages augment. They live in this leaf module
// so no file of core reaches back into `index.ts` for them; an augmentation
// written against `@sluice/core` still merges, because the root re-exports
// them.

/** How a call ended. */
export type SettleOutcome = 'success' | 'error' | 'cancelled';

/** What a stateful middleware does when its store fails (see `keyedState`). */
export type StoreErrorPolicy = 'open' | 'closed' | 'memory';

/**
 * Per-request data of middleware, each under its own key. A package
 * declares its key by augmenting this interface from its `index.ts`:
 *
 * ```ts
 * declare module '@sluice/core' {
 *   interface SluiceState { retry?: RetryState }
 * }
 * ```
 */
export interface SluiceState {
  /** The prompt's token count, if a middleware counted it (see {@link PromptTokens}). */
  tokens?: PromptTokens;
  /**
   * The middleware that answered this call itself instead of the upstream
   * (`'cache'` for a cache hit, or a call that shared an identical call's
   * answer). Nothing was billed for the call; `ctx.usage` is what the
   * answer cost when it was bought, so cost tracking can record $0 and that
   * cost as saved without knowing which package answered.
   */
  answeredBy?: string;
  /**
   * Set on a call whose upstream request another call was charged for:
   * the middleware that handed the cost on (`'cache'`: the call sent a
   * stream that identical calls joined, and left it before the end while
   * they read on; the first of them to read it to the end carries its
   * cost). Cost tracking records this call at $0, and no saving.
   */
  costCarriedBy?: string;
}

/**
 * A prompt's token count, made once and reused by every middleware that
 * needs it (the limiter's reservation, the budget's estimate, the cost
 * report), so a long history is never encoded twice.
 */
export interface PromptTokens {
  count: number;
  /** True when the count is an estimate (no public tokenizer, or bounded counting). */
  approximate: boolean;
  /**
   * The exact `messages` array that was counted. A middleware that
   * rewrites the request replaces the array, which makes this count stale.
   */
  messages: readonly ChatMessage[];
  model: string;
}

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
  /**
   * An event or settlement listener threw; the call's own result and the
   * other listeners are unaffected. `id` names the call for settlement
   * listeners, `event` the event whose listener threw.
   */
  'listener-error': { id?: string; event?: string; error: unknown };
  /**
   * A stateful middleware's store failed (timed out, refused, threw) and
   * its `policy` decided what happened to the call: `open` let it through,
   * `closed` refused it with `STORE_UNAVAILABLE`, `memory` used in-process
   * state instead. Never the call's own error.
   */
  'store-error': {
    /** The middleware whose state it was (`breaker`, `ratelimit`, `cost`). */
    name: string;
    /** The state's key, without the namespace. */
    key: string;
    operation: 'get' | 'update';
    policy: StoreErrorPolicy;
    error: unknown;
    /** The call, when the failure happened inside one. */
    id: string | undefined;
  };
}
