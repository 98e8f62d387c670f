import { z } from 'zod';
import {
  type ChatCompletionRequest,
  type ChatMessage,
  type CompletionContext,
  type Middleware,
  chatMessageSchema,
  parseOptions,
} from '@sluice/core';
import { contextWindow } from './context-window.js';
import { ContextOverflowError } from './context-overflow-error.js';
import { chatFormat, messageTokens } from './count-messages.js';
import { type TrimPlan, planTrim } from './plan-trim.js';
import type { Tokenizer } from './tokenizer.js';
import { loadTokenizer } from './tokenizer-for.js';
import { toolDefinitionTokens } from './tool-tokens.js';
import type { ContextState } from './types.js';

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

const isFunction = (value: unknown) => typeof value === 'function';
const isTokenizer = (value: unknown) => isFunction((value as Tokenizer | undefined)?.count);

const optionsSchema = z.strictObject({
  ratio: z.number().gt(0).max(1).optional(),
  maxTokens: z.number().int().positive().optional(),
  contextWindow: z.custom<(model: string) => number | undefined>(isFunction, 'must be a function').optional(),
  tokenizer: z
    .custom<Tokenizer | ((model: string) => Tokenizer)>(
      (value) => isFunction(value) || isTokenizer(value),
      'must be a Tokenizer or a function of the model',
    )
    .optional(),
  summarize: z
    .custom<(dropped: ChatMessage[], ctx: CompletionContext) => Promise<string | ChatMessage>>(isFunction, 'must be a function')
    .optional(),
});

/**
 * Fits each request into its model's context window before it is sent:
 * keeps the system/developer messages, the last user turn and the newest
 * turns that fit; never separates an assistant's `tool_calls` from their
 * results; preserves order. The budget is the window × `ratio` (0.8) minus
 * the output the request reserves (`max_completion_tokens ?? max_tokens`),
 * or `maxTokens`. Emits `context-trim` when it drops anything, sets
 * `ctx.state.context`, and shares its count as `ctx.state.tokens` so cost
 * and rate limiting never recount. Place it right after `trackCost`,
 * before `budget`.
 *
 * @param options - see {@link TrimContextOptions}; all optional
 * @throws ValidationError naming a bad option (`trimContext.ratio`)
 * @throws ContextOverflowError (per call) when what cannot be dropped is over the budget
 * @example
 * ```ts
 * const llm = createPipeline({ transport })
 *   .use(trackCost())
 *   .use(trimContext({ ratio: 0.8 }))
 *   .use(budget({ limitUsd: 50, period: 'day' }));
 * ```
 */
export function trimContext(options: TrimContextOptions = {}): Middleware {
  const parsed = parseOptions(optionsSchema, options, 'trimContext');
  const ratio = parsed.ratio ?? 0.8;
  const windowOf = parsed.contextWindow ?? contextWindow;
  const tokenizerOf = async (model: string): Promise<Tokenizer> => {
    const { tokenizer } = parsed;
    if (tokenizer === undefined) return loadTokenizer(model);
    return isTokenizer(tokenizer) ? (tokenizer as Tokenizer) : (tokenizer as (model: string) => Tokenizer)(model);
  };

  return async function trimContext(ctx, next) {
    const { request } = ctx;
    const { model } = request;
    const tokenizer = await tokenizerOf(model);
    const format = chatFormat(model);
    let approximate = tokenizer.approximate;
    const counts = request.messages.map((message) => {
      const counted = messageTokens(message, tokenizer, format);
      if (counted.approximate) approximate = true;
      return counted.tokens;
    });
    let overhead = format.priming;
    if (request.tools && request.tools.length > 0) {
      overhead += toolDefinitionTokens(request.tools, tokenizer, format.encoding);
      approximate = true;
    }
    let tokensBefore = overhead;
    for (const count of counts) tokensBefore += count;
    const budget = budgetOf(request, parsed.maxTokens, windowOf(model), ratio);

    if (budget === undefined || tokensBefore <= budget) {
      share(ctx, { tokensBefore, tokensAfter: tokensBefore, budget, dropped: 0, summarized: false, approximate });
      return next();
    }
    let plan = fit(planTrim(request.messages, counts, overhead, budget), model, budget);
    let summary: ChatMessage | undefined;
    if (parsed.summarize && plan.dropped.length > 0) {
      const produced = await parsed.summarize(
        plan.dropped.map((i) => request.messages[i] as ChatMessage),
        ctx,
      );
      summary = parseOptions(
        chatMessageSchema,
        typeof produced === 'string' ? { role: 'system', content: produced } : produced,
        'summarize',
      );
      const counted = messageTokens(summary, tokenizer, format);
      if (counted.approximate) approximate = true;
      plan = fit(planTrim(request.messages, counts, overhead + counted.tokens, budget), model, budget);
    }
    const messages = withSummary(
      plan.kept.map((i) => request.messages[i] as ChatMessage),
      summary,
    );
    ctx.request = { ...request, messages };
    const state = {
      tokensBefore,
      tokensAfter: plan.tokens,
      budget,
      dropped: plan.dropped.length,
      summarized: summary !== undefined,
      approximate,
    };
    share(ctx, state);
    ctx.events.emit('context-trim', {
      id: ctx.id,
      model,
      tokensBefore,
      tokensAfter: plan.tokens,
      dropped: state.dropped,
      budget,
      summarized: state.summarized,
    });
    await next();
  };
}

function budgetOf(
  request: ChatCompletionRequest,
  maxTokens: number | undefined,
  window: number | undefined,
  ratio: number,
): number | undefined {
  if (maxTokens !== undefined) return maxTokens;
  if (window === undefined || !Number.isFinite(window) || window <= 0) return undefined;
  const reserved = request.max_completion_tokens ?? request.max_tokens ?? 0;
  return Math.floor(window * ratio) - reserved;
}

function fit(plan: TrimPlan | { needed: number }, model: string, budget: number): TrimPlan {
  if ('needed' in plan) throw new ContextOverflowError(model, plan.needed, budget);
  return plan;
}

/** Inserts `summary` after the leading system/developer messages. */
function withSummary(messages: ChatMessage[], summary: ChatMessage | undefined): ChatMessage[] {
  if (!summary) return messages;
  let at = 0;
  while (at < messages.length && (messages[at]?.role === 'system' || messages[at]?.role === 'developer')) at++;
  return [...messages.slice(0, at), summary, ...messages.slice(at)];
}

/** Writes this package's state and core's shared prompt count for the request as it now is. */
function share(ctx: CompletionContext, state: ContextState): void {
  ctx.state.context = state;
  ctx.state.tokens = {
    count: state.tokensAfter,
    approximate: state.approximate,
    messages: ctx.request.messages,
    model: ctx.request.model,
  };
}

