import { closeSync, existsSync, openSync, readSync, statSync, truncateSync } from 'node:fs';
import { readLines } from './read-lines.js';

/**
 * The `custom_id`s an existing output file already holds, so a re-run
 * resumes where the last one stopped. A last line cut short (the process
 * was killed mid-write) is removed first: it would otherwise be neither a
 * result nor skipped, and the next line would be glued to it.
 *
 * @param path - the output file; a missing one holds nothing
 * @returns the finished ids and how many bytes of a cut last line were dropped
 */
export async function finishedIds(path: string): Promise<{ ids: Set<string>; droppedBytes: number }> {
  const ids = new Set<string>();
  if (!existsSync(path)) return { ids, droppedBytes: 0 };
  const droppedBytes = dropCutLine(path);
  for await (const { text } of readLines(path)) {
    try {
      const id = (JSON.parse(text) as { custom_id?: unknown }).custom_id;
      if (typeof id === 'string') ids.add(id);
    } catch {
      // Not ours to judge: a line that is not JSON finished nothing.
    }
  }
  return { ids, droppedBytes };
}

function dropCutLine(path: string): number {
  const size = statSync(path).size;
  if (size === 0) return 0;
  const fd = openSync(path, 'r');
  try {
    // Scan backwards for the last newline, a block at a time.
    const block = Buffer.alloc(64 * 1024);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - block.length);
      const read = readSync(fd, block, 0, end - start, start);
      const at = block.subarray(0, read).lastIndexOf(10);
      if (at !== -1) {
        const keep = start + at + 1;
        if (keep === size) return 0;
        truncateSync(path, keep);
        return size - keep;
      }
      end = start;
    }
    truncateSync(path, 0);
    return size;
  } finally {
    closeSync(fd);
  }
}
