import { parseChatRequest, type ChatRequestBody } from './chat-request-body.js';
import { completionChunks, completionPayload, type PayloadMeta } from './completion-payload.js';
import type { Exchange } from './exchange.js';
import { DEFAULT_AFTER_CHUNKS, type Fault } from './fault.js';
import { ReplyShapeError } from './reply-shape.js';
import { resolveReply, type ResolvedReply } from './resolve-reply.js';
import type { MockUpstreamOptions } from './mock-upstream-options.js';
import type { RecordedRequest } from './recorded-request.js';
import { errorBody } from './openai-error.js';

/**
 * Everything {@link respond} needs for one completion request; internal.
 *
 * @example
 * ```ts
 * const turn: Turn = { exchange, fault: undefined, raw, request, sequence: 1, created: 0, options: {} };
 * ```
 */
export interface Turn {
  exchange: Exchange;
  fault: Fault | undefined;
  raw: string;
  request: RecordedRequest;
  sequence: number;
  created: number;
  options: MockUpstreamOptions;
}

const htmlPage = (status: number): string =>
  `<html>\r\n<head><title>${status} Bad Gateway</title></head>\r\n<body>\r\n<center><h1>${status} Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;

const MALFORMED_JSON = '{"id":"chatcmpl-mock","object":"chat.completion","choices":[{"index":0,"message":{"role":"assis';
const MALFORMED_SSE = '{"id":"chatcmpl-mock","object":"chat.completion.chunk","choices":[{"delta":{"content":"';

/**
 * Answers one completion request: applies its fault, or sends the
 * completion as JSON or as an SSE stream; internal.
 *
 * @param turn - the request, its fault and the server's options
 * @example
 * ```ts
 * await respond({ exchange, fault: { kind: 'status', status: 503 }, raw, request, sequence: 1, created, options });
 * ```
 */
export async function respond(turn: Turn): Promise<void> {
  const { exchange, fault, options } = turn;
  if (fault?.kind === 'hang') return;
  const latency = (fault?.kind === 'delay' ? fault.latencyMs : undefined) ?? options.latencyMs ?? 0;
  if (!(await exchange.wait(latency))) return;

  switch (fault?.kind) {
    case 'reset':
      if (fault.at !== 'mid-stream') return exchange.reset();
      break;
    case 'status':
      return exchange.send(fault.status, fault.body ?? errorBody(fault), fault.headers);
    case 'html': {
      const status = fault.status ?? 502;
      return exchange.send(status, fault.body ?? htmlPage(status), {
        'content-type': 'text/html; charset=utf-8',
        ...fault.headers,
      });
    }
    case 'error-body':
      return exchange.send(200, fault.body ?? errorBody({ ...fault, status: 500 }), fault.headers);
  }

  const parsed = parseChatRequest(turn.raw);
  if (!parsed.ok) return exchange.send(400, parsed.error);
  const body = parsed.body;
  const stream = body.stream === true;
  if (!stream && fault?.kind === 'malformed') return exchange.send(200, fault.body ?? MALFORMED_JSON, fault.headers);
  if (!stream && fault?.kind === 'sse-error') {
    return exchange.send(200, fault.body ?? errorBody({ ...fault, status: 500 }));
  }

  let reply: ResolvedReply;
  try {
    reply = await resolveReply(fault?.kind === 'ok' && fault.reply !== undefined ? fault.reply : options.reply, body, turn.request, turn.sequence);
  } catch (error: unknown) {
    const reason = error instanceof Error ? error.message : String(error);
    const message = error instanceof ReplyShapeError ? reason : `mockUpstream: the reply function threw: ${reason}`;
    return exchange.send(500, errorBody({ status: 500, message }));
  }
  const meta: PayloadMeta = { id: `chatcmpl-mock-${turn.sequence}`, created: turn.created, model: body.model };
  return stream ? streamCompletion(turn, body, meta, reply) : sendCompletion(turn, meta, reply);
}

async function sendCompletion(turn: Turn, meta: PayloadMeta, reply: ResolvedReply): Promise<void> {
  const { exchange, fault } = turn;
  const payload = completionPayload(meta, reply) as Record<string, unknown>;
  if (fault?.kind === 'usage') payload['usage'] = fault.usage;
  if (fault?.kind === 'raw' && fault.body !== undefined) {
    const body = typeof fault.body === 'function' ? fault.body(payload) : fault.body;
    return exchange.send(200, body);
  }
  const text = JSON.stringify(payload);
  const half = text.slice(0, Math.floor(text.length / 2));
  if (fault?.kind === 'reset') {
    // Promise the whole body, deliver half, then reset: a body cut by the network.
    exchange.head(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    await exchange.write(half);
    return exchange.reset();
  }
  if (fault?.kind === 'cut') {
    exchange.head(200, { 'content-type': 'application/json' });
    await exchange.write(half);
    return exchange.end();
  }
  exchange.send(200, text);
}

async function streamCompletion(turn: Turn, body: ChatRequestBody, meta: PayloadMeta, reply: ResolvedReply): Promise<void> {
  const { exchange, fault, options } = turn;
  const includeUsage = body.stream_options?.include_usage === true;
  const chunks = completionChunks(meta, reply, options.chunks, includeUsage) as Array<Record<string, unknown>>;
  const last = chunks.at(-1);
  if (fault?.kind === 'usage' && includeUsage && last !== undefined) last['usage'] = fault.usage;
  const payloads = fault?.kind === 'raw' && fault.chunks !== undefined
    ? typeof fault.chunks === 'function' ? fault.chunks(chunks) : fault.chunks
    : chunks;
  const events = payloads.map((chunk) => `data: ${typeof chunk === 'string' ? chunk : JSON.stringify(chunk)}\n\n`);
  const sent = (afterChunks: number | undefined) => events.slice(0, Math.max(0, afterChunks ?? DEFAULT_AFTER_CHUNKS));
  let finish: 'end' | 'reset' = 'end';
  let script: string[];
  switch (fault?.kind) {
    case 'reset':
      script = sent(fault.afterChunks);
      finish = 'reset';
      break;
    case 'cut':
      script = sent(fault.afterChunks);
      break;
    case 'malformed':
      script = [...sent(fault.afterChunks), `data: ${fault.body ?? MALFORMED_SSE}\n\n`];
      break;
    case 'sse-error': {
      const payload = fault.body ?? errorBody({ ...fault, status: 500 });
      const data = `data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`;
      script = [...sent(fault.afterChunks), fault.style === 'data' ? data : `event: error\n${data}`];
      break;
    }
    case 'raw':
      script = fault.done === false ? events : [...events, 'data: [DONE]\n\n'];
      break;
    default:
      script = [...events, 'data: [DONE]\n\n'];
  }

  const chunkDelay = (fault?.kind === 'delay' ? fault.chunkDelayMs : undefined) ?? options.chunkDelayMs ?? 0;
  exchange.head(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    ...(fault?.kind === 'malformed' ? fault.headers : {}),
  });
  for (const [index, event] of script.entries()) {
    if (index > 0 && !(await exchange.wait(chunkDelay))) return;
    await exchange.write(event);
  }
  if (finish === 'reset') {
    await exchange.flush();
    return exchange.reset();
  }
  exchange.end();
}
