/**
 * Reads an async iterable to its end and returns its items.
 *
 * @param iterable - a stream, or any async iterable
 * @throws whatever the iteration throws
 * @example
 * ```ts
 * const chunks = await collect(llm.stream(chat('Hi', { stream: true })));
 * ```
 */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}
