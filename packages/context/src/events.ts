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
