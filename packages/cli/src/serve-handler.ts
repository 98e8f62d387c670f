import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BreakerMiddleware } from '@sluice/breaker';
import { type RunsCompletions, toFetch } from '@sluice/core';
import type { TenantOf } from './api-keys.js';
import { readBody, sendResponse } from './node-http.js';

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
}

/** Carries the authenticated tenant from the server to the pipeline's tags; never taken from a client. */
const tenantHeader = 'x-sluice-tenant';

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
 * - `POST /v1/chat/completions`: JSON or SSE through the pipeline (core's
 *   `toFetch`), tagged `{ tenant }` so budgets and rate limits keyed by
 *   tenant apply; bodies over `maxBodyBytes` get 413, bad ones 400 naming
 *   the field as OpenAI's `param`;
 * - `GET /v1/models`: the configured models;
 * - `GET /health` (or `/healthz`): each configured model's circuit state;
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
  const fetchCompletions = toFetch(options.pipeline, {
    fallback: null,
    tags: (headers) => ({ tenant: headers.get(tenantHeader) ?? 'anonymous' }),
  });
  let active = 0;
  let waiters: Array<() => void> = [];

  async function handle(request: IncomingMessage, target: ServerResponse): Promise<void> {
    const tenant = options.tenantOf(request.headers.authorization) ?? (options.allowAnonymous ? 'anonymous' : undefined);
    if (tenant === undefined) {
      request.resume();
      return error(target, 401, 'invalid_request_error', 'invalid_api_key', 'Incorrect or missing API key.', null, { 'www-authenticate': 'Bearer' });
    }
    const path = new URL(request.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '');
    const method = request.method ?? 'GET';
    if (method === 'GET' && path === '/v1/models') {
      request.resume();
      const data = (options.models ?? []).map((id) => ({ id, object: 'model', created: 0, owned_by: 'sluice' }));
      return json(target, 200, { object: 'list', data });
    }
    if (method === 'GET' && (path === '/health' || path === '/healthz')) {
      request.resume();
      const circuit = options.circuit;
      const circuits = circuit ? await Promise.all((options.models ?? []).map(async (model) => ({ model, ...(await circuit.state(`${options.origin}|${model}`)) }))) : [];
      // The key is the upstream URL and model: internal detail, left out.
      const states = circuits.map(({ key: _key, ...rest }) => rest);
      return json(target, 200, { status: states.some((c) => c.state !== 'closed') ? 'degraded' : 'ok', circuits: states });
    }
    if (path !== '/v1/chat/completions') {
      request.resume();
      return error(target, 404, 'not_found_error', 'not_found', `no route for ${method} ${path || '/'}`);
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
    const problem = checkBody(read.body, options.models);
    if (problem) return error(target, problem.status, problem.status === 404 ? 'not_found_error' : 'invalid_request_error', problem.code, problem.message, problem.param);

    const stop = new AbortController();
    // The client left before the answer was sent in full: end the call and its upstream request.
    target.once('close', () => {
      if (!target.writableFinished) stop.abort(new Error('the client closed the connection'));
    });
    let response: Response;
    try {
      response = await fetchCompletions(
        new Request('http://sluice.local/v1/chat/completions', {
          method: 'POST',
          headers: { 'content-type': 'application/json', [tenantHeader]: tenant },
          body: read.body,
          signal: stop.signal,
        }),
      );
    } catch {
      // Only the client's own abort rejects: there is no one left to answer.
      return void target.destroy();
    }
    await sendResponse(response, target);
  }

  return {
    listener(request, target) {
      active++;
      target.once('close', () => {
        if (--active > 0) return;
        for (const wake of waiters) wake();
        waiters = [];
      });
      handle(request, target).catch(() => {
        if (!target.headersSent) error(target, 500, 'server_error', 'internal_error', 'internal error');
        else target.destroy();
      });
    },
    inFlight: () => active,
    idle: () => (active === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
  };
}

interface BodyProblem {
  status: 400 | 404;
  code: string;
  param: string;
  message: string;
}

/** What OpenAI would refuse before the call: not JSON, no model, no messages, or a model not served. */
function checkBody(body: Buffer, models: readonly string[] | undefined): BodyProblem | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return { status: 400, code: 'invalid_json', param: 'body', message: 'the request body is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { status: 400, code: 'invalid_type', param: 'body', message: 'the request body must be a JSON object' };
  const { model, messages } = value as { model?: unknown; messages?: unknown };
  if (typeof model !== 'string' || model === '') return { status: 400, code: 'missing_required_parameter', param: 'model', message: 'model: a model name is required' };
  if (!Array.isArray(messages) || messages.length === 0) return { status: 400, code: 'missing_required_parameter', param: 'messages', message: 'messages: a non-empty array is required' };
  if (models && !models.includes(model)) return { status: 404, code: 'model_not_found', param: 'model', message: `model: ${JSON.stringify(model.slice(0, 100))} is not served here` };
  return undefined;
}
