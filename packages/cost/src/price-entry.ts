import * as z from 'zod/mini';

/** Says what a missing field is for, where zod's own message says only that a number was expected. */
const required = (what: string) => ({ error: (issue: { input?: unknown }) => (issue.input === undefined ? `required: ${what}` : undefined) });

const perMillion = z.number(required('USD per million tokens')).check(z.nonnegative());

const tierSchema = z.strictObject({
  /** The tier applies when the prompt has more tokens than this. */
  abovePromptTokens: z.number().check(z.int(), z.positive()),
  input: perMillion,
  cachedInput: z.optional(perMillion),
  output: perMillion,
});

/** One model's prices (USD per million tokens), limits and provenance. */
export const priceEntrySchema = z
  .strictObject({
    /** Uncached input (prompt) tokens. */
    input: perMillion,
    /** Prompt tokens served from the provider's cache; charged as `input` when omitted. */
    cachedInput: z.optional(perMillion),
    /** Output tokens, reasoning tokens included. */
    output: perMillion,
    /**
     * The model's context window in tokens, for a model `@sluice/context`'s
     * shared window table does not know (your own models). Built-in entries
     * leave it out: their windows live in that one table.
     */
    contextWindow: z.optional(z.number().check(z.int(), z.positive())),
    /** The most output tokens one call can produce: the worst case when a request sets no cap. */
    maxOutput: z.number(required('the most output tokens one call can produce (what a budget reserves for a request with no max_tokens)')).check(z.int(), z.positive()),
    /**
     * Higher prices for long prompts, e.g. `{ abovePromptTokens: 200_000, input: 6, output: 22.5 }`.
     * As the providers bill it, the tier prices every token of the call.
     */
    tiers: z.optional(z.array(tierSchema)),
    /** Other names of the model, matched like the key. */
    aliases: z.optional(z.array(z.string().check(z.minLength(1)))),
    /** The price's source: the provider's own pricing page for the built-in entries (a URL). */
    source: z.optional(z.string().check(z.minLength(1))),
    /** When the price was checked, `YYYY-MM-DD`. */
    checkedAt: z.optional(z.iso.date()),
    /**
     * A third-party page the figures were confirmed on at `checkedAt`, when
     * the provider's own page (`source`) could not be: a last resort,
     * named so you can judge it.
     */
    confirmedBy: z.optional(z.string().check(z.minLength(1))),
    /** False when some figure could not be confirmed at `checkedAt` (`note` says which). */
    verified: z.optional(z.boolean()),
    note: z.optional(z.string()),
  })
  .check(
    z.refine((entry) => entry.contextWindow === undefined || entry.maxOutput <= entry.contextWindow, {
      message: 'must not exceed contextWindow',
      path: ['maxOutput'],
    }),
  );

/** A price table entry, as validated. */
export type PriceEntry = z.output<typeof priceEntrySchema>;
/** A price table entry as you write it. */
export type PriceEntryInput = z.input<typeof priceEntrySchema>;
