import { registerContextWindows } from '@sluice/context';
import { ValidationError } from '@sluice/core';
import { parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';
import { PricesUnavailableError } from './errors.js';
import { canonicalModel } from './model-name.js';
import { type PriceEntry, type PriceEntryInput, type PriceTable, priceEntrySchema, priceTable } from './price-table.js';
import { priceTableOption } from './options.js';

/*
 * LiteLLM's community-maintained `model_prices_and_context_window.json`:
 * one object per model name, prices in USD per token, windows in tokens,
 * plus a `sample_spec` entry that documents the fields. Only the fields read
 * here are validated, per entry, so a new or odd field elsewhere in the file
 * never stops a refresh, and a bad entry is skipped and reported.
 */

/** Options of {@link loadLiteLLMPrices}. */
export interface LoadLiteLLMPricesOptions {
  /**
   * Which `litellm_provider` values to load (default: the first-party APIs
   * `openai`, `anthropic`, `gemini`, `deepseek`), or `'all'`. Resellers
   * (`azure`, `bedrock`, `openrouter`, …) price the same model differently,
   * so load them only if you call them.
   */
  providers?: string[] | 'all';
  /** The table the loaded entries are laid over (default `priceTable()`, the built-in one). */
  into?: PriceTable;
  /** Also register the loaded windows with `@sluice/context` (`registerContextWindows`), for `trimContext`'s default. Default false. */
  registerWindows?: boolean;
  /** The date the file was fetched, `YYYY-MM-DD`, recorded as each entry's `checkedAt` (default: today, UTC). */
  checkedAt?: string;
}

/** An entry of the file that could not be used, and why. */
export interface LiteLLMSkip {
  model: string;
  reason: string;
}

/** What {@link loadLiteLLMPrices} made of the file. */
export interface LiteLLMPrices {
  /** `into` with every loaded entry laid over it. */
  prices: PriceTable;
  /** How many chat entries were loaded. */
  loaded: number;
  /** Chat entries of the chosen providers that were malformed; never thrown. */
  skipped: LiteLLMSkip[];
  /** The loaded context windows by model name (`max_input_tokens`, else `max_tokens`). */
  windows: Record<string, number>;
}

const optionsSchema = z.strictObject({
  providers: z.optional(z.union([z.literal('all'), z.array(z.string().check(z.minLength(1))).check(z.minLength(1))])),
  into: z.optional(priceTableOption),
  registerWindows: z.optional(z.boolean()),
  checkedAt: z.optional(z.iso.date()),
});

const perToken = z.number().check(z.nonnegative());
const tokens = z.number().check(z.int(), z.positive());
const entrySchema = z.object({
  litellm_provider: z.string().check(z.minLength(1)),
  input_cost_per_token: perToken,
  output_cost_per_token: perToken,
  cache_read_input_token_cost: z.nullish(perToken),
  max_input_tokens: z.nullish(tokens),
  max_output_tokens: z.nullish(tokens),
  max_tokens: z.nullish(tokens),
});

const firstParty = ['openai', 'anthropic', 'gemini', 'deepseek'];
const tierKey = /^input_cost_per_token_above_(\d+)k_tokens$/;
// Per-token prices times a million carry float noise (2e-6 * 1e6 = 1.9999999999999998).
const perMillion = (usd: number) => Number((usd * 1e6).toPrecision(12));

/**
 * Reads LiteLLM's community-maintained price file
 * (`model_prices_and_context_window.json`) into a price table, so prices
 * and context windows can be refreshed without a new release of sluice.
 * Only `mode: "chat"` entries are read: input, output and cached-input
 * prices (`input_cost_per_token`, `output_cost_per_token`,
 * `cache_read_input_token_cost`), long-prompt tiers
 * (`input_cost_per_token_above_200k_tokens`, …), the output cap
 * (`max_output_tokens`, else `max_tokens`) and the window
 * (`max_input_tokens`, else `max_tokens`). Each entry is validated on its
 * own: a malformed one is skipped and listed in `skipped`, never thrown.
 * The `sample_spec` entry is ignored. A loaded entry replaces the built-in
 * entry for the same model (`claude-sonnet-4-5` replaces `claude-sonnet-4.5`).
 *
 * @param source - the parsed JSON, or a URL to fetch it from with the global `fetch`
 * @param options - providers to load, the table to extend, whether to register windows
 * @throws ValidationError naming a bad option, or when `source` is not an object of entries
 * @throws PricesUnavailableError (code `PRICES_UNAVAILABLE`, retryable) when the URL cannot be fetched or is not JSON
 * @example
 * ```ts
 * const url = 'https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json';
 * const { prices, skipped } = await loadLiteLLMPrices(url, { registerWindows: true });
 * const llm = createPipeline({ transport }).use(trackCost({ prices })).use(trimContext());
 * ```
 */
export async function loadLiteLLMPrices(source: unknown, options: LoadLiteLLMPricesOptions = {}): Promise<LiteLLMPrices> {
  const config = parseOptions(optionsSchema, options, 'loadLiteLLMPrices');
  const json = typeof source === 'string' || source instanceof URL ? await fetchJson(source) : source;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ValidationError('loadLiteLLMPrices.source', 'must be the parsed model_prices_and_context_window.json (an object of entries) or its URL');
  }
  const providers = config.providers ?? firstParty;
  const checkedAt = config.checkedAt ?? new Date().toISOString().slice(0, 10);
  const sourceName = typeof source === 'string' || source instanceof URL ? shown(source) : 'LiteLLM model_prices_and_context_window.json';
  const skipped: LiteLLMSkip[] = [];
  const loaded: Record<string, PriceEntryInput> = {};
  const windows: Record<string, number> = {};
  // Shortest names last, so an undated name (`gpt-4o`) wins its canonical
  // slot over a dated snapshot priced differently (`gpt-4o-2024-05-13`).
  const names = Object.keys(json).sort((a, b) => b.length - a.length || a.localeCompare(b));
  for (const name of names) {
    const raw: unknown = (json as Record<string, unknown>)[name];
    if (name === 'sample_spec' || (raw as { mode?: unknown } | null)?.mode !== 'chat') continue;
    const provider = (raw as { litellm_provider?: unknown }).litellm_provider;
    if (providers !== 'all' && !(typeof provider === 'string' && providers.includes(provider))) continue;
    const read = entrySchema.safeParse(raw);
    if (!read.success) {
      const issue = read.error.issues[0];
      skipped.push({ model: name, reason: `${issue?.path.join('.') || 'entry'}: ${issue?.message ?? 'is invalid'}` });
      continue;
    }
    const model = name.startsWith(`${read.data.litellm_provider}/`) ? name.slice(read.data.litellm_provider.length + 1) : name;
    const entry = toEntry(read.data, raw as Record<string, unknown>, { source: sourceName, checkedAt });
    const checked = entry === undefined ? undefined : priceEntrySchema.safeParse(entry);
    if (!checked?.success) {
      const issue = checked?.error.issues[0];
      skipped.push({ model: name, reason: issue ? `${issue.path.join('.')}: ${issue.message}` : 'max_output_tokens or max_tokens: required' });
      continue;
    }
    loaded[model] = entry as PriceEntryInput;
    if (checked.data.contextWindow !== undefined) windows[model] = checked.data.contextWindow;
  }
  if (config.registerWindows) registerContextWindows(windows);
  return { prices: overlay(config.into ?? priceTable(), loaded), loaded: Object.keys(loaded).length, skipped, windows };
}

function toEntry(
  data: z.output<typeof entrySchema>,
  raw: Record<string, unknown>,
  provenance: { source: string; checkedAt: string },
): PriceEntryInput | undefined {
  const maxOutput = data.max_output_tokens ?? data.max_tokens ?? undefined;
  if (maxOutput === undefined) return undefined;
  const contextWindow = data.max_input_tokens ?? data.max_tokens ?? undefined;
  const tiers: NonNullable<PriceEntryInput['tiers']> = [];
  for (const key of Object.keys(raw)) {
    const above = tierKey.exec(key)?.[1];
    if (above === undefined) continue;
    const suffix = `_above_${above}k_tokens`;
    const input = raw[key];
    const output = raw[`output_cost_per_token${suffix}`] ?? data.output_cost_per_token;
    const cached = raw[`cache_read_input_token_cost${suffix}`];
    // A tier with a figure that is not a price makes the entry fail validation below.
    tiers.push({
      abovePromptTokens: Number(above) * 1000,
      input: typeof input === 'number' ? perMillion(input) : (input as number),
      output: typeof output === 'number' ? perMillion(output) : (output as number),
      ...(typeof cached === 'number' ? { cachedInput: perMillion(cached) } : {}),
    });
  }
  return {
    input: perMillion(data.input_cost_per_token),
    output: perMillion(data.output_cost_per_token),
    ...(typeof data.cache_read_input_token_cost === 'number' ? { cachedInput: perMillion(data.cache_read_input_token_cost) } : {}),
    maxOutput,
    ...(contextWindow === undefined ? {} : { contextWindow }),
    ...(tiers.length > 0 ? { tiers } : {}),
    ...provenance,
    note: `LiteLLM's community-maintained file (litellm_provider ${data.litellm_provider}), not the provider's page`,
  };
}

/** `base` with `loaded` laid over it; a base entry for a model the file now prices is dropped. */
function overlay(base: PriceTable, loaded: Record<string, PriceEntryInput>): PriceTable {
  const replaced = new Set(Object.keys(loaded).map(canonicalModel));
  const kept: Record<string, PriceEntry> = {};
  for (const [key, entry] of Object.entries(base.entries)) {
    const names = [key, ...(entry.aliases ?? [])];
    if (!names.some((name) => replaced.has(canonicalModel(name)))) kept[key] = entry;
  }
  return priceTable(kept, { defaults: false }).withPrices(loaded);
}

/** The URL without credentials or query (a token in it must never reach an error or an entry). */
function shown(url: string | URL): string {
  try {
    const parsed = new URL(String(url));
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return 'the given URL';
  }
}

async function fetchJson(url: string | URL): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error: unknown) {
    throw new PricesUnavailableError(`could not fetch LiteLLM prices from ${shown(url)}`, error);
  }
  if (!response.ok) throw new PricesUnavailableError(`LiteLLM prices at ${shown(url)} answered HTTP ${response.status}`);
  try {
    return await response.json();
  } catch (error: unknown) {
    throw new PricesUnavailableError(`LiteLLM prices at ${shown(url)} are not JSON`, error);
  }
}
