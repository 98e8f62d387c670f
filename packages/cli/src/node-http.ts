import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

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

/**
 * The `clientError` listener of `sluice serve`: a request Node's parser
 * refused (a bad header, a bad chunk size, headers too large, a request
 * too slow to arrive) is answered as every other refusal is, with an
 * OpenAI-shaped JSON error naming what was wrong, not Node's bare
 * `400 Bad Request` with no body. A connection already reset, or one whose
 * answer has begun, is just closed.
 *
 * @param error - the parser's error (`code` such as `HPE_INVALID_HEADER_TOKEN`)
 * @param socket - the client's connection
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  const answering = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || answering?.headersSent) {
    socket.destroy();
    return;
  }
  const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const what = status === 431 ? 'the request headers are too large' : status === 408 ? 'the request did not arrive in time' : 'the request is not valid HTTP';
  const body = JSON.stringify({
    error: { message: `${what} (${error.code ?? 'unknown'})`, type: 'invalid_request_error', param: null, code: status === 408 ? 'request_timeout' : 'bad_http_request' },
  });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-should-retry: false\r\nconnection: close\r\n\r\n${body}`,
  );
}
