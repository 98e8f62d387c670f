import type { Agent, Dispatcher } from 'undici';
import { Attempt, DeadlineQueues } from './attempt.js';
import type { CompletionContext } from './context.js';
import { readAnswer } from './read-answer.js';
import { type AnswerHead, type AnswerHeadListener, UndiciAnswer } from './undici-answer.js';
import type { TextCodec } from './text-codec.js';
import type { Transport } from './transport.js';
import { type TransportConfig, requestBody } from './transport-config.js';
import { errorFromNetwork, redactHeaders } from './upstream-errors.js';

/*
 * undici and the Node built-ins are reached at run time, through
 * `process.getBuiltinModule` and a `require` made from it, never through an
 * import: importing core then loads none of them, and no bundler follows
 * them into a bundle for the web or workers. On Node (>= 20.16, which the
 * engines field already requires) they load synchronously, at the first
 * `openAICompatible()`, so nothing about the Node path changes.
 */
interface NodeModules {
  undici: typeof import('undici');
  isIP: (input: string) => number;
  StringDecoder: new (encoding: 'utf8') => { write(bytes: Uint8Array): string };
}

let nodeModules: NodeModules | null | undefined;

/** undici and the two built-ins the transport uses, or `null` where they cannot be loaded. */
export function loadNodeModules(): NodeModules | null {
  if (nodeModules !== undefined) return nodeModules;
  nodeModules = null;
  const getBuiltin = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  if (typeof getBuiltin !== 'function') return null;
  try {
    const { createRequire } = getBuiltin('node:module') as typeof import('node:module');
    // __filename in the CommonJS build, import.meta.url in the ES module one.
    const require = createRequire(typeof __filename === 'string' ? __filename : import.meta.url);
    nodeModules = {
      undici: require('undici') as typeof import('undici'),
      isIP: (getBuiltin('node:net') as typeof import('node:net')).isIP,
      StringDecoder: (getBuiltin('node:string_decoder') as typeof import('node:string_decoder')).StringDecoder as NodeModules['StringDecoder'],
    };
  } catch {
    nodeModules = null;
  }
  return nodeModules;
}

/**
 * Node's codec: a StringDecoder costs less to make than a TextDecoder, and
 * Buffer joins parts without copies. Unlike a TextDecoder, neither drops a
 * leading byte order mark, which the SSE and JSON specs both ignore: kept,
 * it made a JSON body unparseable and the first event of a stream an
 * unknown field, lost (the fetch transport's TextDecoder always dropped it).
 */
function nodeCodec(StringDecoder: NodeModules['StringDecoder']): TextCodec {
  return {
    decoder: () => new BomlessDecoder(new StringDecoder('utf8')),
    text: (parts, size) => withoutBom(parts.length === 1 ? (parts[0] as Buffer).toString('utf8') : Buffer.concat(parts, size).toString('utf8')),
  };
}

/** A UTF-8 byte order mark, decoded. */
const bom = 0xfeff;

function withoutBom(text: string): string {
  return text.charCodeAt(0) === bom ? text.slice(1) : text;
}

/** A stream's decoder that drops a byte order mark at the very start of the text. */
class BomlessDecoder {
  private started = false;

  constructor(private readonly decoder: { write(bytes: Uint8Array): string }) {}

  write(bytes: Uint8Array): string {
    const text = this.decoder.write(bytes);
    if (this.started || text.length === 0) return text;
    this.started = true;
    return withoutBom(text);
  }
}

/** What every exchange of one transport reads its answer with. */
interface ExchangeConfig {
  config: TransportConfig;
  codec: TextCodec;
  parseHeaders: (raw: Buffer[]) => AnswerHead['headers'];
}

/**
 * One request's exchange with undici: `settled` settles once the answer's
 * head has been read into the call (or failed), as `send` promises.
 */
class Exchange implements AnswerHeadListener {
  readonly settled: Promise<void>;
  readonly answer: UndiciAnswer;
  private resolve!: (reading: Promise<void> | PromiseLike<void>) => void;
  private reject!: (error: unknown) => void;
  private head: AnswerHead | undefined;

  constructor(
    private readonly ctx: CompletionContext,
    private readonly attempt: Attempt,
    private readonly callerAskedUsage: boolean,
    private readonly reading: ExchangeConfig,
  ) {
    this.settled = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.answer = new UndiciAnswer(attempt.signal, reading.parseHeaders, this);
  }

  answerHeaded(head: AnswerHead): void {
    // The answer is read a turn later, as a `then` on the head would: not
    // inside undici's own onHeaders. Resolving with this object (a
    // thenable) has the runtime call `then` below in its own microtask.
    this.head = head;
    this.resolve(this as unknown as PromiseLike<void>);
  }

  answerFailed(error: unknown): void {
    this.reject(this.failure(error));
  }

  /** What the call fails with when no answer came: the attempt's timeout or abort, else the network's error. */
  failure(error: unknown): unknown {
    this.attempt.done();
    return this.attempt.reason() ?? errorFromNetwork(error, this.reading.config.connectTimeoutMs, this.reading.config.secrets);
  }

  /** Called once, by the runtime, a turn after the head came: reads the answer into the call. Internal. */
  then(resolve: (reading: Promise<void>) => void, reject: (error: unknown) => void): void {
    const { ctx, attempt, answer, reading } = this;
    const head = this.head as AnswerHead;
    this.head = undefined;
    try {
      const { config, codec } = reading;
      resolve(
        readAnswer(
          ctx,
          attempt,
          { status: head.status, headers: flattenHeaders(head.headers, config.secrets), body: answer, text: () => answer.text(codec.text) },
          config,
          this.callerAskedUsage,
          codec,
        ),
      );
    } catch (error) {
      reject(error);
    }
  }
}

/** What a transport adds to a config: its send and its pool's lifetime. */
export type TransportParts = Pick<Transport, 'send' | 'close' | 'destroy'>;

/**
 * The undici half of `openAICompatible` on Node: a keep-alive pool of
 * `connections` per origin, the connect timeout, and DNS answers cached.
 *
 * @param config - the checked options
 * @param modules - undici and the built-ins, from {@link loadNodeModules}
 */
export function undiciParts(config: TransportConfig, modules: NodeModules): TransportParts {
  const { Agent, Client, Pool, interceptors, util } = modules.undici;
  const parseHeaders = util.parseHeaders as (raw: Buffer[]) => AnswerHead['headers'];
  const codec = nodeCodec(modules.StringDecoder);
  const isIP = modules.isIP;
  const { origin, basePath, connectTimeoutMs, firstByteTimeoutMs, attemptTimeoutMs } = config;
  // undici's dispatcher decodes no content coding, and a request with no Accept-Encoding accepts
  // any (RFC 9110): a server or proxy that then gzipped its answer made it MALFORMED_RESPONSE.
  // Asking for identity is free; a caller's own accept-encoding (with a dispatcher that decodes) stays.
  const identity = (headers: Record<string, string>) =>
    Object.keys(headers).some((name) => name.toLowerCase() === 'accept-encoding') ? headers : { ...headers, 'accept-encoding': 'identity' };
  const jsonHeaders = identity(config.jsonHeaders);
  const streamHeaders = identity(config.streamHeaders);
  // Every pool the agent made. The agent's close() forgets its pools before they have closed, so
  // its destroy() after a close that did not finish in time (what a pipeline's close does) would
  // reach none of the connections the close is still waiting on.
  const pools = new Set<Dispatcher>();
  const ownAgent = config.dispatcher
    ? undefined
    : new Agent({
        connections: config.connections,
        connect: { timeout: connectTimeoutMs },
        // Our own timers (on the call's clock) enforce these.
        headersTimeout: 0,
        bodyTimeout: 0,
        // undici's own default, kept track of.
        factory: (poolOrigin: string | URL, options: object) => {
          const pool: Dispatcher =
            (options as { connections?: number }).connections === 1 ? new Client(poolOrigin, options) : new Pool(poolOrigin, options);
          pools.add(pool);
          return pool;
        },
      });
  // An IP literal (a local vLLM, the mock upstream) has nothing to resolve.
  const cacheDns = config.dnsCache && isIP(config.url.hostname.replace(/^\[|\]$/g, '')) === 0;
  const dispatcher: Dispatcher =
    config.dispatcher ?? (cacheDns ? (ownAgent as Agent).compose(interceptors.dns()) : (ownAgent as Agent));
  const path = `${basePath}/chat/completions${config.query}`;
  let closing: Promise<void> | undefined;
  const deadlines = new DeadlineQueues();

  const reading: ExchangeConfig = { config, codec, parseHeaders };

  // Not async, and no closure of its own: a call waits for the upstream's
  // headers here for most of its life, and what it holds meanwhile (an
  // async frame, a `then` with its handlers and their context) every call
  // in flight holds, and the collector copies.
  function send(ctx: CompletionContext): Promise<void> {
    let exchange: Exchange;
    let body: string;
    try {
      let callerAskedUsage: boolean;
      ({ body, callerAskedUsage } = requestBody(ctx, config.includeUsage));
      exchange = new Exchange(ctx, new Attempt(ctx, deadlines.of(ctx.clock), firstByteTimeoutMs, attemptTimeoutMs), callerAskedUsage, reading);
    } catch (error) {
      return Promise.reject(error);
    }
    try {
      dispatcher.dispatch({ origin, path, method: 'POST', headers: ctx.stream ? streamHeaders : jsonHeaders, body }, exchange.answer);
    } catch (error) {
      return Promise.reject(exchange.failure(error));
    }
    return exchange.settled;
  }
  return {
    send,
    close() {
      closing ??= ownAgent?.close() ?? Promise.resolve();
      return closing;
    },
    async destroy() {
      await Promise.all([ownAgent?.destroy(), ...[...pools].map((pool) => pool.destroy())]);
    },
  };
}

/** Response headers as one lowercased string each, with any echoed secret masked. */
function flattenHeaders(headers: AnswerHead['headers'], secrets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  let suspect = false;
  // `for…in` over undici's plain object of parsed headers: `Object.entries` made an array per header and one for all, on every response.
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || !Object.hasOwn(headers, name)) continue;
    const flat = Array.isArray(value) ? value.join(', ') : value;
    out[name.toLowerCase()] = flat;
    // Checked in the same pass: this runs on every response.
    for (let i = 0; !suspect && i < secrets.length; i++) suspect = flat.includes(secrets[i] as string) || flat.includes('Bearer');
  }
  return suspect ? redactHeaders(out, secrets) : out;
}
