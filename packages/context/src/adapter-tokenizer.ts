import * as z from 'zod/mini';
import { SluiceError } from '@sluice/core';
import { parseOptions } from '@sluice/core/kit';
import { adapterLimits, countBounded } from './bounded-count.js';
import { type Encoding, encodings, piecePattern } from './encodings.js';
import type { Tokenizer } from './tokenizer.js';

// Built on the first call, not at import.
const encodingSchema = () => z.enum(encodings as [Encoding, ...Encoding[]]);

/**
 * Validates the `encoding` argument of an adapter factory; internal.
 *
 * @param encoding - what the caller passed
 * @param factory - the factory's name, for the error's field
 * @throws ValidationError when it is not an {@link Encoding}
 */
export function parseEncoding(encoding: unknown, factory: string): Encoding {
  return parseOptions(encodingSchema(), encoding, `${factory}.encoding`);
}

/**
 * Imports an optional peer dependency, or says which one to install; internal.
 *
 * @param load - the dynamic import
 * @param name - the package to install
 * @throws SluiceError `TOKENIZER_UNAVAILABLE` when the import fails
 */
export async function importPeer<T>(load: () => Promise<T>, name: string): Promise<T> {
  try {
    return await load();
  } catch (error) {
    throw new SluiceError('TOKENIZER_UNAVAILABLE', `${name} is not installed: add it to use this tokenizer (npm install ${name})`, {
      cause: error,
    });
  }
}

/**
 * A tokenizer over another library's encoder, with bounded time: runs of
 * ordinary pieces go to `countSpan` whole, an over-long piece in segments
 * (its count then errs high and is flagged); internal.
 *
 * @param name - the tokenizer's name
 * @param encoding - which pre-tokenizer pattern bounds the pieces
 * @param countSpan - the library's count of a text
 */
export function adapterTokenizer(name: string, encoding: Encoding, countSpan: (text: string) => number): Tokenizer {
  const measure = (text: string) =>
    countBounded(text, piecePattern(encoding), (from, to) => countSpan(text.slice(from, to)), { coalesce: true, limits: adapterLimits });
  return { name, approximate: false, measure, count: (text) => measure(text).tokens };
}
