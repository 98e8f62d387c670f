/**
 * What a pure function of a model name gave, kept for the next call with
 * the same name: a pipeline asks for its model's base name, encoding and
 * context window on every call (trimming, counting, pricing), and a
 * pipeline sees a handful of names. Bounded: past `max` names it starts
 * afresh, so names from arbitrary requests cannot grow it without end;
 * internal.
 *
 * @param of - the function, pure in the name
 * @param max - the most names kept
 * @example
 * ```ts
 * const windowOf = memoByModel((model) => lookUp(model));
 * windowOf.clear(); // after the table behind it changed
 * ```
 */
export function memoByModel<T>(of: (model: string) => T, max = 512): ((model: string) => T) & { clear(): void } {
  const known = new Map<string, T>();
  const memo = (model: string): T => {
    const found = known.get(model);
    if (found !== undefined || known.has(model)) return found as T;
    const value = of(model);
    if (known.size >= max) known.clear();
    known.set(model, value);
    return value;
  };
  return Object.assign(memo, { clear: () => known.clear() });
}
