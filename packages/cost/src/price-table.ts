import { contextWindow as sharedContextWindow } from '@sluice/context';
import { parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';
import { defaultPrices } from './default-prices.js';
import { canonicalModel } from './model-name.js';

import { priceEntrySchema, type PriceEntry, type PriceEntryInput } from './price-entry.js';

export { priceEntrySchema, type PriceEntry, type PriceEntryInput };

const entriesSchema = z.record(z.string().check(z.minLength(1)), priceEntrySchema);

/** A model name matched to its table entry. */
export interface PriceMatch {
  /** The table key that matched (`gpt-4.1` for `openai/gpt-4.1-2025-04-14`). */
  model: string;
  entry: PriceEntry;
}

/**
 * Model prices, looked up by name with snapshot and provider-prefix
 * matching. Immutable: `withPrices` returns a new table.
 */
export interface PriceTable {
  readonly entries: Readonly<Record<string, PriceEntry>>;
  /** The entry for `model` (exact key first, then canonical match), or undefined. */
  lookup(model: string): PriceMatch | undefined;
  /**
   * The model's context window: its entry's own `contextWindow`, else
   * `@sluice/context`'s shared table (`contextWindow(model)`), else
   * undefined. Pass it to `trimContext({ contextWindow: prices.contextWindow })`
   * so windows you priced yourself are trimmed to as well.
   */
  contextWindow(model: string): number | undefined;
  /**
   * A new table with `overrides` added; an override replaces the whole entry
   * of the same key (spread the old one to change one field).
   *
   * @throws ValidationError naming the bad field (`priceTable.my-model.output`)
   */
  withPrices(overrides: Readonly<Record<string, PriceEntryInput>>): PriceTable;
}

/**
 * The built-in price table (see the README for every price, its source
 * and date), extended or overridden by `overrides`.
 *
 * @param overrides - entries to add or replace, by model name
 * @param options - `defaults: false` starts from an empty table instead of the built-in one
 * @throws ValidationError naming the bad field, e.g. `priceTable.my-model.output`
 * @example
 * ```ts
 * const prices = priceTable({
 *   'my-finetune': { input: 3, output: 12, contextWindow: 128_000, maxOutput: 16_384, source: 'our contract' },
 *   'gpt-4.1': { ...priceTable().entries['gpt-4.1']!, input: 1.6 }, // a negotiated rate
 * });
 * prices.lookup('openai/gpt-4.1-2025-04-14')?.model; // 'gpt-4.1'
 * ```
 */
export function priceTable(
  overrides: Readonly<Record<string, PriceEntryInput>> = {},
  options: { defaults?: boolean } = {},
): PriceTable {
  if (options.defaults === false) return createTable({}, overrides);
  return Object.keys(overrides).length === 0 ? defaultTable() : createTable(defaultTable().entries, overrides);
}

/** Model names a table remembers the match of. */
const maxMatches = 1_024;

let builtIn: PriceTable | undefined;
function defaultTable(): PriceTable {
  builtIn ??= createTable({}, defaultPrices);
  return builtIn;
}

function createTable(
  base: Readonly<Record<string, PriceEntry>>,
  overrides: Readonly<Record<string, PriceEntryInput>>,
): PriceTable {
  const added = parseOptions(entriesSchema, overrides, 'priceTable');
  for (const entry of Object.values(added)) entry.tiers?.sort((a, b) => a.abovePromptTokens - b.abovePromptTokens);
  const entries: Record<string, PriceEntry> = { ...base, ...added };
  const byCanonical = new Map<string, string>();
  // Later keys win, so an override spelled differently still beats a default.
  for (const [key, entry] of Object.entries(entries)) {
    for (const name of [key, ...(entry.aliases ?? [])]) byCanonical.set(canonicalModel(name), key);
  }
  const frozen = Object.freeze(entries);
  // Looked up two or three times per call (budget, trackCost): each name is
  // matched once (the canonical match runs three regular expressions) and
  // its match shared, frozen. Bounded, since model names come from callers.
  const matches = new Map<string, PriceMatch | null>();
  const lookup = (model: string): PriceMatch | undefined => {
    const known = matches.get(model);
    if (known !== undefined) return known ?? undefined;
    const key = Object.hasOwn(frozen, model) ? model : byCanonical.get(canonicalModel(model));
    const entry = key === undefined ? undefined : frozen[key];
    const match = key === undefined || entry === undefined ? undefined : Object.freeze({ model: key, entry });
    if (matches.size >= maxMatches) matches.clear();
    matches.set(model, match ?? null);
    return match;
  };
  return {
    entries: frozen,
    lookup,
    contextWindow(model) {
      const own = lookup(model)?.entry.contextWindow;
      return own ?? sharedContextWindow(model);
    },
    withPrices(more) {
      return createTable(frozen, more);
    },
  };
}
