import { type ChatCompletionRequest, type ChatMessage, type CompletionContext, type Middleware, ValidationError } from '@sluice/core';
import { abortReason, chatMessageSchema, keepsChainRules, parseOptions, untilAborted } from '@sluice/core/kit';
import { contextWindow } from './context-window.js';
import { isTokenizer, type TrimContextOptions, trimContextOptionsSchema } from './options.js';
import { PromptTooLongError } from './errors.js';
import { chatFormat, messageTokens } from './count-messages.js';
import { type TrimPlan, planTrim } from './plan-trim.js';
import type { Tokenizer } from './tokenizer.js';
import { tokenizerWhenLoaded } from './tokenizer-for.js';
import { toolDefinitionTokens } from './tool-tokens.js';

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
 * @throws PromptTooLongError (per call) when what cannot be dropped is over the budget
 * @throws ValidationError (per call) naming `request.max_tokens` or `request.max_completion_tokens` when the output it reserves alone fills the window
 * @example
 * ```ts
 * const llm = createPipeline({ transport })
 *   .use(trackCost())
 *   .use(trimContext({ ratio: 0.8 }))
 *   .use(budget({ limitUsd: 50, period: 'day' }));
 * ```
 */
export function trimContext(options: TrimContextOptions = {}): Middleware {
  const parsed = parseOptions(trimContextOptionsSchema(), options, 'trimContext');
  const ratio = parsed.ratio ?? 0.8;
  const windowOf = parsed.contextWindow ?? contextWindow;
  // The tokenizer at once when it is ready (every call after the first):
  // a call that needs no trim then runs without a promise or an await of
  // its own, which over the network cost more than the count itself.
  const tokenizerOf = (model: string): Tokenizer | Promise<Tokenizer> => {
    const { tokenizer } = parsed;
    if (tokenizer === undefined) return tokenizerWhenLoaded(model);
    return isTokenizer(tokenizer) ? (tokenizer as Tokenizer) : (tokenizer as (model: string) => Tokenizer)(model);
  };

  /** Counts the prompt and passes it on as it is, or trims it first. */
  const fitTo = (ctx: CompletionContext, next: () => Promise<void>, tokenizer: Tokenizer): Promise<void> => {
    const { request } = ctx;
    const { model } = request;
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
    return trim(ctx, next, { tokenizer, format, counts, overhead, tokensBefore, budget, approximate });
  };

  /** Drops (and summarises) what does not fit, then passes the rest on. */
  const trim = async (ctx: CompletionContext, next: () => Promise<void>, counted: Counted): Promise<void> => {
    const { request } = ctx;
    const { model } = request;
    const { tokenizer, format, counts, overhead, tokensBefore, budget } = counted;
    let { approximate } = counted;
    let plan = fit(planTrim(request.messages, counts, overhead, budget), model, budget);
    let summary: ChatMessage | undefined;
    if (parsed.summarize && plan.dropped.length > 0) {
      let produced: string | ChatMessage;
      try {
        // A summariser that does not hear ctx.signal (its own model call hung) must not hold the call past its deadline.
        produced = await untilAborted(
          ctx,
          parsed.summarize(
            plan.dropped.map((i) => request.messages[i] as ChatMessage),
            ctx,
          ),
        );
      } catch (error) {
        // The call's own abort or deadline ends it; anything else (the summariser's model down, a
        // bug in it) costs the summary, not the call: the turns are dropped as without `summarize`.
        const aborted = abortReason(ctx);
        if (aborted !== undefined) throw aborted;
        ctx.events.emit('listener-error', { id: ctx.id, event: 'summarize', error });
        return send(ctx, next, request, plan, undefined, tokensBefore, budget, approximate);
      }
      summary = parseOptions(
        chatMessageSchema,
        typeof produced === 'string' ? { role: 'system', content: produced } : produced,
        'summarize',
      );
      const counted = messageTokens(summary, tokenizer, format);
      if (counted.approximate) approximate = true;
      plan = fit(planTrim(request.messages, counts, overhead + counted.tokens, budget), model, budget);
    }
    return send(ctx, next, request, plan, summary, tokensBefore, budget, approximate);
  };

  /** Sends the kept turns (and the summary, if any), sharing what was done. */
  const send = (
    ctx: CompletionContext,
    next: () => Promise<void>,
    request: ChatCompletionRequest,
    plan: TrimPlan,
    summary: ChatMessage | undefined,
    tokensBefore: number,
    budget: number,
    approximate: boolean,
  ): Promise<void> => {
    const { model } = request;
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
    return next();
  };

  return keepsChainRules<Middleware>(function trimContext(ctx, next) {
    try {
      const tokenizer = tokenizerOf(ctx.request.model);
      if (tokenizer instanceof Promise) return tokenizer.then((loaded) => fitTo(ctx, next, loaded));
      return fitTo(ctx, next, tokenizer);
    } catch (error) {
      return Promise.reject(error);
    }
  });
}

/** A prompt counted and found over its budget: what trimming it starts from. */
interface Counted {
  tokenizer: Tokenizer;
  format: ReturnType<typeof chatFormat>;
  counts: number[];
  overhead: number;
  tokensBefore: number;
  budget: number;
  approximate: boolean;
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
  const usable = Math.floor(window * ratio);
  if (reserved >= usable) {
    // Not a prompt too long by some tokens (the budget would read as negative): the output asked
    // for alone fills the window, which the upstream would refuse too.
    const field = request.max_completion_tokens !== undefined ? 'request.max_completion_tokens' : 'request.max_tokens';
    throw new ValidationError(
      field,
      `${reserved} output tokens leave no room for the prompt: ${request.model} has a window of ${window} tokens, ${usable} of them for prompt and output at ratio ${ratio}`,
    );
  }
  return usable - reserved;
}

function fit(plan: TrimPlan | { needed: number }, model: string, budget: number): TrimPlan {
  if ('needed' in plan) throw new PromptTooLongError(model, plan.needed, budget);
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

