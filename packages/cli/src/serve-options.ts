import { parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';
import { batchConfigSchema } from './options.js';

const positiveMs = z.number().check(z.positive());
const envName = z.string().check(z.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'));

/** One virtual API key: the key itself or the variable holding it, and the tenant it stands for. */
const keySchema = z.union([
  z.strictObject({ key: z.string().check(z.minLength(16, 'must be at least 16 characters')), tenant: z.string().check(z.minLength(1)) }),
  z.strictObject({ keyEnv: envName, tenant: z.string().check(z.minLength(1)) }),
]);

/**
 * What `sluice serve` takes, from a JSON config file: where the upstream
 * is, the virtual keys clients present, the server's limits, and the
 * pipeline options `sluice batch` takes (a `budget`, `rpm` and `tpm` are
 * kept per tenant here). Unknown keys are errors with a "did you mean".
 */
export const serveConfigSchema = z
  .extend(
    // No concurrency cap: the server's clients decide how many calls they make (rpm and tpm bound them per tenant).
    z.omit(batchConfigSchema, { baseUrl: true, apiKeyEnv: true, progressIntervalMs: true, timeoutMs: true, concurrency: true }),
    {
      /** The real endpoint and the variable holding its key; the key never leaves the server. */
      upstream: z.optional(
        z.strictObject({
          baseUrl: z.optional(z.url({ protocol: /^https?$/ })),
          apiKeyEnv: z.optional(envName),
          /** Connections kept open to the upstream (to each deployment's); requests beyond them wait for one. Default 128. */
          connections: z._default(z.number().check(z.int(), z.positive(), z.maximum(10_000)), 128),
        }),
      ),
      /**
       * Each request's deadline in ms, retries and waits included, when the
       * client sends no `x-sluice-timeout-ms` header. Default: none (the
       * transport's own timeouts). A call past its deadline is answered 504.
       */
      timeoutMs: z.optional(positiveMs),
      /** The longest deadline a client may ask for with `x-sluice-timeout-ms`; longer ones are cut to it. Default: no bound. */
      maxTimeoutMs: z.optional(positiveMs),
      /**
       * Answer `GET /health` (and `/healthz`) without a key, with
       * `{ "status": "ok" }` alone: a liveness probe for a load balancer or
       * an orchestrator. The circuits stay behind a key. Default false.
       */
      publicHealth: z._default(z.boolean(), false),
      /** The keys clients present (`Authorization: Bearer …`), each mapped to a tenant. */
      keys: z._default(z.array(keySchema), []),
      /** Answer requests without a valid key (as the tenant `anonymous`). Default false. */
      allowAnonymous: z._default(z.boolean(), false),
      /** Largest request body in bytes; more is answered 413. Default 1 MiB. */
      maxBodyBytes: z._default(z.number().check(z.int(), z.positive()), 1 << 20),
      /** The port to listen on; 0 picks a free one (the URL is printed). Default 8787. */
      port: z._default(z.number().check(z.int(), z.minimum(0), z.maximum(65_535)), 8787),
      /** The interface to listen on. Default 127.0.0.1 (this machine only). */
      host: z._default(z.string().check(z.minLength(1)), '127.0.0.1'),
      /** The models `/v1/models` lists and `/health` reports; when given, other models are refused. */
      models: z.optional(z.array(z.string().check(z.minLength(1))).check(z.minLength(1))),
      /** How long a shutdown waits for requests in flight (streams included) before cutting them, in ms. Default 10 000. */
      shutdownGraceMs: z._default(z.number().check(z.nonnegative()), 10_000),
    },
  )
  .check(
    z.superRefine((config, issues) => {
      if (config.keys.length === 0 && !config.allowAnonymous) {
        issues.addIssue({ code: 'custom', path: ['keys'], message: 'give at least one key, or set allowAnonymous: true' });
      }
      if (config.deployments === undefined && config.upstream === undefined) {
        issues.addIssue({ code: 'custom', path: ['upstream'], message: 'give the upstream (or deployments)' });
      }
      if (config.deployments !== undefined && (config.upstream?.baseUrl !== undefined || config.upstream?.apiKeyEnv !== undefined)) {
        issues.addIssue({ code: 'custom', path: ['deployments'], message: 'give either upstream.baseUrl and upstream.apiKeyEnv or deployments, not both' });
      }
      if (config.routing !== undefined && config.deployments === undefined) {
        issues.addIssue({ code: 'custom', path: ['routing'], message: 'routes deployments: give deployments too' });
      }
      if (config.timeoutMs !== undefined && config.maxTimeoutMs !== undefined && config.timeoutMs > config.maxTimeoutMs) {
        issues.addIssue({ code: 'custom', path: ['timeoutMs'], message: `must not exceed maxTimeoutMs (${config.maxTimeoutMs})` });
      }
    }),
  );

/** `sluice serve`'s configuration, as written. */
export type ServeConfig = z.input<typeof serveConfigSchema>;
/** `sluice serve`'s configuration with its defaults. */
export type ResolvedServeConfig = z.output<typeof serveConfigSchema>;

/**
 * Validates a serve configuration, naming the bad field (`config.keys.0.tenant`).
 *
 * @param value - the parsed config file
 * @param name - prefix of field paths in errors
 * @throws ValidationError naming the bad field
 */
export function parseServeConfig(value: unknown, name = 'config'): ResolvedServeConfig {
  return parseOptions(serveConfigSchema, value, name);
}
