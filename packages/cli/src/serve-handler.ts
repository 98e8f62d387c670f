import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setMaxListeners } from 'node:events';
import type { BreakerMiddleware } from '@sluice/breaker';
import type { CallOptions, ChatCompletionRequest, RunsCompletions } from '@sluice/core';
import { excerpt } from '@sluice/core/kit';
import type { TenantOf } from './api-keys.js';
import { readBody } from './node-http.js';
import type { DeploymentCircuit } from './routed-pipeline.js';
import { answerCompletion } from './serve-completion.js';
import { type DeadlineOptions, requestDeadline, timeoutHeader } from './request-deadline.js';

/** A client's switch for the cache, per request: `on` (cache it whatever its temperature), `off`, or `refresh` (skip the read, store the answer). */
const cacheHeader = 'x-sluice-cache';
const cacheModes = new Set(['on', 'off', 'refresh']);

/** What {@link serveHandler} serves. */
export interface ServeHandlerOptions {
  pipeline: RunsCompletions;
  /** The tenant of a presented `Authorization` header, or undefined. */
  tenantOf: TenantOf;
  /** Serve requests without a valid key, as the tenant `anonymous`. */
  allowAnonymous: boolean;
  maxBodyBytes: number;
  /** The models listed and accepted; undefined accepts any. */
  models: readonly string[] | undefined;
  /** The breaker whose circuits `/health` reports, and the upstream origin its keys start with. */
  circuit: BreakerMiddleware | undefined;
  origin: string;
  /** With several deployments instead: each one's circuit, which `/health` reports in its place. */
  deployments?: readonly DeploymentCircuit[];
  /** Answer `GET /health` without a key, with the status alone. */
  publicHealth: boolean;
  /** The default deadline and the bound of a client's `x-sluice-timeout-ms`. */
  deadline: DeadlineOptions;
}

function json(target: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  target.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  target.end(text);
}

function error(target: ServerResponse, status: number, type: string, code: string, message: string, param: string | null = null, headers: Record<string, string> = {}): void {
  json(target, status, { error: { message, type, param, code } }, { 'x-should-retry': 'false', ...headers });
}

/**
 * The `node:http` request listener of `sluice serve`: an OpenAI-compatible
 * API in front of a pipeline. Every route needs a configured key (unless
 * `allowAnonymous`), checked before anything else is looked at:
 *
 * - `POST /v1/chat/completions`: JSON or SSE through the pipeline (answered
 *   as core's `toFetch` answers), tagged `{ tenant }` so budgets and rate
 *   limits keyed by tenant apply, with the deadline of
 *   {@link requestDeadline}; bodies over `maxBodyBytes` get 413, bad ones
 *   400 naming the field as OpenAI's `param`;
 * - `GET /v1/models`: the configured models;
 * - `GET /health` (or `/healthz`): each configured model's circuit state;
 *   with `publicHealth`, a request with no `Authorization` header gets
 *   `{ "status": "ok" }` alone (liveness), and a key still gets the circuits;
 * - anything else: 404.
 *
 * The client's `Authorization` header never reaches the upstream (the
 * pipeline's transport holds the real key), and no answer repeats it.
 *
 * @param options - the pipeline, keys and limits
 * @returns the listener, `inFlight` (requests not yet answered in full), and `idle()` (resolves when none is)
 */
export function serveHandler(options: ServeHandlerOptions): {
  listener: (request: IncomingMessage, target: ServerResponse) => void;
  inFlight: () => number;
  idle: () => Promise<void>;
} {
  let active = 0;
  let waiters: Array<() => void> = [];
  // The pipeline copies and freezes the tags of every call given unfrozen ones: one frozen object per tenant instead
  // (the configured tenants and `anonymous`, so the map stays as small as the config).
  const tagsOf = new Map<string, Readonly<Record<string, string>>>();
  // Most requests ask for no deadline of their own: the configured one, worked out once.
  const configuredDeadline = requestDeadline({}, options.deadline);

  async function handle(request: IncomingMessage, target: ServerResponse): Promise<void> {
    const path = pathOf(request.url);
    const method = request.method ?? 'GET';
    const tenant = options.tenantOf(request.headers.authorization) ?? (options.allowAnonymous ? 'anonymous' : undefined);
    if (tenant === undefined) {
      request.resume();
      // Liveness only: no key was presented, so nothing but "the server answers" is told.
      if (options.publicHealth && request.headers.authorization === undefined && method === 'GET' && (path === '/health' || path === '/healthz')) {
        return json(target, 200, { status: 'ok' }, { 'cache-control': 'no-store' });
      }
      return error(target, 401, 'invalid_request_error', 'invalid_api_key', 'Incorrect or missing API key.', null, { 'www-authenticate': 'Bearer' });
    }
    if (method === 'GET' && path === '/v1/models') {
      request.resume();
      const data = (options.models ?? []).map((id) => ({ id, object: 'model', created: 0, owned_by: 'sluice' }));
      return json(target, 200, { object: 'list', data });
    }
    if (method === 'GET' && (path === '/health' || path === '/healthz')) {
      request.resume();
      const circuit = options.circuit;
      const circuits = options.deployments
        ? await Promise.all(options.deployments.map(async (known) => ({ deployment: known.deployment, model: known.model, ...(await known.circuit.state(known.key)) })))
        : circuit
          ? await Promise.all((options.models ?? []).map(async (model) => ({ model, ...(await circuit.state(`${options.origin}|${model}`)) })))
          : [];
      // The key is the upstream URL and model: internal detail, left out.
      const states = circuits.map(({ key: _key, ...rest }) => rest);
      const store = storeFigures((options.pipeline as { store?: unknown }).store);
      return json(target, 200, { status: states.some((c) => c.state !== 'closed') ? 'degraded' : 'ok', circuits: states, ...(store ? { store } : {}) });
    }
    if (path !== '/v1/chat/completions') {
      request.resume();
      // The path as the client sent it, cut short: a 16 KB path is not repeated back whole.
      return error(target, 404, 'not_found_error', 'not_found', `no route for ${method.slice(0, 16)} ${excerpt(path || '/', 200, [])}`);
    }
    if (method !== 'POST') {
      request.resume();
      return error(target, 405, 'invalid_request_error', 'method_not_allowed', `use POST for ${path}`, null, { allow: 'POST' });
    }
    const read = await readBody(request, options.maxBodyBytes);
    if (!read.ok) {
      if (read.reason === 'aborted') return void target.destroy();
      return error(target, 413, 'invalid_request_error', 'request_too_large', `the request body is larger than ${options.maxBodyBytes} bytes`, null, { connection: 'close' });
    }
    const checked = checkBody(read.body, options.models);
    if (!checked.ok) return error(target, checked.status, checked.status === 404 ? 'not_found_error' : 'invalid_request_error', checked.code, checked.message, checked.param);
    const deadline = request.headers[timeoutHeader] === undefined ? configuredDeadline : requestDeadline(request.headers, options.deadline);
    if (!deadline.ok) return error(target, 400, 'invalid_request_error', 'invalid_value', deadline.message, deadline.param);

    let tags = tagsOf.get(tenant);
    if (tags === undefined) tagsOf.set(tenant, (tags = Object.freeze({ tenant })));
    const cacheMode = request.headers[cacheHeader];
    if (cacheMode !== undefined) {
      // The cache's own per-call switch (its `cache` tag): rare, so these tags are made per request.
      if (typeof cacheMode !== 'string' || !cacheModes.has(cacheMode)) {
        return error(target, 400, 'invalid_request_error', 'invalid_value', `${cacheHeader}: must be on, off or refresh, got ${JSON.stringify(String(cacheMode).slice(0, 40))}`, cacheHeader);
      }
      tags = Object.freeze({ tenant, cache: cacheMode });
    }
    const call: CallOptions = { signal: connectionSignal(request.socket), tags };
    if (deadline.timeoutMs !== undefined) call.timeoutMs = deadline.timeoutMs;
    await answerCompletion(options.pipeline, checked.body, call, target);
  }

  // One function for every response, not a closure each: a response closes once.
  const answered = () => {
    if (--active > 0) return;
    for (const wake of waiters) wake();
    waiters = [];
  };

  return {
    listener(request, target) {
      active++;
      target.on('close', answered);
      handle(request, target).catch(() => {
        if (!target.headersSent) error(target, 500, 'server_error', 'internal_error', 'internal error');
        else target.destroy();
      });
    },
    inFlight: () => active,
    idle: () => (active === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
  };
}

const connectionAborts = new WeakMap<Socket, AbortSignal>();

/**
 * The signal that aborts when a connection closes: the client left, so
 * every call still answering a request on it ends, and its upstream
 * request with it. One per connection rather than per request (a keep-alive
 * connection carries many): an `AbortController` and its signal cost a
 * call more than anything else the server does before the pipeline. A
 * response is answered on its request's connection, and it is only cut
 * short by that connection closing, so the two signals abort alike.
 */
function connectionSignal(socket: Socket): AbortSignal {
  let signal = connectionAborts.get(socket);
  if (signal) return signal;
  const controller = new AbortController();
  signal = controller.signal;
  // A client that pipelines requests has a call in flight for each on one connection: no leak warning for those.
  setMaxListeners(0, signal);
  connectionAborts.set(socket, signal);
  if (socket.destroyed) controller.abort(new Error('the client closed the connection'));
  else socket.once('close', () => controller.abort(new Error('the client closed the connection')));
  return signal;
}

/** The parsed body, or what is wrong with it. */
type CheckedBody = { ok: true; body: ChatCompletionRequest } | { ok: false; status: 400 | 404; code: string; param: string; message: string };

/** The path without its query and trailing slashes; no URL object for the usual `/v1/chat/completions`. */
function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const query = url.indexOf('?');
  const path = query === -1 ? url : url.slice(0, query);
  if (path.startsWith('/') && !path.startsWith('//') && !path.includes('%') && !path.includes('.')) return path.replace(/\/+$/, '');
  return new URL(url, 'http://localhost').pathname.replace(/\/+$/, '');
}

/** What OpenAI would refuse before the call: not JSON, no model, no messages, or a model not served. */
function checkBody(body: Buffer, models: readonly string[] | undefined): CheckedBody {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return { ok: false, status: 400, code: 'invalid_json', param: 'body', message: 'the request body is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, status: 400, code: 'invalid_type', param: 'body', message: 'the request body must be a JSON object' };
  const { model, messages } = value as { model?: unknown; messages?: unknown };
  if (typeof model !== 'string' || model === '') return { ok: false, status: 400, code: 'missing_required_parameter', param: 'model', message: 'model: a model name is required' };
  if (!Array.isArray(messages) || messages.length === 0) return { ok: false, status: 400, code: 'missing_required_parameter', param: 'messages', message: 'messages: a non-empty array is required' };
  if (models && !models.includes(model)) return { ok: false, status: 404, code: 'model_not_found', param: 'model', message: `model: ${JSON.stringify(model.slice(0, 100))} is not served here` };
  // The pipeline validates the rest against the request schema, naming the field.
  return { ok: true, body: value as ChatCompletionRequest };
}

/**
 * How full the pipeline's store is, when it says (the memory store): the
 * records it holds, and those it evicted before they ran out, each a
 * tenant's budget, limit or circuit forgotten early. A shared store
 * (Redis) says nothing here.
 */
function storeFigures(store: unknown): { records: number; evicted: number } | undefined {
  if (typeof store !== 'object' || store === null) return undefined;
  const { size, evicted } = store as { size?: unknown; evicted?: unknown };
  return typeof size === 'number' && typeof evicted === 'number' ? { records: size, evicted } : undefined;
}
