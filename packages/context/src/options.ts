import type { ChatMessage, CompletionContext } from '@sluice/core';
import * as z from 'zod/mini';
import type { Tokenizer } from './tokenizer.js';

/**
 * Options of {@link trimContext}.
 *
 * @example
 * ```ts
 * const options: TrimContextOptions = {
 *   ratio: 0.8,
 *   contextWindow: (model) => (model.startsWith('my-finetune') ? 32_768 : contextWindow(model)),
 *   summarize: async (dropped) => summarizer.complete(dropped),
 * };
 * ```
 */
export interface TrimContextOptions {
  /** The share of the model's window the prompt plus the reserved output may use (default 0.8). */
  ratio?: number;
  /**
   * The prompt's token budget, used as is instead of window × `ratio` −
   * reserved output (for a model the window table does not know, or a
   * budget of your own).
   */
  maxTokens?: number;
  /**
   * The model's context window in tokens, or `undefined` when unknown
   * (default: {@link contextWindow}, the built-in table in the README plus
   * any windows registered with `registerContextWindows`). A request for a
   * model with no window and no `maxTokens` is passed on untrimmed.
   */
  contextWindow?: (model: string) => number | undefined;
  /** The tokenizer, or a function of the model (default: `loadTokenizer(model)`). */
  tokenizer?: Tokenizer | ((model: string) => Tokenizer);
  /**
   * Replaces the dropped turns with a summary your function produces (a
   * string becomes a `system` message), inserted after the leading
   * system/developer messages and counted: if it does not fit in what the
   * kept turns leave, older kept turns are dropped to make room.
   */
  summarize?: (dropped: ChatMessage[], ctx: CompletionContext) => Promise<string | ChatMessage>;
}

/** Whether `value` can be called; internal. */
export const isFunction = (value: unknown) => typeof value === 'function';
/** Whether `value` is a {@link Tokenizer}; internal. */
export const isTokenizer = (value: unknown) => isFunction((value as Tokenizer | undefined)?.count);

const buildSchema = () =>
  z.strictObject({
    ratio: z.optional(z.number().check(z.gt(0), z.maximum(1))),
    maxTokens: z.optional(z.number().check(z.int(), z.positive())),
    contextWindow: z.optional(z.custom<(model: string) => number | undefined>(isFunction, 'must be a function')),
    tokenizer: z.optional(
      z.custom<Tokenizer | ((model: string) => Tokenizer)>(
        (value) => isFunction(value) || isTokenizer(value),
        'must be a Tokenizer or a function of the model',
      ),
    ),
    summarize: z.optional(
      z.custom<(dropped: ChatMessage[], ctx: CompletionContext) => Promise<string | ChatMessage>>(isFunction, 'must be a function'),
    ),
  });

let schema: ReturnType<typeof buildSchema> | undefined;

/** The zod schema of {@link TrimContextOptions}, built on the first `trimContext()` rather than at import; internal. */
export function trimContextOptionsSchema(): ReturnType<typeof buildSchema> {
  schema ??= buildSchema();
  return schema;
}
