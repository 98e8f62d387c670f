import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/** One non-blank line of a JSONL file, numbered from 1 as an editor shows it. */
export interface NumberedLine {
  line: number;
  text: string;
}

/**
 * Reads a JSONL file (or stdin for `-`) line by line in constant memory:
 * node's readline pauses the file while the consumer is busy, so a
 * million-line file never sits in memory. Blank lines are skipped but
 * counted, so numbers match the file.
 *
 * @param path - the file, or `-` for stdin
 * @param stdin - the stream `-` reads (the process's, unless a test gives another)
 */
export async function* readLines(path: string, stdin: Readable = process.stdin): AsyncGenerator<NumberedLine> {
  const input = path === '-' ? stdin : createReadStream(path);
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      // A byte-order mark some editors write would otherwise break the line's JSON: at the start of the
      // file, or of any line (files from such editors joined with `cat`, each with its own).
      const clean = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
      if (clean.trim() !== '') yield { line, text: clean };
    }
  } finally {
    lines.close();
    if (input !== stdin) input.destroy();
  }
}

/**
 * Counts the lines of a file without parsing them, for the progress bar's
 * total and ETA: a byte scan, constant memory.
 *
 * @param path - the file
 */
export async function countLines(path: string): Promise<number> {
  let count = 0;
  let last = 10;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) count++;
    if (chunk.length > 0) last = chunk[chunk.length - 1] as number;
  }
  return last === 10 ? count : count + 1;
}
