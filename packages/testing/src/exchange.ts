import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { MockClock } from './mock-clock.js';

/**
 * One response being written, with the waits and writes that stop the
 * moment the client goes away or the server closes; internal.
 *
 * @example
 * ```ts
 * const exchange = new Exchange(res, clock, { 'x-request-id': 'req_mock_1' });
 * if (await exchange.wait(100)) exchange.send(200, { ok: true });
 * ```
 */
export class Exchange {
  #open = true;
  readonly #cancels = new Set<() => void>();

  /**
   * @param res - the response to write
   * @param clock - what delays are scheduled with
   * @param headers - headers sent on every response of this exchange
   */
  constructor(
    readonly res: ServerResponse,
    private readonly clock: MockClock,
    private readonly headers: OutgoingHttpHeaders,
  ) {
    // 'close' fires when the response is done or the connection is gone:
    // either way, no timer of this exchange may fire or keep anything alive.
    res.once('close', () => {
      this.#open = false;
      for (const cancel of this.#cancels) cancel();
      this.#cancels.clear();
    });
  }

  /** Whether the response can still be written to. */
  get open(): boolean {
    return this.#open && !this.res.destroyed;
  }

  /** Waits `ms` on the clock; resolves `false` if the exchange ended meanwhile. */
  wait(ms: number): Promise<boolean> {
    if (ms <= 0 || !this.open) return Promise.resolve(this.open);
    return new Promise((resolve) => {
      const cancel = () => {
        this.clock.clearTimeout(handle);
        resolve(false);
      };
      const handle = this.clock.setTimeout(() => {
        this.#cancels.delete(cancel);
        resolve(this.open);
      }, ms);
      this.#cancels.add(cancel);
    });
  }

  /** Sends the status and headers, merged over this exchange's own. */
  head(status: number, headers: OutgoingHttpHeaders): void {
    this.res.writeHead(status, { ...this.headers, ...headers });
    this.res.flushHeaders();
  }

  /** Writes `data` and resolves once it is handed to the socket (or the exchange ended). */
  write(data: string): Promise<void> {
    if (!this.open) return Promise.resolve();
    return new Promise((resolve) => {
      this.#cancels.add(resolve);
      this.res.write(data, () => {
        this.#cancels.delete(resolve);
        resolve();
      });
    });
  }

  /** Resolves once everything written so far, headers included, has reached the socket. */
  flush(): Promise<void> {
    const socket = this.res.socket;
    if (!this.open || socket === null) return Promise.resolve();
    return new Promise((resolve) => {
      this.#cancels.add(resolve);
      // Writes are ordered, so an empty write's callback means all before it is out.
      socket.write('', () => {
        this.#cancels.delete(resolve);
        resolve();
      });
    });
  }

  /** Sends a whole response: an object as JSON, a string as is. */
  send(status: number, body: object | string, headers: OutgoingHttpHeaders = {}): void {
    if (!this.open) return;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    this.res.writeHead(status, {
      'content-type': 'application/json',
      ...this.headers,
      ...headers,
      'content-length': Buffer.byteLength(text),
    });
    this.res.end(text);
  }

  /** Ends the response cleanly. */
  end(): void {
    if (this.open) this.res.end();
  }

  /** Resets the TCP connection (RST), discarding anything not yet flushed. */
  reset(): void {
    const socket = this.res.socket;
    if (socket !== null && !socket.destroyed) socket.resetAndDestroy();
  }
}
