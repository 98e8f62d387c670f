import type { ChatRequestBody } from './chat-request-body.js';
import { validateRules, type FaultRule } from './fault.js';
import { checkReply } from './reply-shape.js';
import type { MockClock } from './mock-clock.js';
import type { MockReply } from './mock-reply.js';
import type { RecordedRequest } from './recorded-request.js';

/**
 * How {@link mockUpstream} behaves. Every field is optional; the defaults
 * give a fast, fault-free, deterministic upstream.
 *
 * @example
 * ```ts
 * const options: MockUpstreamOptions = {
 *   seed: 42,
 *   faults: [{ probability: 0.3, fault: { kind: 'status', status: 503 } }],
 *   reply: (body) => `You sent ${body.messages.length} messages`,
 *   headers: { 'x-ratelimit-remaining-requests': '99' },
 * };
 * ```
 */
export interface MockUpstreamOptions {
  /**
   * Seeds the generator that decides probabilistic `faults`, the only
   * randomness in the mock: the same seed and the same requests give the
   * same behaviour. Default 0.
   */
  seed?: number;
  /** Probabilistic faults, drawn once per completion request; a fault from `enqueue` wins over them. */
  faults?: readonly FaultRule[];
  /**
   * What a successful completion says: a string, a {@link MockReply}, or a
   * function of the request returning either (possibly async). Default:
   * `Echo: ` and the first 40 characters of the last user message.
   */
  reply?:
    | string
    | MockReply
    | ((body: ChatRequestBody, request: RecordedRequest) => string | MockReply | Promise<string | MockReply>);
  /** How many content chunks a streamed answer is split into. Default: about one per word. */
  chunks?: number;
  /** Milliseconds before the headers of every completion response. Default 0. */
  latencyMs?: number;
  /** Milliseconds between the SSE events of a stream. Default 0. */
  chunkDelayMs?: number;
  /** Extra headers on every response, e.g. `x-ratelimit-remaining-requests`. */
  headers?: Readonly<Record<string, string>>;
  /**
   * The timers every delay uses. Default: the global `setTimeout` and
   * `clearTimeout`, looked up at each call, so `vi.useFakeTimers()` controls them.
   */
  clock?: MockClock;
}

const knownOptions = new Set(['seed', 'faults', 'reply', 'chunks', 'latencyMs', 'chunkDelayMs', 'headers', 'clock']);

/**
 * Throws on options that cannot work, naming the field; internal.
 *
 * @param options - what {@link mockUpstream} was given
 * @throws RangeError or TypeError naming the bad field (an unknown one too)
 * @example
 * ```ts
 * validateOptions({ latencyMs: -1 }); // throws
 * ```
 */
export function validateOptions(options: MockUpstreamOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('mockUpstream: options must be an object');
  for (const field of Object.keys(options)) {
    if (!knownOptions.has(field)) {
      // The server always listens on a free port of 127.0.0.1: its URL says which.
      const advice = field === 'port' || field === 'host' ? ': the server takes a free port on 127.0.0.1; read upstream.url' : '';
      throw new TypeError(`mockUpstream: ${field} is not an option${advice}`);
    }
  }
  const { reply, headers } = options;
  if (reply !== undefined && typeof reply !== 'string' && typeof reply !== 'function' && (typeof reply !== 'object' || reply === null)) {
    throw new TypeError(`mockUpstream: reply must be a string, a MockReply or a function, got ${reply === null ? 'null' : typeof reply}`);
  }
  // A MockReply given as it is is checked now, not at the first request.
  if (typeof reply === 'object' && reply !== null) checkReply(reply, 'reply');
  if (headers !== undefined && (typeof headers !== 'object' || headers === null || Object.values(headers).some((value) => typeof value !== 'string'))) {
    throw new TypeError('mockUpstream: headers must be an object of string values');
  }
  for (const field of ['latencyMs', 'chunkDelayMs'] as const) {
    const value = options[field];
    if (value !== undefined && !(value >= 0)) throw new RangeError(`mockUpstream: ${field} must be 0 or more, got ${value}`);
  }
  if (options.chunks !== undefined && !(options.chunks >= 1)) {
    throw new RangeError(`mockUpstream: chunks must be 1 or more, got ${options.chunks}`);
  }
  if (options.seed !== undefined && !Number.isFinite(options.seed)) {
    throw new RangeError(`mockUpstream: seed must be a finite number, got ${options.seed}`);
  }
  validateRules(options.faults ?? []);
}
