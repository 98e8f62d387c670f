import { statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ValidationError } from '@sluice/core';

/** The files a batch reads and writes: `input` may be `-` (stdin). */
export interface BatchFiles {
  input: string;
  output: string;
  ledger?: string | undefined;
}

/**
 * Checks a batch's files before anything is opened: the input is a file,
 * the output's and the ledger's directories exist, and no two of them are
 * the same file (by path, or by device and inode for links). An output
 * that is the input would be read as results to resume from and have the
 * answers appended to the requests; a ledger that is either would mix cost
 * lines into them.
 *
 * @throws ValidationError naming `input`, `output` or `ledger`
 */
export function checkBatchFiles(files: BatchFiles): void {
  const { input, output, ledger } = files;
  const named: Array<[field: 'input' | 'output' | 'ledger', path: string, stats: Stats | undefined]> = [];
  if (input !== '-') named.push(['input', input, checkFileToRead('input', input, 'a file of requests')]);
  for (const [field, path] of [['output', output], ['ledger', ledger]] as const) {
    if (path === undefined) continue;
    const stats = statOf(path);
    if (stats?.isDirectory()) throw new ValidationError(field, `${path} is a directory, not a file`);
    if (!stats && !statOf(dirname(resolve(path)))?.isDirectory()) throw new ValidationError(field, `the directory of ${path} does not exist`);
    const same = named.find(([, other, otherStats]) => resolve(other) === resolve(path) || (stats && otherStats && sameFile(stats, otherStats)));
    if (same) throw new ValidationError(field, `${path} is the ${same[0]} file; give the ${field} a file of its own`);
    named.push([field, path, stats]);
  }
}

/**
 * A file a command reads: it exists and is not a directory.
 *
 * @param field - the option it came from, for the error
 * @param what - what the file should be, for the error (`a file of requests`)
 * @throws ValidationError naming `field`
 */
export function checkFileToRead(field: string, path: string, what: string): Stats {
  const stats = statOf(path);
  if (!stats) throw new ValidationError(field, `no such file: ${path}`);
  if (stats.isDirectory()) throw new ValidationError(field, `${path} is a directory, not ${what}`);
  return stats;
}

function statOf(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** One file under two names (a hard link, a symlink): the same device and inode, when the platform has them. */
function sameFile(a: Stats, b: Stats): boolean {
  return a.ino !== 0 && a.dev === b.dev && a.ino === b.ino;
}
