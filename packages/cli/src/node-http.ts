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
export function readBody(request: IncomingMessage, maxBytes: number, discardBytes = Math.max(16 << 20, 4 * maxBytes)): Promise<BodyRead> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > discardBytes) return Promise.resolve(tooLarge);
  // Events, not `for await`: an async iterator per request costs a server more than the body it reads.
  return new Promise((resolve) => {
    // A body in one chunk (the usual request) is kept as it came: Node hands each chunk over as a copy of its own.
    let first: Buffer | undefined;
    let parts: Buffer[] | undefined;
    let size = 0;
    let settled = false;
    const settle = (result: BodyRead) => {
      if (settled) return;
      settled = true;
      request.off('data', onData);
      resolve(result);
    };
    const onData = (part: Buffer) => {
      size += part.length;
      if (size > discardBytes) {
        settle(tooLarge);
        request.destroy();
      } else if (size <= maxBytes) {
        if (first === undefined) first = part;
        else (parts ??= [first]).push(part);
      }
    };
    // `on`, not `once`, for events that come once anyway: `once` wraps each listener in two more objects, per request.
    const onAborted = () => settle(aborted);
    request.on('data', onData);
    request.on('end', () => settle(size > maxBytes ? tooLarge : { ok: true, body: parts ? Buffer.concat(parts, size) : (first ?? Buffer.alloc(0)) }));
    // Kept after settling: an error with no listener would crash the server.
    request.on('error', onAborted);
    // Closed before its end: the client went away mid-body.
    request.on('close', onAborted);
  });
}

const tooLarge: BodyRead = { ok: false, reason: 'too-large' };
const aborted: BodyRead = { ok: false, reason: 'aborted' };
