import { adapterTokenizer, importPeer, parseEncoding } from './adapter-tokenizer.js';
import type { Encoding } from './encodings.js';
import type { Tokenizer } from './tokenizer.js';

/**
 * A tokenizer on tiktoken, OpenAI's Rust tokenizer compiled to WASM (an
 * optional peer dependency, imported only when this is called): loads in
 * 0.5–0.8 s and encodes about 0.65 M tokens/s here. Text that looks like a
 * special token is counted as plain text (`encode_ordinary`). Time is
 * bounded as with the default tokenizer. Its encoder lives in WASM memory
 * for the life of the process.
 *
 * @param encoding - `o200k_base` (gpt-4o, gpt-4.1, gpt-5, o-series) or `cl100k_base` (gpt-4, gpt-3.5)
 * @throws ValidationError for another encoding
 * @throws SluiceError `TOKENIZER_UNAVAILABLE` when tiktoken is not installed
 * @example
 * ```ts
 * const tokenizer = await tiktokenWasm('cl100k_base');
 * countTokens(text, 'gpt-4', { tokenizer });
 * ```
 */
export async function tiktokenWasm(encoding: Encoding): Promise<Tokenizer> {
  const name = parseEncoding(encoding, 'tiktokenWasm');
  const library = await importPeer(() => import('tiktoken'), 'tiktoken');
  const encoder = library.get_encoding(name);
  return adapterTokenizer(`tiktoken/${name}`, name, (text) => encoder.encode_ordinary(text).length);
}
