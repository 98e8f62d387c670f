// What main() writes, captured in memory, for in-process command tests.
import { Writable } from 'node:stream';
import type { CommandIo } from './batch-command.js';

/** A CommandIo whose stdout and stderr are kept as text. */
export function captureIo(env: Record<string, string> = {}, signal?: AbortSignal): CommandIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const sink = (append: (text: string) => void) =>
    new Writable({
      write(chunk: Buffer | string, _encoding, done) {
        append(String(chunk));
        done();
      },
    });
  return {
    stdout: sink((text) => (out += text)),
    stderr: sink((text) => (err += text)),
    env,
    ...(signal ? { signal } : {}),
    out: () => out,
    err: () => err,
  };
}
