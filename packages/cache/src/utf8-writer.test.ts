import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Utf8Writer } from './utf8-writer.js';

const encoder = new TextEncoder();

function written(write: (writer: Utf8Writer) => void): number[] {
  const writer = new Utf8Writer();
  writer.reset();
  write(writer);
  return [...writer.view()];
}

describe('Utf8Writer', () => {
  it('writes a quoted string as the UTF-8 of JSON.stringify, escapes, multibyte and lone surrogates included', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
        expect(written((writer) => writer.text(text, true))).toEqual([...encoder.encode(JSON.stringify(text))]);
      }),
    );
    for (const text of ['"\\\b\f\n\r\t\u0000\u001f\u007f', '\ud800', 'a\udc00b', '😀\ud83d', '\udbff\udfff', 'é€😀']) {
      expect(written((writer) => writer.text(text, true))).toEqual([...encoder.encode(JSON.stringify(text))]);
    }
  });

  it('writes plain text as a UTF-8 encoder does, a lone surrogate as U+FFFD', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
        expect(written((writer) => writer.text(text, false))).toEqual([...encoder.encode(text)]);
      }),
    );
  });

  it("writes long strings (the runtime encoder's path) with the same bytes, quoted or not", () => {
    const long = (unit: 'grapheme' | 'binary') => fc.string({ unit, minLength: 256, maxLength: 1_200 });
    fc.assert(
      fc.property(fc.oneof(long('grapheme'), long('binary')), fc.boolean(), (text, quote) => {
        const bytes = written((writer) => {
          writer.byte(0x5b);
          writer.text(text, quote);
          writer.byte(0x5d);
        });
        expect(bytes).toEqual([...encoder.encode(`[${quote ? JSON.stringify(text) : text}]`)]);
      }),
    );
    const plain = 'x'.repeat(300);
    for (const text of [plain, `${plain}"`, `${plain}\n`, `${plain}\ud800`, `\udc00${plain}`, `${plain}😀é€`, `${plain}\u001f`]) {
      expect(written((writer) => writer.text(text, true))).toEqual([...encoder.encode(JSON.stringify(text))]);
      expect(written((writer) => writer.text(text, false))).toEqual([...encoder.encode(text)]);
    }
  });

  it('grows past its first buffer and keeps what was written', () => {
    const long = 'ab"é😀'.repeat(2_000);
    const bytes = written((writer) => {
      writer.byte(0x5b);
      writer.text(long, true);
      writer.byte(0x5d);
    });
    expect(bytes).toEqual([...encoder.encode(`[${JSON.stringify(long)}]`)]);
  });

  it('starts again from nothing after reset, however long the last text was', () => {
    const writer = new Utf8Writer();
    writer.reset();
    writer.text('x'.repeat(300_000), true);
    writer.reset();
    writer.text('ok', false);
    expect([...writer.view()]).toEqual([...encoder.encode('ok')]);
  });
});
