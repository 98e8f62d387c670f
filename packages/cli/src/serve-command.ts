import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Pipeline, ValidationError } from '@sluice/core';
import { apiKeys } from './api-keys.js';
import type { CommandIo } from './batch-command.js';
import { buildPipelineParts } from './build-pipeline.js';
import { buildRoutedPipeline } from './routed-pipeline.js';
import { sharedStore } from './shared-store.js';
import { parseServeConfig } from './serve-options.js';
import { serveHandler } from './serve-handler.js';
import { answerClientError } from './node-http.js';
import { readConfigFile } from './read-config.js';
import { reportProblems } from './report-problems.js';

/**
 * `sluice serve --config <file>`: an OpenAI-compatible server in front of
 * the configured pipeline, until `io.signal` aborts (SIGTERM, Ctrl-C).
 * Then it stops accepting connections, lets requests in flight (streams
 * included) finish for up to `shutdownGraceMs`, cuts what is left, and
 * resolves 0. Prints `listening on <url>` to stdout once it listens.
 *
 * @param configPath - the JSON config file
 * @param overrides - `port` and `host` from flags, over the file's
 * @param io - streams, environment, stop signal
 * @returns the exit code
 * @throws ValidationError naming a bad option, an unset key variable, or a port it cannot listen on
 */
export async function serveCommand(configPath: string, overrides: { port?: number; host?: string }, io: CommandIo): Promise<number> {
  const file = readConfigFile(configPath);
  const merged = typeof file === 'object' && file !== null ? { ...file, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) } : file;
  const config = parseServeConfig(merged);
  const { upstream, keys, allowAnonymous, maxBodyBytes, port, host, models, shutdownGraceMs, timeoutMs, maxTimeoutMs, publicHealth, deployments, routing, store, ...pipelineOptions } = config;
  const tenantOf = apiKeys(keys, io.env);
  const connections = upstream?.connections ?? 128;
  // Limits, budgets and circuits shared with every other process on the same Redis, when the config names one.
  const shared = await sharedStore(store, io.env);
  try {
    let handler: ReturnType<typeof serveHandler>;
    let pipeline: Pipeline;
    const common = { tenantOf, allowAnonymous, maxBodyBytes, publicHealth, deadline: { timeoutMs, maxTimeoutMs } };
    if (deployments !== undefined) {
      // Several upstreams behind the router: each deployment's circuit is reported, and the models are the groups they serve.
      const routed = buildRoutedPipeline({ ...pipelineOptions, routing, deployments }, io.env, {
        limitKey: { tag: 'tenant' },
        costTracking: 'when-used',
        keepRawJson: true,
        connections,
        shared: shared.pipeline,
      });
      pipeline = routed.pipeline;
      handler = serveHandler({ ...common, pipeline, models: models ?? routed.models, circuit: undefined, origin: '', deployments: routed.circuits });
    } else {
      const built = buildPipelineParts(
        {
          ...pipelineOptions,
          ...(upstream?.baseUrl ? { baseUrl: upstream.baseUrl } : {}),
          ...(upstream?.apiKeyEnv ? { apiKeyEnv: upstream.apiKeyEnv } : {}),
          // Sizes the upstream connection pool: a server's calls in flight are its clients', not a batch's ten.
          concurrency: connections,
        },
        io.env,
        { tag: 'tenant' },
        // Costing a call nobody records or refuses is CPU for nothing: the budget prices its own calls.
        'when-used',
        // Answers the check left as parsed are forwarded as the upstream's text, not serialised again.
        true,
        shared.pipeline,
      );
      pipeline = built.pipeline;
      handler = serveHandler({ ...common, pipeline, models, circuit: built.circuit, origin: built.origin });
    }
    // A ledger that cannot be written or a store that fails would otherwise go unseen: each kind once.
    const problems = reportProblems(pipeline.events, io.stderr, 'sluice serve');
    const server = createServer(handler.listener);
    server.on('clientError', answerClientError);
    if (io.signal?.aborted) return 0;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
    } catch (error) {
      await pipeline.close({ graceMs: 0 }).catch(() => {});
      throw new ValidationError('port', `cannot listen on ${host}:${port} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    const address = server.address() as AddressInfo;
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    io.stdout.write(`sluice serve: listening on http://${shown}:${address.port}/v1\n`);
    if (allowAnonymous) io.stderr.write('sluice serve: allowAnonymous is on: requests without a key are served\n');

    await new Promise<void>((resolve) => {
      if (!io.signal) return;
      if (io.signal.aborted) resolve();
      io.signal.addEventListener('abort', () => resolve(), { once: true });
    });

    io.stderr.write(`sluice serve: stopping: ${handler.inFlight()} request(s) in flight, waiting up to ${shutdownGraceMs} ms\n`);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // A keep-alive connection that goes idle after its last answer closes too.
    // Prepended: the handler may answer synchronously, and headers cannot change once sent.
    server.prependListener('request', (_request, target) => target.setHeader('connection', 'close'));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, shutdownGraceMs)));
    await Promise.race([handler.idle(), graceOver]);
    clearTimeout(timer);
    const cut = handler.inFlight();
    await pipeline.close({ graceMs: 0 }).catch(() => {});
    server.closeAllConnections();
    await closed;
    io.stderr.write(cut > 0 ? `sluice serve: stopped, ${cut} request(s) cut after the grace period\n` : 'sluice serve: stopped, every request answered\n');
    problems.finish();
    return 0;
  } finally {
    await shared.close();
  }
}
