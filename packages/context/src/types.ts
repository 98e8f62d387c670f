/**
 * What `trimContext` did to a call, under `ctx.state.context`.
 *
 * @example
 * ```ts
 * llm.use(async function logTrim(ctx, next) {
 *   await next();
 *   const trim = ctx.state.context;
 *   if (trim && trim.dropped > 0) log.info(`${trim.tokensBefore} → ${trim.tokensAfter} tokens`);
 * });
 * ```
 */
export interface ContextState {
  /** Prompt tokens of the request as it came in. */
  tokensBefore: number;
  /** Prompt tokens of the request as it is sent (with any summary). */
  tokensAfter: number;
  /**
   * The prompt's token budget; `undefined` when the model's window is
   * unknown and no `maxTokens` was given, in which case nothing was trimmed.
   */
  budget: number | undefined;
  /** How many messages were dropped. */
  dropped: number;
  /** Whether a summary replaced the dropped messages. */
  summarized: boolean;
  /** Whether the counts are estimates (see `TokenCount.approximate`). */
  approximate: boolean;
}

/**
 * The `context-trim` event: `trimContext` dropped messages from a call.
 *
 * @example
 * ```ts
 * llm.events.on('context-trim', (e) => log.info(`${e.id}: dropped ${e.dropped} messages, ${e.tokensBefore} → ${e.tokensAfter}`));
 * ```
 */
export interface ContextTrimEvent {
  id: string;
  model: string;
  tokensBefore: number;
  tokensAfter: number;
  /** How many messages were dropped. */
  dropped: number;
  budget: number;
  /** Whether a summary replaced them. */
  summarized: boolean;
}

declare module '@sluice/core' {
  interface SluiceEvents {
    'context-trim': ContextTrimEvent;
  }
  interface SluiceState {
    context?: ContextState;
  }
}
