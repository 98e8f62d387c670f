// Test helpers (not published: `files` excludes src/**/test-*.ts).
import { createRequire } from 'node:module';
import { Tiktoken } from 'js-tiktoken/lite';
import { countBounded } from './bounded-count.js';
import { BytePairEncoder, type RankFile } from './byte-pair-encoder.js';
import { type Encoding, piecePattern } from './encodings.js';
import { encodeUtf8Into } from './utf8.js';

const requireRanks = createRequire(import.meta.url);

/** js-tiktoken's rank file for `encoding`. */
export function rankFile(encoding: Encoding): RankFile {
  return requireRanks(`js-tiktoken/ranks/${encoding}`) as RankFile;
}

const references = new Map<Encoding, Tiktoken>();

/** js-tiktoken's own count, special-token text counted as plain text: the reference. */
export function jsTiktokenCount(text: string, encoding: Encoding): number {
  let reference = references.get(encoding);
  if (!reference) {
    reference = new Tiktoken(rankFile(encoding) as ConstructorParameters<typeof Tiktoken>[0]);
    references.set(encoding, reference);
  }
  return reference.encode(text, [], []).length;
}

const encoders = new Map<Encoding, BytePairEncoder>();

/** The longest piece, in UTF-16 units, that {@link uncutCount} merges whole. */
export const uncutUnits = 16_384;

/** This package's merge with no cut and no window up to {@link uncutUnits}: exact for any piece that long. */
export function uncutCount(text: string, encoding: Encoding): number {
  let encoder = encoders.get(encoding);
  if (!encoder) {
    encoder = BytePairEncoder.fromRankFile(rankFile(encoding), { capacity: 3 * uncutUnits, cut: false });
    encoders.set(encoding, encoder);
  }
  const bytes = new Uint8Array(3 * uncutUnits);
  const run = (from: number, to: number) => (encoder as BytePairEncoder).count(bytes, encodeUtf8Into(text, from, to, bytes));
  return countBounded(text, piecePattern(encoding), run, { limits: { pieceLimit: uncutUnits, segmentLength: uncutUnits } }).tokens;
}

/** Ordinary text: English prose, TypeScript and Chinese paragraphs. */
export const paragraphs = {
  english:
    'The original access layer trimmed history to the newest messages that fit 80% of the window, ' +
    "while keeping the system message. Its failures in production weren't subtle: token use grew 47 times " +
    'over what was expected, because history grew without bound, and one upstream fault took down 100% of users.',
  code: [
    "import { createPipeline, openAICompatible } from '@sluice/core';",
    '',
    'export async function main(messages: ChatMessage[]): Promise<void> {',
    "  const llm = createPipeline({ transport: openAICompatible({ baseUrl, apiKey: process.env['KEY'] ?? '' }) });",
    '  for (let i = 0; i < 3; i++) {',
    "    const reply = await llm.complete({ model: 'gpt-4.1', messages, max_tokens: 1_024 });",
    '    console.log(reply.choices[0]?.message.content ?? "<empty>", { i, ok: true });',
    '  }',
    '}',
  ].join('\n'),
  chinese:
    '自然语言处理是人工智能的一个重要分支，它研究如何让计算机理解和生成人类语言。' +
    '近年来，大型语言模型在翻译、摘要和问答等任务上取得了显著进展。' +
    '然而，这些模型的上下文窗口有限，因此需要对历史消息进行裁剪，同时保留系统提示和最后一轮用户输入。',
} as const;
