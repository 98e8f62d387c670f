import type { IncomingHttpHeaders } from 'node:http';

/** The header a client asks for its request's deadline with, in milliseconds. */
export const timeoutHeader = 'x-sluice-timeout-ms';

/** The server's deadline settings. */
export interface DeadlineOptions {
  /** The deadline of a request that asks for none; undefined: none. */
  timeoutMs: number | undefined;
  /** The longest deadline a request may ask for; undefined: no bound. */
  maxTimeoutMs: number | undefined;
}

/** A request's deadline (undefined: none), or why its header was refused. */
export type RequestDeadline = { ok: true; timeoutMs: number | undefined } | { ok: false; param: string; message: string };

/**
 * A request's deadline, its call's `timeoutMs`: the `x-sluice-timeout-ms`
 * header when the client sent one (a positive whole number of ms), else
 * the configured default, and never more than `maxTimeoutMs` (a longer
 * ask is cut to it, not refused: a client may ask generously and still be
 * served). A call past its deadline fails with `DEADLINE_EXCEEDED`, which
 * the server answers 504.
 *
 * @param headers - the request's headers
 * @param options - the default and the bound
 */
export function requestDeadline(headers: IncomingHttpHeaders, options: DeadlineOptions): RequestDeadline {
  const raw = headers[timeoutHeader];
  let asked: number | undefined;
  if (raw !== undefined) {
    const text = Array.isArray(raw) ? raw.join(',') : raw;
    asked = /^\s*\d{1,10}\s*$/.test(text) ? Number(text) : Number.NaN;
    if (!(asked > 0)) return { ok: false, param: timeoutHeader, message: `${timeoutHeader}: must be a whole number of milliseconds above 0, got ${JSON.stringify(text.slice(0, 40))}` };
  }
  const wanted = asked ?? options.timeoutMs;
  if (wanted === undefined) return { ok: true, timeoutMs: options.maxTimeoutMs };
  return { ok: true, timeoutMs: options.maxTimeoutMs === undefined ? wanted : Math.min(wanted, options.maxTimeoutMs) };
}
