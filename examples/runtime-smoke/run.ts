/**
 * Runs the smoke program (`smoke.ts`) on each runtime named on the command
 * line against one mock upstream started here, under Node:
 *
 * ```sh
 * node --import tsx --conditions=@sluice/source examples/runtime-smoke/run.ts node bun deno bundle
 * ```
 *
 * `node`, `bun` and `deno` run the TypeScript source (workspace packages
 * from their `src` through the `@sluice/source` condition); `bundle` builds
 * it with esbuild for `--platform=neutral`, fails if the bundle imports any
 * Node built-in or undici, and runs the bundle on all three. Each run must
 * print the completion and the stream, one retry (the 503 scripted first),
 * and both calls costed; the upstream must see exactly three requests.
 * bun and deno come from npm, as devDependencies of the examples.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { mockUpstream } from '@sluice/testing';

const here = fileURLToPath(new URL('.', import.meta.url));
const bin = (name: string) => join(here, '..', 'node_modules', '.bin', name);
const source = join(here, 'smoke.ts');
const condition = '@sluice/source';

/** Builds the smoke program for a neutral platform and returns the file, or throws naming the Node imports found. */
export async function neutralBundle(): Promise<string> {
  const outfile = join(mkdtempSync(join(tmpdir(), 'sluice-smoke-')), 'smoke.mjs');
  const result = await build({
    metafile: true,
    entryPoints: [source],
    bundle: true,
    platform: 'neutral',
    format: 'esm',
    target: 'es2022',
    conditions: [condition, 'import', 'default'],
    mainFields: ['module', 'main'],
    // @sluice/context's optional adapters import these only when called; a bundle that does not use them leaves them out.
    external: ['tiktoken', 'gpt-tokenizer'],
    outfile,
    logLevel: 'error',
  });
  // What went in, from esbuild's own record: no undici source, and no import left to the runtime
  // (a Node built-in would be one: on the neutral platform nothing else is external).
  const inputs = Object.keys(result.metafile.inputs);
  const undici = inputs.filter((path) => /node_modules\/(\.pnpm\/undici@[^/]+\/node_modules\/)?undici\//.test(path));
  if (undici.length > 0) throw new Error(`the neutral bundle contains undici (${undici[0]})`);
  const left = Object.values(result.metafile.outputs).flatMap((output) => output.imports.filter((entry) => entry.external).map((entry) => entry.path));
  const builtins = left.filter((path) => !['tiktoken', 'gpt-tokenizer'].includes(path));
  if (builtins.length > 0) throw new Error(`the neutral bundle imports ${[...new Set(builtins)].join(', ')}`);
  const code = readFileSync(outfile, 'utf8');
  if (/\bfrom\s*["']node:|\brequire\(["']node:/.test(code)) throw new Error('the neutral bundle imports a node: module');
  return outfile;
}

function commandFor(target: string, bundle: string | undefined): [string, string[]] {
  const file = bundle ?? source;
  const conditions = bundle ? [] : [`--conditions=${condition}`];
  if (target === 'node') return [process.execPath, bundle ? [file] : ['--import', 'tsx', ...conditions, file]];
  if (target === 'bun') return [bin('bun'), ['run', ...conditions, file]];
  if (target === 'deno') return [bin('deno'), ['run', '-A', ...(bundle ? [] : ['--sloppy-imports', `--conditions=${condition}`]), file]];
  throw new Error(`unknown runtime ${target}`);
}

function run(command: string, args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { env: { ...process.env, ...env }, timeout: 120_000, cwd: join(here, '..') }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function main(targets: string[]): Promise<void> {
  const upstream = await mockUpstream({ reply: 'Gates, locks and mills.' });
  let failed = false;
  try {
    const bundle = targets.includes('bundle') ? await neutralBundle() : undefined;
    if (bundle) console.log(`neutral bundle: ${bundle} (no Node built-in, no undici)`);
    const runs = targets.flatMap((target) => (target === 'bundle' ? ['node', 'bun', 'deno'].map((t) => [t, bundle] as const) : [[target, undefined] as const]));
    for (const [target, file] of runs) {
      upstream.reset();
      upstream.enqueue({ kind: 'status', status: 503 });
      const [command, args] = commandFor(target, file);
      const result = await run(command, args, { SLUICE_SMOKE_UPSTREAM: upstream.url, NO_COLOR: '1' });
      const label = `${target}${file ? ' (bundle)' : ''}`;
      const line = result.stdout.trim().split('\n').at(-1) ?? '';
      let report: { complete?: string; stream?: string; events?: string[]; costed?: number } = {};
      try {
        report = JSON.parse(line) as typeof report;
      } catch {
        // Reported below with the output.
      }
      const ok =
        result.code === 0 &&
        report.complete === 'Gates, locks and mills.' &&
        report.stream === 'Gates, locks and mills.' &&
        report.events?.filter((event) => event === 'retry').length === 1 &&
        report.costed === 2 &&
        upstream.requests.length === 3;
      console.log(`${ok ? 'ok  ' : 'FAIL'} ${label}: ${line || '(no output)'}; upstream saw ${upstream.requests.length} requests`);
      if (!ok) {
        failed = true;
        console.log(result.stderr.trim().split('\n').slice(-15).join('\n'));
      }
    }
  } finally {
    await upstream.close();
  }
  if (failed) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) await main(process.argv.slice(2));
