import type { Fault } from './fault.js';

/**
 * One request the mock upstream received, recorded before any fault applies.
 *
 * @example
 * ```ts
 * const [first] = upstream.requests;
 * expect(first?.headers['authorization']).toBe('Bearer sk-test');
 * expect(first?.body).toMatchObject({ model: 'gpt-4.1' });
 * ```
 */
export interface RecordedRequest {
  /** The HTTP method, e.g. `'POST'`. */
  readonly method: string;
  /** The path and query as sent, e.g. `'/v1/chat/completions'`. */
  readonly path: string;
  /** The request headers, names lowercased, repeated values joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  /** The parsed JSON body, or the raw text when it is not JSON (`''` when there was none). */
  readonly body: unknown;
  /** When it was received, in epoch milliseconds (from the clock's `now` when it has one). */
  readonly at: number;
  /** The fault it was given (scripted or random); undefined for a normal answer or another path. */
  readonly fault: Fault | undefined;
}
