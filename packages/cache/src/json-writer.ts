import { Utf8Writer } from './utf8-writer.js';

/**
 * Writes `value` as JSON.stringify would, in UTF-8, into `writer`; internal.
 *
 * The answer a miss stores (a completion, or every chunk of a stream) is
 * written here rather than by JSON.stringify: measured on the benchmark's
 * 22-chunk stream, stringifying each chunk and joining them took 17-40 µs
 * and made 12 KB of garbage; writing them into one reused buffer took
 * 13.5 µs and made only the entry's own 4 KB. JSON.stringify builds each
 * result from pieces of 32, 64, 128… characters that a store must then copy
 * into one string again.
 *
 * Plain JSON data (what a transport parses) is written here; anything that
 * JSON.stringify would treat specially (a `toJSON` method, a boxed
 * primitive, a BigInt, nesting deep enough to be a cycle) is handed back
 * to JSON.stringify whole, so the text is always JSON.stringify's own.
 *
 * @param writer - where to write (its bytes so far are kept)
 * @param value - the answer
 * @throws what JSON.stringify throws for the value (a BigInt, a cycle)
 */
export function writeJson(writer: Utf8Writer, value: unknown): void {
  const start = writer.size;
  try {
    writeValue(writer, value, 0);
  } catch (caught) {
    if (caught !== unusual) throw caught;
    writer.truncate(start);
    const text = JSON.stringify(value);
    // What JSON.stringify leaves out at the top (a function, a symbol) has no JSON at all.
    writer.text(text === undefined ? 'null' : text, false);
  }
}

/** Thrown inside {@link writeJson} on a value JSON.stringify treats specially. */
const unusual = new Error('a value for JSON.stringify itself');

/** Deeper than this, a value is handed to JSON.stringify (a cycle gets its TypeError, not a stack overflow). */
const maxDepth = 64;

const hasOwn = Object.prototype.hasOwnProperty;

function skipped(value: unknown): boolean {
  const type = typeof value;
  return type === 'undefined' || type === 'function' || type === 'symbol';
}

function writeValue(writer: Utf8Writer, value: unknown, depth: number): void {
  switch (typeof value) {
    case 'string':
      writer.text(value, true);
      return;
    case 'number':
      // As JSON writes numbers: a NaN or an infinity becomes null.
      writer.text(Number.isFinite(value) ? String(value) : 'null', false);
      return;
    case 'boolean':
      writer.text(value ? 'true' : 'false', false);
      return;
    case 'object':
      if (value === null) writer.text('null', false);
      else if (depth >= maxDepth || typeof (value as { toJSON?: unknown }).toJSON === 'function') throw unusual;
      else if (Array.isArray(value)) writeArray(writer, value, depth + 1);
      else if (value instanceof Number || value instanceof String || value instanceof Boolean || value instanceof BigInt) throw unusual;
      else writeObject(writer, value as Record<string, unknown>, depth + 1);
      return;
    default:
      // A BigInt (JSON.stringify throws, unless a toJSON is installed); functions and symbols never get here.
      throw unusual;
  }
}

function writeArray(writer: Utf8Writer, items: readonly unknown[], depth: number): void {
  writer.byte(0x5b);
  for (let index = 0; index < items.length; index++) {
    if (index > 0) writer.byte(0x2c);
    const item = items[index];
    if (skipped(item)) writer.text('null', false);
    else writeValue(writer, item, depth);
  }
  writer.byte(0x5d);
}

function writeObject(writer: Utf8Writer, record: Record<string, unknown>, depth: number): void {
  writer.byte(0x7b);
  let first = true;
  // for…in makes no array of keys; own keys come in Object.keys order, which is JSON.stringify's.
  for (const key in record) {
    if (!hasOwn.call(record, key)) continue;
    const item = record[key];
    if (skipped(item)) continue;
    if (!first) writer.byte(0x2c);
    first = false;
    writer.text(key, true);
    writer.byte(0x3a);
    writeValue(writer, item, depth);
  }
  writer.byte(0x7d);
}
