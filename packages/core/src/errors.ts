/*
 * One error family for every package. Everything another package decides
 * from is data on the error (`code`, `retryable`, `final`,
 * `upstreamFault`, `retryAfterMs`), so no package lists another's codes.
 * `instanceof` is answered by a brand registered with `Symbol.for` and
 * made of string literals (each class's static `brand`), so it stays true
 * when two copies of @sluice/core are installed side by side, and `name`
 * survives minification.
 */

const kKinds = Symbol.for('sluice.error.kinds');

/** Where the error came from and what it tells other middleware. */
export interface SluiceErrorOptions {
  cause?: unknown;
  /** Overrides the class's default for {@link SluiceError.retryable}. */
  retryable?: boolean;
  /** Overrides the class's default for {@link SluiceError.final}. */
  final?: boolean;
  /** Overrides the class's default for {@link SluiceError.upstreamFault}. */
  upstreamFault?: boolean;
  /** How long to wait before trying again, when known. */
  retryAfterMs?: number;
  /** The HTTP status a server (`toFetch`, `sluice serve`) answers this error with, when it is not the upstream's. */
  httpStatus?: number;
}

/** The brands of `ctor` and its ancestors, nearest first. */
function brandsOf(ctor: unknown): string[] {
  const kinds: string[] = [];
  for (let c = ctor; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c)) {
    if (Object.hasOwn(c, 'brand')) kinds.push((c as unknown as { brand: string }).brand);
  }
  return kinds;
}

/**
 * The base of every error sluice throws. A subclass declares its name as a
 * string literal, `static override readonly brand = 'MyError'`, which
 * becomes `error.name` and what `instanceof` compares across copies.
 *
 * @example
 * ```ts
 * try { await llm.complete(request); }
 * catch (error) { if (error instanceof SluiceError && error.retryable) queueForLater(request); }
 * ```
 */
export class SluiceError extends Error {
  /** The error's name, a string literal that survives minification. */
  static readonly brand: string = 'SluiceError';
  /** A stable, machine-readable code (`RATE_LIMITED`, `CIRCUIT_OPEN`, …). */
  readonly code: string;
  /** Whether sending the same request to the same upstream again may succeed. */
  readonly retryable: boolean;
  /**
   * Whether nothing may send this call again, anywhere: the caller aborted,
   * the deadline passed, the pipeline closed, the request itself is wrong,
   * a budget said no. `retry` never retries a final error.
   */
  readonly final: boolean;
  /** Whether the upstream itself is unwell (5xx, resets, cut streams, timeouts): what a circuit counts. */
  readonly upstreamFault: boolean;
  /** How long to wait before trying again, when the upstream or a limit said. */
  readonly retryAfterMs: number | undefined;
  /** The HTTP status to answer with, for an error sluice raised itself (an open circuit: 503). */
  readonly httpStatus: number | undefined;
  declare readonly [kKinds]: readonly string[];

  /**
   * @param code - stable machine-readable code
   * @param message - human-readable description; never contains credentials
   * @param options - `cause`, and overrides of `retryable`, `final`, `upstreamFault`, `retryAfterMs`
   */
  constructor(code: string, message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const kinds = brandsOf(new.target);
    this.name = kinds[0] ?? 'SluiceError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.final = options.final ?? false;
    this.upstreamFault = options.upstreamFault ?? false;
    const after = options.retryAfterMs;
    this.retryAfterMs = typeof after === 'number' && Number.isFinite(after) && after >= 0 ? after : undefined;
    const status = options.httpStatus;
    this.httpStatus = typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599 ? status : undefined;
    Object.defineProperty(this, kKinds, { value: kinds, enumerable: false });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    if (!Object.hasOwn(this, 'brand')) return false;
    const kinds = (value as { [kKinds]?: unknown } | null | undefined)?.[kKinds];
    return Array.isArray(kinds) && kinds.includes(this.brand);
  }

  /** Type guard that also recognises errors from another copy of the package. */
  static is(value: unknown): value is SluiceError {
    return value instanceof SluiceError;
  }
}

/** A factory option or request failed validation; `field` names what is wrong. */
export class ValidationError extends SluiceError {
  static override readonly brand: string = 'ValidationError';
  /**
   * @param field - dotted path of the offending field (`messages.2.role`, `retry.attempts`)
   * @param message - what is wrong with it
   */
  constructor(
    readonly field: string,
    message: string,
    options: SluiceErrorOptions = {},
  ) {
    super('VALIDATION', `${field}: ${message}`, { final: true, httpStatus: 400, ...options });
  }
}

/** What an upstream error knows about the response that caused it. */
export interface UpstreamErrorOptions extends SluiceErrorOptions {
  status?: number;
  /** Response headers (never request headers, so never the Authorization header). */
  headers?: Record<string, string>;
  /** The provider's own error code or type (`context_length_exceeded`, `server_error`). */
  providerCode?: string;
}

/** The upstream answered with an error, or could not be reached. */
export class UpstreamError extends SluiceError {
  static override readonly brand: string = 'UpstreamError';
  readonly status: number | undefined;
  readonly headers: Record<string, string> | undefined;
  readonly providerCode: string | undefined;

  constructor(code: string, message: string, options: UpstreamErrorOptions = {}) {
    super(code, message, options);
    this.status = options.status;
    this.headers = options.headers;
    this.providerCode = options.providerCode;
  }
}

/** 400: the request is malformed. Final: sending it again, anywhere, gets the same answer. */
export class BadRequestError extends UpstreamError {
  static override readonly brand: string = 'BadRequestError';
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super('BAD_REQUEST', message, { status: 400, final: true, ...options });
  }
}

/** 400 with `context_length_exceeded`: the prompt does not fit the model's window. */
export class ContextLengthError extends UpstreamError {
  static override readonly brand: string = 'ContextLengthError';
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super('CONTEXT_LENGTH_EXCEEDED', message, { status: 400, ...options });
  }
}

/** 401 or 403: the key is wrong or lacks permission. Final. */
export class AuthError extends UpstreamError {
  static override readonly brand: string = 'AuthError';
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super(options.status === 403 ? 'PERMISSION_DENIED' : 'AUTHENTICATION', message, { final: true, ...options });
  }
}

/** 429: the provider's rate limit; `retryAfterMs` says how long to wait, when it said. */
export class RateLimitError extends UpstreamError {
  static override readonly brand: string = 'RateLimitError';
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super('RATE_LIMITED', message, { status: 429, retryable: true, ...options });
  }
}

const statusCodes: Record<number, [code: string, retryable: boolean, final: boolean]> = {
  404: ['NOT_FOUND', false, false],
  408: ['REQUEST_TIMEOUT', true, false],
  409: ['CONFLICT', true, false],
  413: ['PAYLOAD_TOO_LARGE', false, false],
  422: ['UNPROCESSABLE_ENTITY', false, true],
};

/**
 * Any other 4xx answer: 404 `NOT_FOUND`, 408 `REQUEST_TIMEOUT` and 409
 * `CONFLICT` (both retryable, as openai-node treats them), 413
 * `PAYLOAD_TOO_LARGE`, 422 `UNPROCESSABLE_ENTITY` (final), else `HTTP_ERROR`.
 */
export class StatusError extends UpstreamError {
  static override readonly brand: string = 'StatusError';
  constructor(status: number, message: string, options: UpstreamErrorOptions = {}) {
    const [code, retryable, final] = statusCodes[status] ?? ['HTTP_ERROR', false, false];
    super(code, message, { retryable, final, ...options, status });
  }
}

/** 5xx: the provider failed. Retryable, and an upstream fault. */
export class ServerError extends UpstreamError {
  static override readonly brand: string = 'ServerError';
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super('SERVER_ERROR', message, { retryable: true, upstreamFault: true, ...options });
  }
}

/** The connection was refused, reset or closed before a response was complete. */
export class ConnectionError extends UpstreamError {
  static override readonly brand: string = 'ConnectionError';
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super('CONNECTION', message, { retryable: true, upstreamFault: true, ...options });
  }
}

/** Which limit a {@link TimeoutError} hit. */
export type TimeoutPhase = 'connect' | 'first-byte' | 'idle' | 'attempt';

/**
 * One attempt took too long: connecting, waiting for the first byte, idle
 * between stream events, or the per-attempt limit. Retryable, and an
 * upstream fault. The whole call's deadline is a {@link DeadlineError}.
 */
export class TimeoutError extends UpstreamError {
  static override readonly brand: string = 'TimeoutError';
  constructor(
    readonly phase: TimeoutPhase,
    readonly timeoutMs: number,
    options: UpstreamErrorOptions = {},
  ) {
    super('TIMEOUT', `${phase} timeout after ${timeoutMs} ms`, { retryable: true, upstreamFault: true, ...options });
  }
}

/**
 * The call's own deadline (`timeoutMs`) passed. Final: the caller's time
 * is up, which says nothing about the upstream.
 */
export class DeadlineError extends SluiceError {
  static override readonly brand: string = 'DeadlineError';
  constructor(
    readonly timeoutMs: number,
    options: SluiceErrorOptions = {},
  ) {
    super('DEADLINE_EXCEEDED', `the call's ${timeoutMs} ms deadline passed`, { final: true, httpStatus: 504, ...options });
  }
}

/** The pipeline was closed: the call was refused, or ended by `close()`. Final. */
export class ClosedError extends SluiceError {
  static override readonly brand: string = 'ClosedError';
  constructor(message = 'The pipeline is closed', options: SluiceErrorOptions = {}) {
    super('CLOSED', message, { final: true, httpStatus: 503, ...options });
  }
}

/**
 * A store (shared state: limits, circuits, budgets) failed and the
 * middleware's policy is to refuse the call (`onStoreError: 'closed'`).
 * Retryable: the store may be back soon.
 */
export class StoreError extends SluiceError {
  static override readonly brand: string = 'StoreError';
  /**
   * @param middleware - whose state it was (`breaker`, `ratelimit`, `cost`)
   * @param message - what failed
   * @param options - the store's own error as `cause`
   */
  constructor(
    readonly middleware: string,
    message: string,
    options: SluiceErrorOptions = {},
  ) {
    super('STORE_UNAVAILABLE', message, { retryable: true, httpStatus: 503, ...options });
  }
}

/** The caller aborted (their `signal`, or `break` out of a stream). Final. */
export class AbortError extends SluiceError {
  static override readonly brand: string = 'AbortError';
  constructor(message = 'The call was aborted', options: SluiceErrorOptions = {}) {
    super('ABORTED', message, { final: true, httpStatus: 499, ...options });
  }
}

/** The upstream's answer could not be understood: not JSON, HTML, broken SSE. An upstream fault. */
export class MalformedResponseError extends UpstreamError {
  static override readonly brand: string = 'MalformedResponseError';
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super('MALFORMED_RESPONSE', message, { upstreamFault: true, ...options });
  }
}

/**
 * The upstream's body, or one of its stream events, was larger than
 * `maxResponseBytes`: read no further, so a runaway upstream cannot fill
 * memory. An upstream fault; not retryable (the same request would likely
 * get the same answer).
 */
export class ResponseTooLargeError extends UpstreamError {
  static override readonly brand: string = 'ResponseTooLargeError';
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super('RESPONSE_TOO_LARGE', message, { upstreamFault: true, ...options });
  }
}

/** A stream ended without `[DONE]` or its connection broke after chunks were sent. */
export class StreamCutError extends UpstreamError {
  static override readonly brand: string = 'StreamCutError';
  constructor(
    message: string,
    readonly chunksReceived: number,
    options: UpstreamErrorOptions = {},
  ) {
    super('STREAM_CUT', message, { retryable: true, upstreamFault: true, ...options });
  }
}

/** An error this library did not expect; wraps it so callers always see a SluiceError. */
export class UnexpectedError extends SluiceError {
  static override readonly brand: string = 'UnexpectedError';
  constructor(cause: unknown) {
    super('UNEXPECTED', cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/** Wraps anything thrown into a SluiceError, keeping SluiceErrors as they are. */
export function toSluiceError(error: unknown): SluiceError {
  return error instanceof SluiceError ? error : new UnexpectedError(error);
}
