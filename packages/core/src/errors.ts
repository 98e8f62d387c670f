/*
 * One error family for every package. A middleware decides what to do from
 * `code` and `retryable` alone, so no package needs another package's
 * classes. `instanceof` is answered by a brand registered with
 * `Symbol.for`, so it stays true when two copies of @sluice/core are
 * installed side by side (a dependency pinned to another version).
 */

const kKinds = Symbol.for('sluice.error.kinds');

/** Where the error came from and what it knows, for every SluiceError. */
export interface SluiceErrorOptions {
  cause?: unknown;
  /** Overrides the class's default. */
  retryable?: boolean;
}

/**
 * The base of every error sluice throws.
 *
 * @example
 * ```ts
 * try { await llm.complete(request); }
 * catch (error) { if (error instanceof SluiceError && error.retryable) queueForLater(request); }
 * ```
 */
export class SluiceError extends Error {
  /** A stable, machine-readable code (`RATE_LIMITED`, `CIRCUIT_OPEN`, …). */
  readonly code: string;
  /** Whether sending the same request again may succeed. */
  readonly retryable: boolean;
  declare readonly [kKinds]: readonly string[];

  /**
   * @param code - stable machine-readable code
   * @param message - human-readable description; never contains credentials
   * @param options - `cause` and a `retryable` override
   */
  constructor(code: string, message: string, options: SluiceErrorOptions & { retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    const kinds: string[] = [];
    for (let c: unknown = new.target; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c)) {
      kinds.push((c as { name: string }).name);
    }
    Object.defineProperty(this, kKinds, { value: kinds, enumerable: false });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    const kinds = (value as { [kKinds]?: unknown } | null | undefined)?.[kKinds];
    return Array.isArray(kinds) && kinds.includes(this.name);
  }

  /** Type guard that also recognises errors from another copy of the package. */
  static is(value: unknown): value is SluiceError {
    return value instanceof SluiceError;
  }
}

/** A factory option or request failed validation; `field` names what is wrong. */
export class ValidationError extends SluiceError {
  /**
   * @param field - dotted path of the offending field (`messages.2.role`, `retry.attempts`)
   * @param message - what is wrong with it
   */
  constructor(
    readonly field: string,
    message: string,
    options: SluiceErrorOptions = {},
  ) {
    super('VALIDATION', `${field}: ${message}`, options);
  }
}

/** What an upstream error knows about the response that caused it. */
export interface UpstreamErrorOptions extends SluiceErrorOptions {
  status?: number;
  /** Response headers (never request headers, so never the Authorization header). */
  headers?: Record<string, string>;
  /** The provider's own error code or type (`context_length_exceeded`, `server_error`). */
  providerCode?: string;
  /** Parsed `retry-after-ms` / `retry-after`, in milliseconds. */
  retryAfterMs?: number;
}

/** The upstream answered with an error, or could not be reached. */
export class UpstreamError extends SluiceError {
  readonly status: number | undefined;
  readonly headers: Record<string, string> | undefined;
  readonly providerCode: string | undefined;
  /** How long the upstream asked us to wait before retrying, if it said. */
  readonly retryAfterMs: number | undefined;

  constructor(code: string, message: string, options: UpstreamErrorOptions = {}) {
    super(code, message, options);
    this.status = options.status;
    this.headers = options.headers;
    this.providerCode = options.providerCode;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** 400: the request is malformed. Not retryable. */
export class BadRequestError extends UpstreamError {
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super('BAD_REQUEST', message, { status: 400, ...options });
  }
}

/** 400 with `context_length_exceeded`: the prompt does not fit the model's window. */
export class ContextLengthError extends UpstreamError {
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super('CONTEXT_LENGTH_EXCEEDED', message, { status: 400, ...options });
  }
}

/** 401 or 403: the key is wrong or lacks permission. Never retried. */
export class AuthError extends UpstreamError {
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super(options.status === 403 ? 'PERMISSION_DENIED' : 'AUTHENTICATION', message, options);
  }
}

/** 429: the provider's rate limit; `retryAfterMs` says how long to wait, when it said. */
export class RateLimitError extends UpstreamError {
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super('RATE_LIMITED', message, { status: 429, retryable: true, ...options });
  }
}

const statusCodes: Record<number, [code: string, retryable: boolean]> = {
  404: ['NOT_FOUND', false],
  408: ['REQUEST_TIMEOUT', true],
  409: ['CONFLICT', true],
  413: ['PAYLOAD_TOO_LARGE', false],
  422: ['UNPROCESSABLE_ENTITY', false],
};

/**
 * Any other 4xx answer: 404 `NOT_FOUND`, 408 `REQUEST_TIMEOUT` and 409
 * `CONFLICT` (both retryable, as openai-node treats them), 413
 * `PAYLOAD_TOO_LARGE`, 422 `UNPROCESSABLE_ENTITY`, else `HTTP_ERROR`.
 */
export class StatusError extends UpstreamError {
  constructor(status: number, message: string, options: UpstreamErrorOptions = {}) {
    const [code, retryable] = statusCodes[status] ?? ['HTTP_ERROR', false];
    super(code, message, { retryable, ...options, status });
  }
}

/** 5xx: the provider failed. Retryable. */
export class ServerError extends UpstreamError {
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super('SERVER_ERROR', message, { retryable: true, ...options });
  }
}

/** The connection was refused, reset or closed before a response was complete. */
export class ConnectionError extends UpstreamError {
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super('CONNECTION', message, { retryable: true, ...options });
  }
}

/** Which limit a {@link TimeoutError} hit. */
export type TimeoutPhase = 'connect' | 'first-byte' | 'idle' | 'attempt' | 'deadline';

/**
 * A timeout: connecting, waiting for the first byte, idle between stream
 * chunks, the per-attempt limit, or the whole call's deadline (`timeoutMs`).
 * The first four are retryable; a passed deadline is not.
 */
export class TimeoutError extends UpstreamError {
  constructor(
    readonly phase: TimeoutPhase,
    readonly timeoutMs: number,
    options: UpstreamErrorOptions = {},
  ) {
    super('TIMEOUT', `${phase} timeout after ${timeoutMs} ms`, { retryable: phase !== 'deadline', ...options });
  }
}

/** The caller aborted (their `signal`, or `break` out of a stream). Never retried. */
export class AbortError extends SluiceError {
  constructor(message = 'The call was aborted', options: SluiceErrorOptions = {}) {
    super('ABORTED', message, options);
  }
}

/** The upstream's answer could not be understood: not JSON, HTML, broken SSE. */
export class MalformedResponseError extends UpstreamError {
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super('MALFORMED_RESPONSE', message, options);
  }
}

/** A stream ended without `[DONE]` or its connection broke after chunks were sent. */
export class StreamCutError extends UpstreamError {
  constructor(
    message: string,
    readonly chunksReceived: number,
    options: UpstreamErrorOptions = {},
  ) {
    super('STREAM_CUT', message, { retryable: true, ...options });
  }
}

/** An error this library did not expect; wraps it so callers always see a SluiceError. */
export class UnexpectedError extends SluiceError {
  constructor(cause: unknown) {
    super('UNEXPECTED', cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/** Wraps anything thrown into a SluiceError, keeping SluiceErrors as they are. */
export function toSluiceError(error: unknown): SluiceError {
  return error instanceof SluiceError ? error : new UnexpectedError(error);
}
