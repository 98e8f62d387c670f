// Runs the real `sluice` binary from source in a child process, as a user would.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const bin = fileURLToPath(new URL('./bin.ts', import.meta.url));

/** A running `sluice`, and how it ended. */
export interface SluiceRun {
  child: ChildProcess;
  /** Resolves when it exits, with its exit code and everything it printed. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/**
 * Starts `sluice <args>` (bin.ts through tsx with the source condition, so
 * no build is needed) with `env` on top of a minimal environment.
 *
 * @param args - the arguments after `sluice`
 * @param env - extra environment variables (the API key, for one)
 */
export function spawnSluice(args: readonly string[], env: Record<string, string> = {}): SluiceRun {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@sluice/source', bin, ...args], {
    cwd: repoRoot,
    // No OPENAI_* from the developer's shell leaks into a test.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/**
 * Runs `sluice <args>` to its end.
 *
 * @param args - the arguments after `sluice`
 * @param env - extra environment variables
 */
export function runSluice(args: readonly string[], env: Record<string, string> = {}) {
  return spawnSluice(args, env).done;
}

/**
 * The base URL a `sluice serve` run prints once it listens; rejects if it exits first.
 *
 * @param run - a run of `sluice serve`
 */
export function listening(run: SluiceRun): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let seen = '';
    run.child.stdout?.on('data', (text: string) => {
      seen += text;
      const found = /listening on (http:\/\/\S+)/.exec(seen);
      if (found) resolve(found[1] as string);
    });
    run.done.then((end) => reject(new Error(`serve exited ${end.code}: ${end.stderr}`)), reject);
  });
}
