import { en } from 'zod/locales';
import * as z from 'zod/mini';
import { ValidationError } from './errors.js';

// zod/mini loads no locale, so every issue would read "Invalid input".
// English becomes the default the way the classic `zod` import makes it
// (when it builds its first schema, and sluice's schemas were classic
// before): only when no locale is set, so an application's own wins.
if (!z.config().localeError) z.config(en());

/**
 * Parses `value` with `schema`, throwing a {@link ValidationError} that
 * names the first bad field (`retry.attempts`, `request.messages.2.role`).
 * Every factory in sluice validates its options through this.
 *
 * Any zod 4 schema works: `zod/mini`'s (sluice's own, for bundle size)
 * or `zod`'s. Declare it with `z.strictObject` (at any depth) and an
 * unknown key is reported before anything else, with the nearest known
 * key by edit distance: `openAICompatible.baseURL: is not an option; did you mean
 * baseUrl?`. A typo otherwise shows up as a missing field, or not at all
 * (the option silently ignored). `hints` answers keys that are not typos
 * but a different idea (`timeout` where there are four timeouts).
 *
 * @param schema - the zod schema
 * @param value - what the caller passed
 * @param name - prefix of the field path: the factory's or argument's name
 * @param hints - advice for known wrong keys, by key (`{ timeout: 'use attemptTimeoutMs or idleTimeoutMs' }`)
 * @throws ValidationError naming the field and what is wrong with it
 * @example
 * ```ts
 * import * as z from 'zod/mini';
 * const options = parseOptions(z.strictObject({ attempts: z.optional(z.number().check(z.int(), z.minimum(1))) }), input, 'retry');
 * ```
 */
export function parseOptions<T extends z.core.$ZodType>(
  schema: T,
  value: unknown,
  name: string,
  hints?: Readonly<Record<string, string>>,
): z.output<T> {
  if (isCallContext(value)) {
    // `use(retry)` instead of `use(retry())`: the factory was run as a middleware, with the call as its options.
    throw new ValidationError(name, `got a call's context as its options: it is a middleware factory, so use(${name}()), not use(${name})`);
  }
  const result = z.safeParse(schema, value);
  if (result.success) return result.data;
  const { issues } = result.error;
  let unknown: z.core.$ZodIssueUnrecognizedKeys | undefined;
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys' && (unknown === undefined || issue.path.length < unknown.path.length)) unknown = issue;
  }
  if (unknown !== undefined) {
    const key = unknown.keys[0] ?? '';
    const field = [name, ...unknown.path.map(String), key].join('.');
    const advice = (hints && Object.hasOwn(hints, key) ? hints[key] : undefined) ?? didYouMean(key, knownKeys(schema, unknown.path));
    throw new ValidationError(field, advice ? `is not an option; ${advice}` : 'is not an option', { cause: result.error });
  }
  const issue = issues[0];
  const path = [name, ...(issue?.path ?? []).map(String)].join('.');
  throw new ValidationError(path, issue?.message ?? 'is invalid', { cause: result.error });
}

/**
 * The candidate nearest to `key` by edit distance (case ignored), if it is
 * near enough to be a typo of it.
 *
 * @param key - what the caller wrote (`baseURL`, `apikey`)
 * @param candidates - the keys that exist
 * @returns the nearest candidate, or undefined when none is close
 */
export function closestKey(key: string, candidates: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  // Up to a third of the key may be wrong, at least two characters.
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function didYouMean(key: string, known: readonly string[]): string | undefined {
  const near = closestKey(key, known);
  return near === undefined ? undefined : `did you mean ${near}?`;
}

interface SchemaDef {
  type?: string;
  shape?: Record<string, z.core.$ZodType>;
  innerType?: z.core.$ZodType;
  element?: z.core.$ZodType;
  valueType?: z.core.$ZodType;
  in?: z.core.$ZodType;
}

/** The keys of the object schema at `path` inside `schema`, unwrapping optional, nullable, default, arrays and records. */
function knownKeys(schema: z.core.$ZodType, path: readonly PropertyKey[]): string[] {
  let current: z.core.$ZodType | undefined = schema;
  let index = 0;
  while (current !== undefined) {
    const def: SchemaDef = current._zod.def as SchemaDef;
    if (def.innerType !== undefined) current = def.innerType;
    else if (def.type === 'pipe') current = def.in;
    else if (index === path.length) return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
    else if (def.type === 'array') (current = def.element), index++;
    else if (def.type === 'record') (current = def.valueType), index++;
    else if (def.type === 'object') current = def.shape?.[String(path[index++])];
    else return [];
  }
  return [];
}

/** Levenshtein distance with adjacent transpositions (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(d[(i - 1) * cols + j]! + 1, d[i * cols + j - 1]! + 1, d[(i - 1) * cols + j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, d[(i - 2) * cols + j - 2]! + 1);
      d[i * cols + j] = value;
    }
  }
  return d[rows * cols - 1]!;
}

function isCallContext(value: unknown): boolean {
  const candidate = value as { onSettled?: unknown; request?: unknown; remainingMs?: unknown } | null;
  return typeof candidate?.onSettled === 'function' && typeof candidate.remainingMs === 'function' && candidate.request !== undefined;
}

/**
 * An option that caps a wait the upstream asks for (`maxPauseMs`,
 * `maxCooldownMs`): a positive number of ms, or `Infinity` for no cap,
 * which `z.number()` refuses.
 */
export const upperBoundMs = z.custom<number>((value) => typeof value === 'number' && value > 0, 'must be a positive number of ms (Infinity for no bound)');
