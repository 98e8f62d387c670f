import { z } from 'zod';

const perMillion = z.number().finite().nonnegative();

const tierSchema = z.strictObject({
  /** The tier applies when the prompt has more tokens than this. */
  abovePromptTokens: z.number().int().positive(),
  input: perMillion,
  cachedInput: perMillion.optional(),
  output: perMillion,
});

/** One model's prices (USD per million tokens), limits and provenance. */
export const priceEntrySchema = z
  .strictObject({
    /** Uncached input (prompt) tokens. */
    input: perMillion,
    /** Prompt tokens served from the provider's cache; charged as `input` when omitted. */
    cachedInput: perMillion.optional(),
    /** Output tokens, reasoning tokens included. */
    output: perMillion,
    /**
     * The model's context window in tokens, for a model `@sluice/context`'s
     * shared window table does not know (your own models). Built-in entries
     * leave it out: their windows live in that one table.
     */
    contextWindow: z.number().int().positive().optional(),
    /** The most output tokens one call can produce: the worst case when a request sets no cap. */
    maxOutput: z.number().int().positive(),
    /**
     * Higher prices for long prompts, e.g. `{ abovePromptTokens: 200_000, input: 6, output: 22.5 }`.
     * As the providers bill it, the tier prices every token of the call.
     */
    tiers: z.array(tierSchema).optional(),
    /** Other names of the model, matched like the key. */
    aliases: z.array(z.string().min(1)).optional(),
    /** The price's source: the provider's own pricing page for the built-in entries (a URL). */
    source: z.string().min(1).optional(),
    /** When the price was checked, `YYYY-MM-DD`. */
    checkedAt: z.iso.date().optional(),
    /**
     * A third-party page the figures were confirmed on at `checkedAt`, when
     * the provider's own page (`source`) could not be: a last resort,
     * named so you can judge it.
     */
    confirmedBy: z.string().min(1).optional(),
    /** False when some figure could not be confirmed at `checkedAt` (`note` says which). */
    verified: z.boolean().optional(),
    note: z.string().optional(),
  })
  .refine((entry) => entry.contextWindow === undefined || entry.maxOutput <= entry.contextWindow, {
    message: 'must not exceed contextWindow',
    path: ['maxOutput'],
  });

/** A price table entry, as validated. */
export type PriceEntry = z.output<typeof priceEntrySchema>;
/** A price table entry as you write it. */
export type PriceEntryInput = z.input<typeof priceEntrySchema>;
