import type { IncomingMessage } from 'node:http';

/** The request body, or why it was not read. */
export type BodyRead = { ok: true; body: Buffer } | { ok: false; reason: 'too-large' | 'aborted' };

/**
 * Reads a request's body into memory, up to `maxBytes`. Past that it
 * stops keeping it but goes on reading (up to `discardBytes` in all), so
 * the client, still sending, gets to read the 413 instead of a reset
 * connection; a body larger still is cut at once.
 *
 * @param request - the incoming request
 * @param maxBytes - the largest body kept
 * @param discardBytes - the most read and dropped before the connection is cut (default 16 MiB or 4 × `maxBytes`)
 */
export async function readBody(request: IncomingMessage, maxBytes: number, discardBytes = Math.max(16 << 20, 4 * maxBytes)): Promise<BodyRead> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > discardBytes) return { ok: false, reason: 'too-large' };
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const part of request as AsyncIterable<Buffer>) {
      size += part.length;
      if (size > discardBytes) return { ok: false, reason: 'too-large' };
      if (size <= maxBytes) parts.push(part);
    }
  } catch {
    return { ok: false, reason: 'aborted' };
  }
  return size > maxBytes ? { ok: false, reason: 'too-large' } : { ok: true, body: Buffer.concat(parts, size) };
}
