import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { SluiceError } from '@sluice/core';
import type { CommandIo } from './batch-command.js';
import type { BatchConfig } from './options.js';

const number = (value: string) => {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed)) throw new InvalidArgumentError('not a number');
  return parsed;
};
const date = (value: string) => {
  const parsed = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(parsed)) throw new InvalidArgumentError('not a date (ISO 8601 or epoch ms)');
  return parsed;
};

interface BatchFlags {
  output: string;
  config?: string;
  baseUrl?: string;
  apiKeyEnv?: string;
  concurrency?: number;
  timeoutMs?: number;
  rpm?: number;
  tpm?: number;
  attempts?: number;
  retry: boolean;
  breakerFailures?: number;
  breakerOpenMs?: number;
  breaker: boolean;
  budgetUsd?: number;
  budgetPeriod?: 'hour' | 'day' | 'month';
  trim?: boolean;
  cache?: boolean;
  prices?: string;
  unknownModel?: 'error' | 'warn' | 'free';
  ledger?: string;
  progressIntervalMs?: number;
}

/** The flags as config keys, only those given, so a config file's values stand otherwise. */
function flagsToConfig(flags: BatchFlags): BatchConfig {
  const config: BatchConfig = {
    baseUrl: flags.baseUrl,
    apiKeyEnv: flags.apiKeyEnv,
    concurrency: flags.concurrency,
    timeoutMs: flags.timeoutMs,
    rpm: flags.rpm,
    tpm: flags.tpm,
    trim: flags.trim,
    cache: flags.cache,
    prices: flags.prices,
    unknownModel: flags.unknownModel,
    ledger: flags.ledger,
    progressIntervalMs: flags.progressIntervalMs,
  };
  if (!flags.retry) config.retry = false;
  else if (flags.attempts !== undefined) config.retry = { attempts: flags.attempts };
  if (!flags.breaker) config.breaker = false;
  else if (flags.breakerFailures !== undefined || flags.breakerOpenMs !== undefined) {
    config.breaker = { ...(flags.breakerFailures === undefined ? {} : { failures: flags.breakerFailures }), ...(flags.breakerOpenMs === undefined ? {} : { openMs: flags.breakerOpenMs }) };
  }
  if (flags.budgetUsd !== undefined) config.budget = { limitUsd: flags.budgetUsd, ...(flags.budgetPeriod ? { period: flags.budgetPeriod } : {}) };
  return Object.fromEntries(Object.entries(config).filter(([, value]) => value !== undefined)) as BatchConfig;
}

/** The `sluice` program: `batch`, `serve` and `cost`. */
function program(io: CommandIo, setCode: (code: number) => void): Command {
  const root = new Command('sluice')
    .description('Run OpenAI Batch API files against any OpenAI-compatible endpoint, and project LLM spend.')
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) })
    .exitOverride()
    .showHelpAfterError();

  root
    .command('batch')
    .description('send every request of an OpenAI Batch API input file and write the output file (resumable)')
    .argument('<input>', 'requests, one JSON object a line: custom_id, method, url, body (- for stdin)')
    .requiredOption('-o, --output <file>', 'results in the Batch API output format; an existing file is resumed')
    .option('-c, --config <file>', 'a JSON config file (flags override it)')
    .option('--base-url <url>', 'OpenAI-compatible endpoint with its /v1 (default: $OPENAI_BASE_URL, else OpenAI)')
    .option('--api-key-env <name>', 'environment variable holding the API key (default OPENAI_API_KEY)')
    .option('--concurrency <n>', 'requests in flight at once (default 10)', number)
    .option('--timeout-ms <ms>', 'deadline per request, retries included', number)
    .option('--rpm <n>', 'requests per minute', number)
    .option('--tpm <n>', 'tokens per minute', number)
    .option('--attempts <n>', 'attempts per request, the first included (default 3)', number)
    .option('--no-retry', 'send each request once')
    .option('--breaker-failures <n>', 'consecutive failures that open the circuit (default 10)', number)
    .option('--breaker-open-ms <ms>', 'how long the circuit stays open (default 30000)', number)
    .option('--no-breaker', 'no circuit breaker')
    .option('--budget-usd <usd>', 'stop (resumably) before spending more than this', number)
    .addOption(new Option('--budget-period <period>', 'the budget period (default day)').choices(['hour', 'day', 'month']))
    .option('--trim', "trim each request's history to fit its model's context window")
    .option('--cache', 'answer repeated requests with temperature 0 or a seed from an in-process cache, at $0')
    .option('--prices <file>', 'JSON price overrides by model, over the built-in table')
    .addOption(new Option('--unknown-model <policy>', 'a model with no price (default warn: sent, costed $0)').choices(['warn', 'free', 'error']))
    .option('--ledger <file>', "append every call's cost to this JSONL ledger")
    .option('--progress-interval-ms <ms>', 'progress line interval when stderr is not a terminal (default 10000)', number)
    .action(async (input: string, flags: BatchFlags) => {
      // Loaded on use: `sluice cost` starts without the resilience packages.
      const { batchCommand } = await import('./batch-command.js');
      setCode(await batchCommand(input, flags.output, flagsToConfig(flags), flags.config, io));
    });

  root
    .command('serve')
    .description('an OpenAI-compatible server (/v1/chat/completions, /v1/models, /health) in front of the pipeline, with virtual keys per tenant')
    .requiredOption('-c, --config <file>', 'a JSON config file: upstream, keys, and the pipeline options of batch')
    .option('--port <n>', 'port to listen on (0: any free port; default 8787)', number)
    .option('--host <host>', 'interface to listen on (default 127.0.0.1)')
    .action(async (flags: { config: string; port?: number; host?: string }) => {
      const { serveCommand } = await import('./serve-command.js');
      setCode(await serveCommand(flags.config, { port: flags.port, host: flags.host }, io));
    });

  root
    .command('cost')
    .description("project spend per model (the original write-up's comparison), or summarise a cost ledger file")
    .option('--requests-per-day <n>', 'requests a day (default 10000)', number, 10_000)
    .option('--input-tokens <n>', 'prompt tokens per request (default 3000)', number, 3_000)
    .option('--output-tokens <n>', 'output tokens per request (default 800)', number, 800)
    .option('--cached-input-tokens <n>', 'of the prompt tokens, how many the cache serves', number)
    .option('--models <list>', 'comma-separated models (default: every model of the table)', (value: string) => value.split(',').map((s) => s.trim()).filter(Boolean))
    .option('--original', "the original write-up's four models at its prices")
    .option('--prices <file>', 'JSON price overrides by model, over the built-in table')
    .option('--days-per-month <n>', 'days in a month (default 30)', number)
    .option('--currency <code>', 'ISO 4217 currency to print in (needs --rate)')
    .option('--rate <n>', 'units of --currency per US dollar', number)
    .option('--ledger <file>', 'summarise this JSONL cost ledger instead (written by sluice batch --ledger)')
    .option('--by <grouping>', 'ledger grouping: model, hour, day, month, total or tag:<name> (default model)', 'model')
    .option('--since <date>', 'ledger: from this time (ISO 8601 or epoch ms)', date)
    .option('--until <date>', 'ledger: until this time, exclusive', date)
    .action(async (flags: {
      requestsPerDay: number; inputTokens: number; outputTokens: number; cachedInputTokens?: number; models?: string[];
      original?: boolean; prices?: string; daysPerMonth?: number; currency?: string; rate?: number;
      ledger?: string; by: string; since?: number; until?: number;
    }) => {
      const { ledgerReport, parseGrouping, projectionReport } = await import('./cost-report.js');
      if (flags.ledger !== undefined) {
        const { text, skipped } = await ledgerReport(flags.ledger, parseGrouping(flags.by), {
          ...(flags.since === undefined ? {} : { since: flags.since }),
          ...(flags.until === undefined ? {} : { until: flags.until }),
        });
        for (const line of skipped) io.stderr.write(`${flags.ledger}:${line}: skipped: not a cost record\n`);
        io.stdout.write(`${text}\n`);
        return;
      }
      const rows = projectionReport({
        requestsPerDay: flags.requestsPerDay,
        inputTokens: flags.inputTokens,
        outputTokens: flags.outputTokens,
        ...(flags.cachedInputTokens === undefined ? {} : { cachedInputTokens: flags.cachedInputTokens }),
        ...(flags.models ? { models: flags.models } : {}),
        original: flags.original === true,
        prices: (await import('./load-prices.js')).loadPrices(flags.prices),
        ...(flags.daysPerMonth === undefined ? {} : { daysPerMonth: flags.daysPerMonth }),
        ...(flags.currency === undefined ? {} : { currency: flags.currency }),
        ...(flags.rate === undefined ? {} : { rate: flags.rate }),
      });
      io.stdout.write(`${rows}\n`);
    });
  return root;
}

/**
 * Runs the `sluice` command line and resolves to its exit code: 0 done,
 * 1 a bad option or file (named in the message), 2 bad usage, 3 a batch
 * stopped by its budget, 130 a batch interrupted by Ctrl-C (a server
 * stopped by a signal exits 0 once drained).
 *
 * @param argv - the arguments after the program name
 * @param io - streams, environment and the Ctrl-C signal
 * @example
 * ```ts
 * process.exitCode = await main(['cost', '--original'], { stdout: process.stdout, stderr: process.stderr, env: process.env });
 * ```
 */
export async function main(argv: readonly string[], io: CommandIo): Promise<number> {
  let code = 0;
  try {
    await program(io, (value) => (code = value)).parseAsync([...argv], { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 1 ? 2 : error.exitCode;
    if (error instanceof SluiceError) {
      io.stderr.write(`sluice: ${error.message}\n`);
      return 1;
    }
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'EACCES') {
      io.stderr.write(`sluice: ${(error as Error).message}\n`);
      return 1;
    }
    throw error;
  }
}
