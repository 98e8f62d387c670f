import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { writeJson } from './json-writer.js';
import { Utf8Writer } from './utf8-writer.js';

function written(value: unknown): string {
  const writer = new Utf8Writer();
  writer.reset();
  writeJson(writer, value);
  return writer.decode();
}

describe('writeJson', () => {
  it('writes any JSON value as JSON.stringify does, key order and escapes included', () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: 'binary' }), (value) => {
        expect(written(value)).toBe(JSON.stringify(value));
      }),
    );
  });

  it('leaves out what JSON leaves out, and writes null where JSON does', () => {
    const value = { a: undefined, b: () => 1, c: Symbol('s'), [Symbol('k')]: 1, d: [undefined, () => 1, Number.NaN, -0, Infinity], e: null, 2: 'two', 1: 'one' };
    expect(written(value)).toBe(JSON.stringify(value));
    expect(written(Object.assign(Object.create({ inherited: 1 }), { own: 2 }))).toBe('{"own":2}');
  });

  it('hands toJSON, boxed primitives and deep nesting to JSON.stringify, so the text is still its own', () => {
    const values = [
      { at: new Date(0), n: Object(1), s: Object('x'), b: Object(false) },
      { custom: { toJSON: (key: string) => `key:${key}` } },
      [{ toJSON: () => undefined }],
      JSON.parse('['.repeat(100) + ']'.repeat(100)),
    ];
    for (const value of values) expect(written(value)).toBe(JSON.stringify(value));
  });

  it('throws what JSON.stringify throws, and leaves what was written before it untouched', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const writer = new Utf8Writer();
    writer.reset();
    writer.text('kept', false);
    expect(() => writeJson(writer, { tokens: 1n })).toThrow(TypeError);
    expect(() => writeJson(writer, cyclic)).toThrow(TypeError);
    writeJson(writer, [1]);
    expect(writer.decode()).toBe('kept[1]');
  });
});
