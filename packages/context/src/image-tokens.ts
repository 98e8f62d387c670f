import type { ContentPart } from '@sluice/core';
import { cachedCount } from './token-cache.js';
import type { Tokenizer } from './tokenizer.js';

/*
 * OpenAI's published rule for image inputs (gpt-4o, gpt-4.1 and the models
 * priced like them): `low` detail costs 85 tokens; `high` and `auto` fit
 * the image in 2048×2048, scale its shorter side down to 768 px, and cost
 * 85 + 170 per 512 px tile. The size is read from the header of a
 * `data:` URL (PNG, GIF, JPEG, WebP); for a remote URL, whose size is
 * unknown without fetching it, the largest possible count is assumed:
 * 8 tiles, 1,445 tokens.
 */

const baseTokens = 85;
const tileTokens = 170;

/** Tokens of a `high`/`auto` image whose size is unknown: 8 tiles, the most an image can have. */
export const unknownImageTokens = baseTokens + 8 * tileTokens;

/**
 * Tokens of an image of `width` × `height` pixels at `high` detail.
 *
 * @param width - pixels
 * @param height - pixels
 * @example
 * ```ts
 * tiledImageTokens(1024, 1024); // 765: scaled to 768×768, 4 tiles
 * ```
 */
export function tiledImageTokens(width: number, height: number): number {
  let w = width;
  let h = height;
  if (Math.max(w, h) > 2048) {
    const scale = 2048 / Math.max(w, h);
    w *= scale;
    h *= scale;
  }
  if (Math.min(w, h) > 768) {
    const scale = 768 / Math.min(w, h);
    w *= scale;
    h *= scale;
  }
  return baseTokens + tileTokens * Math.ceil(Math.floor(w) / 512) * Math.ceil(Math.floor(h) / 512);
}

const sizeCounter: Tokenizer = {
  name: 'image-size',
  approximate: true,
  count(url) {
    const size = dataUrlImageSize(url);
    return size ? tiledImageTokens(size.width, size.height) : unknownImageTokens;
  },
};

/**
 * Tokens of one `image_url` content part (an estimate; cached by URL).
 *
 * @param part - the content part
 * @example
 * ```ts
 * imageTokens({ type: 'image_url', image_url: { url, detail: 'low' } }); // 85
 * ```
 */
export function imageTokens(part: Extract<ContentPart, { type: 'image_url' }>): number {
  if (part.image_url.detail === 'low') return baseTokens;
  return cachedCount(sizeCounter, part.image_url.url).tokens;
}

/** The pixel size in a `data:image/…;base64,` URL's header, when it can be read. */
export function dataUrlImageSize(url: string): { width: number; height: number } | undefined {
  if (!url.startsWith('data:image/')) return undefined;
  const comma = url.indexOf(',');
  if (comma === -1 || !url.slice(0, comma).endsWith(';base64')) return undefined;
  let bytes: Uint8Array;
  try {
    // 64 KiB of base64 covers the headers, even a JPEG's after its EXIF block.
    const head = url.slice(comma + 1, comma + 1 + 65_536);
    bytes = Uint8Array.from(atob(head.slice(0, head.length - (head.length % 4))), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
  return pngSize(bytes) ?? gifSize(bytes) ?? webpSize(bytes) ?? jpegSize(bytes);
}

const u16be = (b: Uint8Array, i: number) => ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0);
const u16le = (b: Uint8Array, i: number) => (b[i] ?? 0) | ((b[i + 1] ?? 0) << 8);
const u24le = (b: Uint8Array, i: number) => u16le(b, i) | ((b[i + 2] ?? 0) << 16);
const u32be = (b: Uint8Array, i: number) => u16be(b, i) * 65_536 + u16be(b, i + 2);
const ascii = (b: Uint8Array, i: number, length: number) => String.fromCharCode(...b.subarray(i, i + length));
const valid = (width: number, height: number) => (width > 0 && height > 0 ? { width, height } : undefined);

function pngSize(b: Uint8Array) {
  return ascii(b, 1, 3) === 'PNG' && ascii(b, 12, 4) === 'IHDR' ? valid(u32be(b, 16), u32be(b, 20)) : undefined;
}

function gifSize(b: Uint8Array) {
  return ascii(b, 0, 3) === 'GIF' ? valid(u16le(b, 6), u16le(b, 8)) : undefined;
}

function webpSize(b: Uint8Array) {
  if (ascii(b, 0, 4) !== 'RIFF' || ascii(b, 8, 4) !== 'WEBP') return undefined;
  const chunk = ascii(b, 12, 4);
  if (chunk === 'VP8 ') return valid(u16le(b, 26) & 0x3fff, u16le(b, 28) & 0x3fff);
  if (chunk === 'VP8L') {
    const bits = (b[21] ?? 0) | ((b[22] ?? 0) << 8) | ((b[23] ?? 0) << 16) | ((b[24] ?? 0) << 24);
    return valid((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1);
  }
  if (chunk === 'VP8X') return valid(u24le(b, 24) + 1, u24le(b, 27) + 1);
  return undefined;
}

function jpegSize(b: Uint8Array) {
  if (b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  let at = 2;
  while (at + 9 < b.length) {
    if (b[at] !== 0xff) return undefined;
    const marker = b[at + 1] ?? 0;
    if (marker === 0xff) {
      at++; // a fill byte before a marker
      continue;
    }
    // SOF0–SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return valid(u16be(b, at + 7), u16be(b, at + 5));
    }
    at += 2 + u16be(b, at + 2);
  }
  return undefined;
}
