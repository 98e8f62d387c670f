/**
 * @sluice/context against the tokenizers it could have used, on the same
 * texts in the same run, all o200k_base (gpt-4o):
 *
 * 1. Load: each encoder in a fresh child process (`tokens-child.ts`): time
 *    to first count, CPU and memory.
 * 2. Counting throughput (tokens/s) on English prose, code and Chinese,
 *    and time on pathological inputs (`a` × n, `中` × n). The baselines'
 *    pathological runs happen in the child, killed at a time limit.
 * 3. Appending one turn to a 1,000-message history (cached counts) against
 *    re-counting every message.
 * 4. `trimContext()` on 1,000 messages with cached counts against
 *    re-counting every message and trimming.
 *
 * @module
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { type ChatMessage, type ChatCompletionRequest, createPipeline, type Transport } from '@sluice/core';
import {
  configureTokenCache,
  countMessages,
  countTokens,
  gptTokenizer,
  loadTokenizer,
  tiktokenWasm,
  type Tokenizer,
  trimContext,
} from '@sluice/context';
import { seededRandom } from '@sluice/testing';
import { fixed, median, table } from './lib.js';
import type { ChildEncoder, ChildMessage } from './tokens-child.js';

/** Name to select this benchmark: `pnpm bench tokens`. */
export const name = 'tokens';
/** What it compares. */
export const description =
  '@sluice/context vs js-tiktoken, gpt-tokenizer and tiktoken (WASM): load, tokens/s, append to and trim a 1,000-message history';

const quick = process.env.BENCH_QUICK === '1';
/** Fresh processes per encoder for the load figures. */
const loadRepeats = quick ? 1 : 3;
/** A baseline's pathological run stops before a length predicted (quadratically) to take longer than this. */
const probeCapMs = quick ? 150 : 400;
/** Distinct texts of each kind, each counted once by each contender, and the time after which a cell stops. */
const variants = quick ? 3 : 10;
const maxCellMs = quick ? 250 : 1_200;
/** The first chars of each kind that every tokenizer must count identically. */
const agreementChars = quick ? 5_000 : 20_000;
const textChars = 100_000;
const model = 'gpt-4o';
const historyLength = 1_000;
/** The README's defaults of the count cache, restored after the uncached sections. */
const cacheDefaults = { maxEntries: 20_000, maxChars: 8_000_000 };

const appendTargetMs = 0.1;
const trimTargetMs = 1;

// ---------------------------------------------------------------- texts


const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

/** Function words and contractions, most frequent first: half of the words of prose. */
const commonWords = (
  'the of and to a in is that it was for on with he as I his at by be this had not are but from or have an they which ' +
  'one you were her all she there would their we him been has when who will more no if out so said what up its about ' +
  "into than them can only other new some could time these two may then do first any my now such like our over man me " +
  "even most made after also did many before must through back years where much your way well down should because each " +
  "just those people how too little state good very make world still own see men work long get here between both life " +
  "being under never day same another know while last might us great old year off come since against go came right used " +
  "isn't don't wasn't couldn't it's I'm they'd we'll"
).split(' ');

/**
 * Real words, most frequent first: o200k_base's tokens that are a space and 3+ lowercase letters, in rank
 * order (a BPE merges frequent strings first, so rank roughly follows frequency). Set by {@link prepareWords}.
 */
let rankedWords: string[] = [];

// Made-up words from English morphemes (un·settle·ment), which a BPE splits into 2–5 tokens like a
// real rare word, a name or a word of another Latin-script language.
const prefixes = ['', '', '', 'un', 're', 'dis', 'over', 'under', 'pre', 'mis', 'inter', 'counter', 'out', 'sub', 'trans'];
const roots = (
  'act build call claim count cover deliver develop dress equip estim expect fasten form found fortun govern grace ' +
  'harbour hazard honour imagin inform instruct interpret judge labour light limit manag measur merchant mount ' +
  'navig negoti nourish observ occup order organ paint persuad plant pleas port possess preserv print profit ' +
  'question reason record regul resolv respect scatter settl shelter shift sign sound spirit structur suspect ' +
  'sustain temper tender threaten trace trouble venture weather whisper wonder worship wrestl yield'
).split(' ');
const suffixes = ['', 's', 'ed', 'ing', 'ment', 'ments', 'able', 'ably', 'ation', 'ations', 'er', 'ers', 'ive', 'ively', 'ful', 'ness', 'ingly'];
let madeUpWords: string[] = [];

/**
 * Reads the real words out of the o200k_base rank file, and keeps the made-up words that are at
 * least 2 tokens; runs once, before any text is generated.
 *
 * @param count - an o200k_base count
 */
async function prepareWords(count: (text: string) => number): Promise<void> {
  if (rankedWords.length > 0) return;
  const ranks = (await import('js-tiktoken/ranks/o200k_base')).default;
  const words: string[] = [];
  for (const line of ranks.bpe_ranks.split('\n')) {
    const fields = line.split(' ');
    for (let f = 2; f < fields.length; f++) {
      const token = Buffer.from(fields[f] as string, 'base64').toString('latin1');
      if (/^ [a-z]{3,}$/.test(token)) words.push(token.slice(1));
    }
  }
  rankedWords = words;
  const tail = new Set<string>();
  for (const prefix of prefixes) for (const root of roots) for (const suffix of suffixes) tail.add(prefix + root + suffix);
  madeUpWords = [...tail].filter((word) => count(` ${word}`) >= 2);
}

/** Zipf's law: an index below `n` with probability about ∝ 1/(index + 1). */
const zipf = (random: () => number, n: number) => Math.min(n - 1, Math.floor(Math.exp(random() * Math.log(n + 1)) - 1));

/** A word of prose: half the time a function word; else a real word, by Zipf over the ranks; 3% made up. */
function proseWord(random: () => number): string {
  const roll = random();
  if (roll < 0.5 || rankedWords.length === 0) return commonWords[zipf(random, commonWords.length)] as string;
  if (roll < 0.97) return rankedWords[zipf(random, rankedWords.length)] as string;
  return pick(random, madeUpWords);
}

/** Sentences of 6–24 words from `word`; commas, numbers, quotes, capitals, paragraphs. */
function prose(seed: number, chars: number, word: (random: () => number) => string): string {
  const random = seededRandom(seed);
  const parts: string[] = [];
  let length = 0;
  while (length < chars) {
    const count = 6 + Math.floor(random() * 19);
    const words: string[] = [];
    for (let i = 0; i < count; i++) {
      let next = word(random);
      const roll = random();
      if (roll < 0.02) next = Math.floor(random() * 100_000).toLocaleString('en-US');
      else if (roll < 0.025) next = `${(random() * 100).toFixed(1)}%`;
      else if (roll < 0.04) next = `"${next}"`;
      else if (roll < 0.06) next = next.charAt(0).toUpperCase() + next.slice(1);
      if (i === 0) next = next.charAt(0).toUpperCase() + next.slice(1);
      if (i < count - 1 && random() < 0.07) next += ',';
      words.push(next);
    }
    const sentence = words.join(' ') + pick(random, ['.', '.', '.', '.', '?', '!', ';']);
    const joined = sentence + (random() < 0.15 ? '\n\n' : ' ');
    parts.push(joined);
    length += joined.length;
  }
  return parts.join('').slice(0, chars);
}

/** English prose, shaped like real prose in o200k_base: about 4.4 chars a token, 3% of words multi-token. */
function englishText(seed: number, chars: number): string {
  return prose(seed, chars, proseWord);
}

/** Prose of made-up words only: every word 2–5 tokens, the merge's slow path (rare words, names, other languages). */
function madeUpText(seed: number, chars: number): string {
  return prose(seed, chars, (random) => pick(random, madeUpWords.length > 0 ? madeUpWords : commonWords));
}

/** An identifier word: a real word, by Zipf over the 5,000 most frequent. */
const codeWord = (random: () => number) =>
  rankedWords.length > 0 ? (rankedWords[zipf(random, Math.min(5_000, rankedWords.length))] as string) : pick(random, commonWords);

/** TypeScript-like code: functions, calls, loops, comments, strings and numbers, indented. */
function codeText(seed: number, chars: number): string {
  const random = seededRandom(seed);
  const id = () => {
    const first = codeWord(random);
    const second = codeWord(random);
    return first + second.charAt(0).toUpperCase() + second.slice(1);
  };
  const type = () => pick(random, ['string', 'number', 'boolean', 'ChatMessage[]', 'Record<string, unknown>', 'Promise<void>']);
  const lines: string[] = [];
  let length = 0;
  while (length < chars) {
    const block: string[] = [`export async function ${id()}(${id()}: ${type()}, ${id()}: ${type()}): Promise<${type()}> {`];
    const body = 3 + Math.floor(random() * 8);
    for (let i = 0; i < body; i++) {
      const indent = '  '.repeat(1 + Math.floor(random() * 2));
      block.push(
        indent +
          pick(random, [
            `const ${id()} = await ${id()}.${id()}(${id()}, { ${id()}: ${Math.floor(random() * 10_000)}, ${id()}: '${codeWord(random)} ${codeWord(random)}' });`,
            `if (${id()}.length > ${Math.floor(random() * 1_000)}) return ${id()} ?? null;`,
            `// ${englishText(Math.floor(random() * 1e9), 40 + Math.floor(random() * 60)).replace(/\n/g, ' ')}`,
            `for (let i = 0; i < ${id()}.length; i++) ${id()}[i] = ${id()}[i] * ${(random() * 10).toFixed(2)};`,
            `${id()}.push({ role: 'user', content: \`\${${id()}} ${codeWord(random)}\` });`,
            `throw new Error(\`${codeWord(random)} ${codeWord(random)}: \${${id()}.${id()}}\`);`,
          ]),
      );
    }
    block.push('}', '');
    const joined = block.join('\n');
    lines.push(joined);
    length += joined.length + 1;
  }
  return lines.join('\n').slice(0, chars);
}

const hanzi =
  '的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着事其里所去行过家十用发天如然' +
  '作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前面又定见只主没公从知开本样现想已长动表点意通使明正被' +
  '山水风雨花月春秋夜船城路门书语言文字读写问答时间世界历史模型消息请求预算窗口记忆';

/** Chinese prose: clauses of 4–20 characters between punctuation, an occasional number or Latin name. */
function chineseText(seed: number, chars: number): string {
  const random = seededRandom(seed);
  const parts: string[] = [];
  let length = 0;
  while (length < chars) {
    let clause = '';
    const count = 4 + Math.floor(random() * 17);
    for (let i = 0; i < count; i++) clause += hanzi.charAt(Math.floor(random() * hanzi.length));
    const roll = random();
    if (roll < 0.05) clause += `${1_900 + Math.floor(random() * 130)}年`;
    else if (roll < 0.08) clause += pick(random, ['API', 'GPT-4o', 'JSON', 'HTTP']);
    clause += pick(random, ['，', '，', '，', '。', '。', '、', '；', '！', '？']);
    if (random() < 0.05) clause += '\n\n';
    parts.push(clause);
    length += clause.length;
  }
  return parts.join('').slice(0, chars);
}

const kinds = [
  { label: 'English', make: englishText, seed: 1_000 },
  { label: 'code', make: codeText, seed: 2_000 },
  { label: 'Chinese', make: chineseText, seed: 3_000 },
  { label: 'made-up words', make: madeUpText, seed: 4_000 },
] as const;

// ---------------------------------------------------------------- contenders

interface Contender {
  name: string;
  count: (text: string) => number;
  /** Has sluice's bounding (a piece longer than the limit is cut), so any input is safe in process. */
  bounded: boolean;
  /** The child encoder whose pathological probes stand for this contender, when not run in process. */
  child?: ChildEncoder;
  /** Empties the library's own cache (gpt-tokenizer's merge cache) before each throughput cell. */
  reset?: () => void;
  /** Then fills that cache by counting the cell's texts once before they are timed: every piece is cached. */
  warm?: boolean;
  free?: () => void;
}

/** A tokenizer object of its own, so counts with it have a cache of their own (turned off or empty). */
function uncached(tokenizer: Tokenizer): Tokenizer {
  return {
    name: `${tokenizer.name} (uncached)`,
    approximate: tokenizer.approximate,
    count: (text) => tokenizer.count(text),
    measure: (text) => tokenizer.measure?.(text) ?? { tokens: tokenizer.count(text), approximate: tokenizer.approximate },
  };
}

async function loadContenders(): Promise<Contender[]> {
  await loadTokenizer(model);
  const viaGpt = await gptTokenizer('o200k_base');
  const viaWasm = await tiktokenWasm('o200k_base');
  const { Tiktoken } = await import('js-tiktoken/lite');
  const jsTiktoken = new Tiktoken((await import('js-tiktoken/ranks/o200k_base')).default);
  const gpt = await import('gpt-tokenizer/encoding/o200k_base');
  const wasm = (await import('tiktoken')).get_encoding('o200k_base');
  const contenders: Contender[] = [
    { name: 'sluice', count: (text) => countTokens(text, model).tokens, bounded: true },
    {
      name: 'sluice + gpt-tokenizer',
      count: (text) => countTokens(text, model, { tokenizer: viaGpt }).tokens,
      bounded: true,
      reset: () => gpt.clearMergeCache(),
    },
    { name: 'sluice + tiktoken', count: (text) => countTokens(text, model, { tokenizer: viaWasm }).tokens, bounded: true },
    { name: 'js-tiktoken', count: (text) => jsTiktoken.encode(text).length, bounded: false, child: 'js-tiktoken' },
    {
      name: 'gpt-tokenizer (cold)',
      count: (text) => gpt.countTokens(text),
      bounded: false,
      child: 'gpt-tokenizer',
      reset: () => gpt.clearMergeCache(),
    },
    {
      name: 'gpt-tokenizer (all cached)',
      count: (text) => gpt.countTokens(text),
      bounded: false,
      reset: () => gpt.clearMergeCache(),
      warm: true,
    },
    {
      name: 'tiktoken (WASM)',
      count: (text) => wasm.encode(text).length,
      bounded: false,
      child: 'tiktoken',
      free: () => wasm.free(),
    },
  ];
  return contenders;
}

// ---------------------------------------------------------------- 1. load, in fresh processes

type LoadFigures = Extract<ChildMessage, { type: 'load' }>;
interface ProbeFigure {
  input: string;
  chars: number;
  ms: number;
  tokens: number;
}
interface ChildResult {
  load?: LoadFigures;
  probes: ProbeFigure[];
  /** The length a killed child was counting. */
  running?: { input: string; chars: number; startedAt: number };
  killed: boolean;
  exitCode: number | null;
}

const childPath = fileURLToPath(new URL('./tokens-child.ts', import.meta.url));

/** Runs `tokens-child.ts` for one encoder; kills it after `limitMs`. */
function runChild(encoder: ChildEncoder, probe: boolean, limitMs: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const args = probe ? [encoder, 'probe', String(probeCapMs)] : [encoder];
    const child = fork(childPath, args, {
      execArgv: [...process.execArgv, '--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const result: ChildResult = { probes: [], killed: false, exitCode: null };
    const timer = setTimeout(() => {
      result.killed = true;
      child.kill('SIGKILL');
    }, limitMs);
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'load') result.load = message;
      else if (message.type === 'start') result.running = { input: message.input, chars: message.chars, startedAt: performance.now() };
      else if (message.type === 'probe') {
        result.probes.push({ input: message.input, chars: message.chars, ms: message.ms, tokens: message.tokens });
        result.running = undefined;
      }
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      result.exitCode = code;
      if (result.running && !result.killed) result.running = undefined;
      resolve(result);
    });
  });
}

const childEncoders: readonly { encoder: ChildEncoder; label: string; probe: boolean }[] = [
  { encoder: 'sluice', label: 'sluice (countTokens)', probe: false },
  { encoder: 'js-tiktoken', label: 'js-tiktoken', probe: true },
  { encoder: 'gpt-tokenizer', label: 'gpt-tokenizer', probe: true },
  { encoder: 'tiktoken', label: 'tiktoken (WASM)', probe: true },
];

async function loadSection(): Promise<{ probes: Map<ChildEncoder, ChildResult>; sluiceFirstCountMs: number }> {
  const runs = new Map<ChildEncoder, LoadFigures[]>(childEncoders.map(({ encoder }) => [encoder, []]));
  const probes = new Map<ChildEncoder, ChildResult>();
  for (let repeat = 0; repeat < loadRepeats; repeat++) {
    const shift = repeat % childEncoders.length;
    const order = [...childEncoders.slice(shift), ...childEncoders.slice(0, shift)];
    for (const { encoder, probe } of order) {
      const withProbe = probe && repeat === 0;
      const result = await runChild(encoder, withProbe, 20_000 + (withProbe ? 12 * probeCapMs : 0));
      if (!result.load) throw new Error(`tokens-child ${encoder} reported no load figures (exit ${String(result.exitCode)})`);
      runs.get(encoder)?.push(result.load);
      if (withProbe) probes.set(encoder, result);
    }
  }
  const mb = (bytes: number) => fixed(bytes / 2 ** 20, 1);
  const summary = childEncoders.map(({ encoder, label }) => {
    const figures = runs.get(encoder) ?? [];
    const of = (pick: (figure: LoadFigures) => number) => median(figures.map(pick));
    return {
      label,
      importMs: of((f) => f.importMs),
      firstCountMs: of((f) => f.firstCountMs),
      firstCountCpuMs: of((f) => f.firstCountCpuMs),
      loadHeap: of((f) => f.memory[2].heapUsed - f.memory[1].heapUsed),
      loadRss: of((f) => f.memory[2].rss - f.memory[1].rss),
      loadExternal: of((f) => f.memory[2].external - f.memory[1].external),
      totalRss: of((f) => f.memory[2].rss - f.memory[0].rss),
    };
  });
  const sluice = summary[0];
  const rows = [
    [
      'encoder',
      'code import ms',
      'ranks + 1st count ms',
      '× sluice',
      'cpu ms',
      'heap Δ MB',
      'external Δ MB',
      'rss Δ MB',
      'rss Δ incl. import MB',
    ],
    ...summary.map((row) => [
      row.label,
      fixed(row.importMs, 0),
      fixed(row.firstCountMs, 0),
      row === sluice ? '' : `${fixed(row.firstCountMs / (sluice?.firstCountMs ?? Number.NaN), 1)}×`,
      fixed(row.firstCountCpuMs, 0),
      mb(row.loadHeap),
      mb(row.loadExternal),
      mb(row.loadRss),
      mb(row.totalRss),
    ]),
  ];
  console.log(`1. Load, o200k_base, each in a fresh process (median of ${loadRepeats}; Δ = after − before, both after gc()):\n`);
  console.log(table(rows));
  console.log(
    '\n   "code import" is the library without its ranks (sluice: @sluice/context from TS source through tsx, which is\n' +
      '   most of its figure; tiktoken: its JS and the WASM instance). "ranks + 1st count" loads the o200k_base ranks,\n' +
      '   builds the encoder and counts "Hello, world!": the time to first count once the package is imported.',
  );
  return { probes, sluiceFirstCountMs: sluice?.firstCountMs ?? Number.NaN };
}

// ---------------------------------------------------------------- 2. throughput

interface Cell {
  /** tokens/s of each text counted. */
  rates: number[];
  tokens: number;
  chars: number;
  /** Characters of each text (100,000, or a slice for a slow contender). */
  size: number;
}

const millions = (perSecond: number) => (Number.isNaN(perSecond) ? 'n/a' : `${(perSecond / 1e6).toFixed(2)}`);

/**
 * Counts each text once, in order, until all are counted or `maxMs` passed (at least 2 texts). A
 * contender whose 10,000-char trial predicts over 150 ms for 100,000 chars counts 10,000-char texts
 * instead: on these texts time is linear in length, so its rate stands.
 */
function measureCell(contender: Contender, texts: readonly string[], trial: string): Cell {
  const sliceChars = 10_000;
  let trialMs = Number.POSITIVE_INFINITY;
  for (let run = 0; run < (quick ? 1 : 2); run++) {
    contender.reset?.();
    const started = performance.now();
    contender.count(trial.slice(0, sliceChars));
    trialMs = Math.min(trialMs, performance.now() - started);
  }
  const size = trialMs * (textChars / sliceChars) > 150 ? sliceChars : textChars;
  contender.reset?.();
  if (contender.warm) for (const text of texts) contender.count(text.slice(0, size));
  const cell: Cell = { rates: [], tokens: 0, chars: 0, size };
  let spent = 0;
  for (const whole of texts) {
    if (cell.rates.length >= 2 && spent > maxCellMs) break;
    const text = whole.slice(0, size);
    const begin = performance.now();
    const tokens = contender.count(text);
    const ms = performance.now() - begin;
    spent += ms;
    cell.rates.push((tokens / ms) * 1000);
    cell.tokens += tokens;
    cell.chars += text.length;
  }
  return cell;
}

function throughputSection(contenders: readonly Contender[]): void {
  const texts = kinds.map((kind) => Array.from({ length: variants }, (_, v) => kind.make(kind.seed + v, textChars)));

  // Every exact tokenizer must agree on ordinary text, or the comparison is void.
  const disagreements: string[] = [];
  kinds.forEach((kind, k) => {
    const sample = (texts[k]?.[0] as string).slice(0, agreementChars);
    const counts = contenders.map((contender) => contender.count(sample));
    if (new Set(counts).size > 1) disagreements.push(`${kind.label}: ${contenders.map((c, i) => `${c.name} ${counts[i]}`).join(', ')}`);
  });

  const cells = new Map<string, Cell>();
  const key = (contender: Contender, k: number) => `${contender.name}/${k}`;
  kinds.forEach((kind, k) => {
    const trial = kind.make(kind.seed + 500, 10_000);
    const order = [...contenders.slice(k % contenders.length), ...contenders.slice(0, k % contenders.length)];
    for (const contender of order) cells.set(key(contender, k), measureCell(contender, texts[k] ?? [], trial));
  });

  const sluice = contenders[0] as Contender;
  const header = ['tokenizer'];
  for (const kind of kinds) header.push(`${kind.label} M tok/s`, 'sluice ÷');
  const rows = [header];
  for (const contender of contenders) {
    const row = [contender.name];
    kinds.forEach((_, k) => {
      const ours = median(cells.get(key(sluice, k))?.rates ?? []);
      const cell = cells.get(key(contender, k));
      const theirs = median(cell?.rates ?? []);
      row.push(`${millions(theirs)}${cell?.size === textChars ? '' : ' (10k)'}`, contender === sluice ? '' : `${fixed(ours / theirs, 1)}×`);
    });
    rows.push(row);
  }
  const density = kinds.map((kind, k) => {
    const cell = cells.get(key(sluice, k));
    return `${kind.label} ${fixed((cell?.chars ?? 0) / (cell?.tokens ?? 1), 2)}`;
  });
  const counted = contenders.map((contender) => Math.min(...kinds.map((_, k) => cells.get(key(contender, k))?.rates.length ?? 0)));
  const fewest = Math.min(...counted);
  console.log(
    `\n2. Counting throughput: tokens/s, median over distinct ${textChars.toLocaleString('en-US')}-char texts, ` +
      `${fewest === variants ? variants : `${fewest}–${variants}`} a cell, the same texts for all, each counted once\n` +
      '   ("(10k)": 10,000-char texts, for a contender too slow for 100,000; time is linear in length on these texts).\n' +
      "   sluice's text cache is OFF here (configureTokenCache({ maxEntries: 0 })), so every count encodes. gpt-tokenizer's\n" +
      '   merge cache (its default, 100,000 pieces; the adapter shares it) is cleared before each cell ("cold": it warms up\n' +
      "   over the cell's texts); \"all cached\" counts the texts once untimed first, so every piece is a hit: an upper bound,\n" +
      '   which a long-running process nears on prose that reuses words, not on Chinese (each piece is a whole clause).\n' +
      '   sluice has no piece cache (its pair cache is warm from a trial count).\n' +
      `   Chars per token: ${density.join(', ')} (real English prose: 4.3–4.7).\n` +
      '   "sluice ÷" = sluice\'s tokens/s over the row\'s.\n',
  );
  console.log(table(rows));
  const sampled = agreementChars.toLocaleString('en-US');
  if (disagreements.length > 0) console.log(`\n   COUNTS DIFFER on a ${sampled}-char sample: ${disagreements.join('; ')}`);
  else console.log(`\n   Every tokenizer counts the first ${sampled} chars of every kind identically.`);
}

const probeColumns = [1_000, 5_000, 20_000, 100_000] as const;

function pathologicalSection(contenders: readonly Contender[], probes: Map<ChildEncoder, ChildResult>): void {
  const header = ['tokenizer', ...['a', '中'].flatMap((input) => probeColumns.map((chars) => `${input}×${chars / 1_000}k ms`))];
  const rows = [header];
  const notes: string[] = [];
  for (const contender of contenders.filter((c) => c.bounded || c.child !== undefined)) {
    const label = contender.name.replace(' (cold)', '');
    const row = [label];
    for (const input of ['a', '中']) {
      if (contender.bounded) {
        for (const chars of probeColumns) {
          const text = input.repeat(chars);
          const started = performance.now();
          contender.count(text);
          const best = performance.now() - started;
          row.push(fixed(best, 1));
        }
        continue;
      }
      const result = contender.child ? probes.get(contender.child) : undefined;
      const measured = (result?.probes ?? []).filter((probe) => probe.input === input);
      const largest = measured[measured.length - 1];
      const previous = measured[measured.length - 2];
      for (const chars of probeColumns) {
        const hit = measured.find((probe) => probe.chars === chars);
        if (hit) row.push(fixed(hit.ms, 1));
        else if (largest) {
          // At least quadratic in the piece's length (see the growth note), so this is a lower bound.
          const atLeast = (largest.ms * (chars / largest.chars) ** 2) / 1000;
          row.push(`n/a (>${atLeast < 10 ? atLeast.toFixed(1) : atLeast.toFixed(0)} s)`);
        } else row.push('n/a');
      }
      if (largest) {
        const growth = previous
          ? `, time ∝ n^${fixed(Math.log(largest.ms / previous.ms) / Math.log(largest.chars / previous.chars), 1)} over the last step`
          : '';
        notes.push(`${label} ${input}: largest run ${largest.chars.toLocaleString('en-US')} chars in ${fixed(largest.ms, 0)} ms${growth}`);
      }
      if (result?.killed) {
        notes.push(`${label}: killed at the time limit while counting ${result.running?.input ?? '?'} × ${result.running?.chars ?? '?'}`);
      }
    }
    rows.push(row);
  }
  console.log(
    '\n   Pathological input: one character repeated, one pre-tokenizer piece; one run each. sluice and its adapters run\n' +
      '   here (sluice cuts a piece over 2,048 units where no token spans, exactly, as between two 中, else merges it in\n' +
      '   windows, flagged approximate, as for a; the adapters cut a piece over 256 units in segments, flagged approximate,\n' +
      "   and their identical segments hit gpt-tokenizer's merge cache). The libraries alone run in the load child, lengths\n" +
      `   growing until the next is predicted (quadratically) over ${probeCapMs} ms; n/a (>X s) extrapolates quadratically from\n` +
      '   the largest length run: a lower bound where time grows at least quadratically (see the growth lines below).\n',
  );
  console.log(table(rows));
  for (const note of notes) console.log(`   ${note}`);
}

// ---------------------------------------------------------------- 3. append, 4. trim

function makeHistory(): ChatMessage[] {
  const history: ChatMessage[] = [{ role: 'system', content: englishText(7, 600) }];
  const random = seededRandom(11);
  for (let i = 1; i < historyLength; i++) {
    const content = englishText(100_000 + i, 100 + Math.floor(random() * 500));
    history.push(i % 2 === 1 ? { role: 'user', content } : { role: 'assistant', content });
  }
  return history;
}

/** Times `fn` back to back: at least `minRuns` runs, then until `budgetMs` passed or `maxRuns` were made. */
function timeRuns(fn: (run: number) => void, minRuns: number, maxRuns: number, budgetMs: number): number[] {
  const times: number[] = [];
  const started = performance.now();
  for (let run = 0; run < maxRuns && (run < minRuns || performance.now() - started < budgetMs); run++) {
    const begin = performance.now();
    fn(run);
    times.push(performance.now() - begin);
  }
  return times;
}

async function timeRunsAsync(fn: () => Promise<unknown>, minRuns: number, maxRuns: number, budgetMs: number): Promise<number[]> {
  const times: number[] = [];
  const started = performance.now();
  for (let run = 0; run < maxRuns && (run < minRuns || performance.now() - started < budgetMs); run++) {
    const begin = performance.now();
    await fn();
    times.push(performance.now() - begin);
  }
  return times;
}

/** The naive count: every message's role and content encoded again, in OpenAI's chat framing. */
function naiveCount(messages: readonly ChatMessage[], count: (text: string) => number): number[] {
  return messages.map((message) => 3 + count(message.role) + count(typeof message.content === 'string' ? message.content : ''));
}

interface Naive {
  name: string;
  count: (text: string) => number;
  /** Runs with sluice's text cache turned off. */
  cacheOff?: boolean;
}

function appendSection(history: ChatMessage[], naives: readonly Naive[]): { beyondMs: number; directMs: number } {
  const firstStarted = performance.now();
  const warm = countMessages(history, model);
  const firstMs = performance.now() - firstStarted;
  countMessages(history, model);
  const turnChars = 400;
  const turn = (seed: number): ChatMessage => ({ role: 'user', content: englishText(seed, turnChars) });

  const appendMs: number[] = [];
  const encodeMs: number[] = [];
  const cachedMs: number[] = [];
  const runs = quick ? 60 : 200;
  const started = performance.now();
  for (let run = 0; run < runs && performance.now() - started < (quick ? 500 : 1_500); run++) {
    const fresh = turn(500_000 + 2 * run);
    const alone = (turn(500_001 + 2 * run).content as string);
    const append = () => {
      history.push(fresh);
      const begin = performance.now();
      countMessages(history, model);
      appendMs.push(performance.now() - begin);
      history.pop();
    };
    const encode = () => {
      const begin = performance.now();
      countTokens(alone, model);
      encodeMs.push(performance.now() - begin);
    };
    // Alternate which goes first, so neither always runs on a warmer cache.
    if (run % 2 === 0) {
      append();
      encode();
    } else {
      encode();
      append();
    }
    history.push(fresh); // its text is cached now: what is left is the recount of 1,001 cached messages
    const begin = performance.now();
    countMessages(history, model);
    cachedMs.push(performance.now() - begin);
    history.pop();
  }
  const append = median(appendMs);
  const encode = median(encodeMs);
  const beyond = append - encode;
  const direct = median(cachedMs);

  const withTurn = [...history, turn(999_999)];
  const expected = countMessages(withTurn, model).tokens;
  const rows = [
    ['approach', 'ms per appended turn', '× sluice append', 'tokens'],
    ['sluice countMessages (history cached)', fixed(append, 3), '1.0×', String(expected)],
    [`  of which: encoding the new ${turnChars}-char turn alone`, fixed(encode, 3), '', ''],
    ['  → beyond encoding the new text (difference)', fixed(beyond, 3), '', ''],
    ['  → cross-check: same call, new turn also cached', fixed(direct, 3), '', ''],
  ];
  const mismatches: string[] = [];
  for (const naive of naives) {
    if (naive.cacheOff) configureTokenCache({ maxEntries: 0 });
    let tokens = 0;
    const times = timeRuns(
      () => {
        tokens = naiveCount(withTurn, naive.count).reduce((sum, n) => sum + n, 3);
      },
      quick ? 1 : 3,
      10,
      quick ? 200 : 800,
    );
    if (naive.cacheOff) configureTokenCache(cacheDefaults);
    const ms = median(times);
    rows.push([`naive: ${naive.name} re-counts all ${withTurn.length}`, fixed(ms, 2), `${fixed(ms / append, 0)}×`, String(tokens)]);
    if (tokens !== expected) mismatches.push(`${naive.name} counts ${tokens}, sluice ${expected}`);
  }
  console.log(
    `\n3. Append one turn to a ${historyLength.toLocaleString('en-US')}-message history (${warm.tokens.toLocaleString('en-US')} tokens, ` +
      `${history.reduce((sum, m) => sum + (typeof m.content === 'string' ? m.content.length : 0), 0).toLocaleString('en-US')} chars; its first count took ${fixed(firstMs, 0)} ms).\n` +
      `   sluice: countMessages(history + a new ${turnChars}-char user turn) after the history was counted once, median of ${appendMs.length};\n` +
      '   minus countTokens of another new text of the same length. Naive: every message encoded again, median.\n',
  );
  console.log(table(rows));
  if (mismatches.length > 0) console.log(`\n   COUNTS DIFFER: ${mismatches.join('; ')}`);
  return { beyondMs: beyond, directMs: direct };
}

async function trimSection(history: ChatMessage[], naives: readonly Naive[]): Promise<number> {
  const transport: Transport = {
    name: 'memory',
    origin: 'memory://',
    // It answers at once: nothing outlasts an abort, and the pipeline need not race it.
    honoursAbort: true,
    async send(ctx) {
      ctx.response = { id: 'x', object: 'chat.completion', created: 0, model: ctx.request.model, choices: [] };
    },
  };
  const total = countMessages(history, model).tokens;
  const maxTokens = Math.floor(total / 2);
  const request: ChatCompletionRequest = { model, messages: history };
  const empty = createPipeline({ transport, validateRequests: false });
  const trimmed = createPipeline({ transport, validateRequests: false }).use(trimContext({ maxTokens }));
  const validated = createPipeline({ transport });
  const uncachedTokenizer = uncached(await loadTokenizer(model));
  const trimmedUncached = createPipeline({ transport, validateRequests: false }).use(
    trimContext({ maxTokens, tokenizer: uncachedTokenizer }),
  );

  const ctx = await trimmed.run(request);
  const state = ctx.state.context;
  for (let i = 0; i < 20; i++) {
    await empty.complete(request);
    await trimmed.complete(request);
  }

  const trimMs: number[] = [];
  const emptyMs: number[] = [];
  const runs = quick ? 100 : 400;
  const started = performance.now();
  for (let run = 0; run < runs && performance.now() - started < (quick ? 600 : 2_000); run++) {
    const pair = run % 2 === 0 ? [trimmed, empty] : [empty, trimmed];
    for (const pipeline of pair) {
      const begin = performance.now();
      await pipeline.complete(request);
      (pipeline === trimmed ? trimMs : emptyMs).push(performance.now() - begin);
    }
  }
  const validatedMs = median(await timeRunsAsync(() => validated.complete(request), 5, 50, quick ? 200 : 500));
  const pipelineMs = median(trimMs);
  const emptyMedian = median(emptyMs);
  const trimCost = pipelineMs - emptyMedian;

  const rows = [
    ['approach', 'ms per call', '× sluice trim', 'kept', 'tokens after'],
    [
      'sluice: pipeline + trimContext (counts cached)',
      fixed(pipelineMs, 3),
      '',
      String(ctx.request.messages.length),
      String(state?.tokensAfter ?? 'n/a'),
    ],
    ['  the same pipeline without trimContext', fixed(emptyMedian, 3), '', '', ''],
    ['  → trimContext itself (difference)', fixed(trimCost, 3), '1.0×', '', ''],
    ['  (info) empty pipeline, validateRequests: true', fixed(validatedMs, 3), '', '', ''],
  ];
  {
    configureTokenCache({ maxEntries: 0 });
    const times = await timeRunsAsync(() => trimmedUncached.complete(request), quick ? 1 : 3, 10, quick ? 200 : 800);
    configureTokenCache(cacheDefaults);
    const ms = median(times) - emptyMedian;
    rows.push(['naive: sluice trimContext, text cache off', fixed(ms, 2), `${fixed(ms / trimCost, 0)}×`, '', '']);
  }
  const mismatches: string[] = [];
  for (const naive of naives.filter((n) => !n.cacheOff)) {
    let plan = { kept: 0, tokens: 0 };
    const times = timeRuns(
      () => {
        plan = naiveTrim(history, naiveCount(history, naive.count), maxTokens);
      },
      quick ? 1 : 3,
      10,
      quick ? 200 : 800,
    );
    const ms = median(times);
    if (plan.kept !== ctx.request.messages.length || plan.tokens !== state?.tokensAfter) {
      mismatches.push(`${naive.name} keeps ${plan.kept} (${plan.tokens} tokens), trimContext ${ctx.request.messages.length} (${state?.tokensAfter})`);
    }
    rows.push([`naive: ${naive.name} re-counts all, then trims`, fixed(ms, 2), `${fixed(ms / trimCost, 0)}×`, String(plan.kept), String(plan.tokens)]);
  }
  console.log(
    `\n4. trimContext over ${historyLength.toLocaleString('en-US')} messages (${total.toLocaleString('en-US')} tokens, budget maxTokens ${maxTokens.toLocaleString('en-US')}),\n` +
      '   through a pipeline with an in-memory transport, validateRequests: false, the same request each call so every\n' +
      `   text count is cached; median of ${trimMs.length}, alternating with the same pipeline without trimContext.\n`,
  );
  console.log(table(rows));
  if (mismatches.length > 0) console.log(`\n   PLANS DIFFER: ${mismatches.join('; ')}`);
  return trimCost;
}

/** The naive trim: system messages and the last user turn pinned, then the newest messages that fit. */
function naiveTrim(messages: readonly ChatMessage[], counts: readonly number[], budget: number): { kept: number; tokens: number } {
  let lastUser = -1;
  for (let i = messages.length - 1; i >= 0 && lastUser < 0; i--) if (messages[i]?.role === 'user') lastUser = i;
  const pinned = (i: number) => messages[i]?.role === 'system' || i === lastUser;
  let tokens = 3;
  let kept = 0;
  for (let i = 0; i < messages.length; i++) {
    if (pinned(i)) {
      tokens += counts[i] ?? 0;
      kept++;
    }
  }
  for (let i = messages.length - 1; i >= 0; i--) {
    if (pinned(i)) continue;
    if (tokens + (counts[i] ?? 0) > budget) break;
    tokens += counts[i] ?? 0;
    kept++;
  }
  return { kept, tokens };
}

// ---------------------------------------------------------------- run

/**
 * Runs the four parts and prints their tables, then the verdicts.
 *
 * @throws when a child process cannot start or reports nothing
 * @example
 * ```ts
 * await run();
 * ```
 */
export async function run(): Promise<void> {
  const started = performance.now();
  let lapStarted = started;
  const lap = (label: string) => {
    const now = performance.now();
    console.log(`\n   [${label}: ${((now - lapStarted) / 1000).toFixed(1)} s]`);
    lapStarted = now;
  };
  const { probes } = await loadSection();
  lap('load section');

  const contenders = await loadContenders();
  await prepareWords(contenders.find((contender) => contender.name === 'gpt-tokenizer (cold)')?.count ?? ((text) => text.length));
  lap('loading the six in this process');
  let beyondMs = Number.NaN;
  let directMs = Number.NaN;
  let trimMs = Number.NaN;
  try {
    configureTokenCache({ maxEntries: 0 });
    try {
      throughputSection(contenders);
      lap('throughput');
      pathologicalSection(contenders, probes);
      lap('pathological');
    } finally {
      configureTokenCache(cacheDefaults);
    }

    const byName = (name: string) => contenders.find((contender) => contender.name === name)?.count ?? (() => 0);
    const uncachedTokenizer = uncached(await loadTokenizer(model));
    const naives: Naive[] = [
      { name: 'js-tiktoken', count: byName('js-tiktoken') },
      { name: 'gpt-tokenizer', count: byName('gpt-tokenizer (cold)') },
      { name: 'tiktoken (WASM)', count: byName('tiktoken (WASM)') },
      { name: 'sluice, text cache off', count: (text) => countTokens(text, model, { tokenizer: uncachedTokenizer }).tokens, cacheOff: true },
    ];
    const history = makeHistory();
    ({ beyondMs, directMs } = appendSection(history, naives));
    lap('append');
    trimMs = await trimSection(history, naives);
    lap('trim');
  } finally {
    for (const contender of contenders) contender.free?.();
  }

  const verdict = (pass: boolean) => (pass ? 'PASS' : 'MISS');
  console.log(
    `\n${verdict(beyondMs < appendTargetMs)}  append one turn to ${historyLength.toLocaleString('en-US')} messages: ${fixed(beyondMs, 3)} ms beyond encoding the new text ` +
      `(cross-check, all cached: ${fixed(directMs, 3)} ms); target < ${appendTargetMs} ms`,
  );
  console.log(
    `${verdict(trimMs < trimTargetMs)}  trimContext over ${historyLength.toLocaleString('en-US')} messages, counts cached: ${fixed(trimMs, 3)} ms; target < ${trimTargetMs} ms`,
  );
  console.log(`\ntokens: ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
