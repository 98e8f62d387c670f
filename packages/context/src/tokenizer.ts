/**
 * A token count and whether it is exact.
 *
 * @example
 * ```ts
 * const { tokens, approximate } = countTokens('Hello, world', 'gpt-4o'); // { tokens: 4, approximate: false }
 * ```
 */
export interface TokenCount {
  tokens: number;
  /**
   * True when the count is an estimate: the model's tokenizer is not public,
   * an over-long piece was merged in windows (the default tokenizer) or cut
   * (the adapters; it then errs high), or the message carried
   * parts counted by formula (images, tool definitions, tool calls).
   */
  approximate: boolean;
}

/**
 * Counts the tokens of a text. Implement it to plug your own tokenizer in
 * (the adapters {@link gptTokenizer} and {@link tiktokenWasm} are two).
 *
 * `count` must be synchronous and must not throw on any string; a
 * tokenizer that cannot bound its own time should say so in `approximate`
 * or implement `measure`.
 *
 * @example
 * ```ts
 * const words: Tokenizer = { name: 'words', approximate: true, count: (text) => text.split(/\s+/).length };
 * countTokens('one two three', 'my-model', { tokenizer: words }); // { tokens: 3, approximate: true }
 * ```
 */
export interface Tokenizer {
  /** Names the tokenizer in logs and events, e.g. `o200k_base`. */
  readonly name: string;
  /** Whether every count of this tokenizer is an estimate. */
  readonly approximate: boolean;
  /** The number of tokens of `text`. */
  count(text: string): number;
  /**
   * Optional: the count together with whether this particular count is
   * approximate (a bounded tokenizer flags the texts it had to cut).
   * `countTokens` prefers it to `count`.
   */
  measure?(text: string): TokenCount;
}
