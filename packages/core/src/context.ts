import type { Clock } from './clock.js';
import type { SluiceError } from './errors.js';
import type { SettleOutcome } from './augmentable.js';
import type { SluiceEmitter } from './events.js';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Usage } from './schemas.js';
import type { SluiceState } from './augmentable.js';
import type { Store } from './store.js';


/** What a settlement listener learns once a response is completely done. */
export interface Settlement {
  outcome: SettleOutcome;
  /** Set when `outcome` is `error` (or `cancelled`, with the abort's error). */
  error: SluiceError | undefined;
  /** The usage the upstream reported, if it did. */
  usage: Usage | undefined;
  /** The completion of a non-stream call. */
  response: ChatCompletion | undefined;
  /**
   * For streams: the text that reached the caller (content, refusal and
   * tool-call arguments), so a stream cut before its usage arrived can
   * still be costed.
   */
  streamedText: string;
  /** Chunks that reached the caller. */
  chunks: number;
  stream: boolean;
  durationMs: number;
  /**
   * Whether the upstream accepted the request (a 2xx answer was read): a
   * stream cut before its first chunk was still accepted, and its prompt
   * may be billed.
   */
  accepted: boolean;
}

/** A settlement listener; an async one is awaited before the call resolves. */
export type SettleListener = (settlement: Settlement) => void | Promise<void>;

/** The transport's identity, as keyed middleware see it. Never holds credentials. */
export interface TransportInfo {
  readonly name: string;
  /** Base URL without credentials, e.g. `https://api.deepseek.com/v1`. */
  readonly origin: string;
}

/**
 * One call as it travels through the pipeline.
 *
 * @typeParam S - extra `state` keys of your own middleware
 */
export interface CompletionContext<S extends object = object> {
  /** A unique id for this call. */
  readonly id: string;
  /**
   * What will be sent. Replace it (`ctx.request = { ...ctx.request, model }`)
   * to rewrite; the caller's own object is never touched.
   */
  request: ChatCompletionRequest;
  /** Whether the caller asked for a stream (`stream()`), fixed for the call. */
  readonly stream: boolean;
  /** Set by the transport (or a middleware answering itself) for non-stream calls. */
  response: ChatCompletion | undefined;
  /** Set by the transport for stream calls; wrap it to see the chunks. */
  chunks: AsyncIterable<ChatCompletionChunk> | undefined;
  /**
   * The upstream's response headers for the current attempt (rate-limit
   * headers, request ids), set as soon as they arrive, errors included.
   */
  responseHeaders: Readonly<Record<string, string>> | undefined;
  /** Set once usage is known (non-stream: with the response; stream: at its usage chunk). */
  usage: Usage | undefined;
  /** The caller's abort combined with the call's deadline. */
  readonly signal: AbortSignal;
  /** When the call must be done, in `clock.now()` time; `undefined` if it has no deadline. */
  readonly deadline: number | undefined;
  /** Caller-supplied labels (user, tenant, feature) that keyed middleware use. */
  readonly tags: Readonly<Record<string, string>>;
  /** Middleware's own per-request data. */
  readonly state: SluiceState & S;
  readonly events: SluiceEmitter;
  readonly clock: Clock;
  readonly store: Store;
  readonly transport: TransportInfo;
  /** `clock.now()` when the call entered the pipeline. */
  readonly startedAt: number;
  /**
   * Registers `listener` for when the response is completely done: a
   * non-stream answer or error; a stream read to its end, cut, or
   * cancelled. Registered after `await next()` settled (resolved, or
   * rejected by the transport), it is bound to that response, so a
   * middleware inside `retry` hears about each attempt it saw; registered
   * before any response exists (on the way in), it hears the call's final
   * outcome. Registered after that settled, it runs at once.
   */
  onSettled(listener: SettleListener): void;
  /** Milliseconds left before the deadline (`Infinity` without one). */
  remainingMs(): number;
}

/**
 * A step of the pipeline. Koa semantics: code before `await next()` runs
 * on the way in, code after it on the way out.
 */
export type Middleware<S extends object = object> = (
  ctx: CompletionContext<S>,
  next: () => Promise<void>,
) => Promise<void>;
