import { SluiceError } from '@sluice/core';
import { countBounded, encoderLimits } from './bounded-count.js';
import { BytePairEncoder, type RankFile } from './byte-pair-encoder.js';
import { type Encoding, patternOf } from './encodings.js';
import type { TokenCount, Tokenizer } from './tokenizer.js';
import { encodeUtf8Into } from './utf8.js';

/*
 * Rank files are loaded on the first exact count, never at import: the
 * o200k_base file is 2.3 MB of JavaScript. `count` is synchronous, so the
 * first count of an encoding loads it synchronously and is exact, never a
 * silent estimate; `loadTokenizer()` does the same work ahead of time
 * through a dynamic `import()` that bundlers follow, e.g. at startup.
 *
 * The synchronous load needs a `require`, reached through
 * `process.getBuiltinModule` (Node 20.16+, Bun) rather than an import of
 * `node:module`, so bundles for the web and workers stay free of Node
 * built-ins. Where there is none (a browser, a worker, a bundle without
 * node_modules), a count before `loadTokenizer()` throws
 * TOKENIZER_NOT_LOADED instead of estimating.
 */

const encoders = new Map<Encoding, BytePairEncoder>();
const loading = new Map<Encoding, Promise<BytePairEncoder>>();
let requireRanks: ((id: string) => unknown) | null | undefined;

function rankFileOf(module: RankFile | { default: RankFile }): RankFile {
  return 'default' in module ? module.default : module;
}

function loadSync(encoding: Encoding): BytePairEncoder {
  let encoder = encoders.get(encoding);
  if (!encoder) {
    requireRanks ??= nodeRequire();
    let rankFile: RankFile | { default: RankFile } | undefined;
    try {
      rankFile = requireRanks?.(`js-tiktoken/ranks/${encoding}`) as RankFile | { default: RankFile } | undefined;
    } catch {
      rankFile = undefined;
    }
    if (!rankFile) {
      throw new SluiceError(
        'TOKENIZER_NOT_LOADED',
        `the ${encoding} rank file cannot be loaded synchronously here: await loadTokenizer(model) before counting`,
        { final: true },
      );
    }
    encoder = BytePairEncoder.fromRankFile(rankFileOf(rankFile));
    encoders.set(encoding, encoder);
  }
  return encoder;
}

/** A `require` beside this module, where the runtime has one; `null` where it has none. */
function nodeRequire(): ((id: string) => unknown) | null {
  const runtime = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const module = runtime?.getBuiltinModule?.('node:module') as
    | { createRequire(url: string): (id: string) => unknown }
    | undefined;
  if (!module) return null;
  try {
    return module.createRequire(import.meta.url);
  } catch {
    return null;
  }
}

function loadAsync(encoding: Encoding): Promise<BytePairEncoder> {
  const ready = encoders.get(encoding);
  if (ready) return Promise.resolve(ready);
  let pending = loading.get(encoding);
  if (!pending) {
    // Literal specifiers, so bundlers can see and split them.
    const rankFile =
      encoding === 'o200k_base' ? import('js-tiktoken/ranks/o200k_base') : import('js-tiktoken/ranks/cl100k_base');
    pending = rankFile.then(
      (module) => {
        const encoder = encoders.get(encoding) ?? BytePairEncoder.fromRankFile(rankFileOf(module));
        encoders.set(encoding, encoder);
        return encoder;
      },
      (error: unknown) => {
        loading.delete(encoding);
        throw error;
      },
    );
    loading.set(encoding, pending);
  }
  return pending;
}

// Room for the UTF-8 bytes of the longest piece the splitter lets through.
const scratch = new Uint8Array(3 * encoderLimits.pieceLimit + 4);

/** The exact tokenizer of an OpenAI encoding, over js-tiktoken's rank files; internal. */
export class EncodingTokenizer implements Tokenizer {
  readonly name: string;
  readonly approximate = false;
  private readonly pattern: RegExp;

  constructor(readonly encoding: Encoding) {
    this.name = encoding;
    this.pattern = new RegExp(patternOf(encoding), 'gu');
  }

  /** Whether the rank file is loaded, so a count costs no load. */
  get loaded(): boolean {
    return encoders.has(this.encoding);
  }

  /** Loads the rank file through a dynamic import (once per encoding). */
  async load(): Promise<void> {
    await loadAsync(this.encoding);
  }

  count(text: string): number {
    return this.measure(text).tokens;
  }

  measure(text: string): TokenCount {
    if (text.length === 0) return { tokens: 0, approximate: false };
    const encoder = loadSync(this.encoding);
    return countBounded(
      text,
      this.pattern,
      (from, to) => encoder.count(scratch, encodeUtf8Into(text, from, to, scratch)),
      { limits: encoderLimits },
    );
  }
}

/** One tokenizer per encoding, shared, so their caches are too. */
export const encodingTokenizers: Readonly<Record<Encoding, EncodingTokenizer>> = {
  o200k_base: new EncodingTokenizer('o200k_base'),
  cl100k_base: new EncodingTokenizer('cl100k_base'),
};
