#!/usr/bin/env node
import { main } from './main.js';

// The first Ctrl-C stops the batch cleanly (every answered line is already
// on disk); a second one quits at once, losing only requests in flight.
const stop = new AbortController();
process.on('SIGINT', () => {
  if (stop.signal.aborted) process.exit(130);
  stop.abort(new Error('interrupted'));
});
process.on('SIGTERM', () => stop.abort(new Error('terminated')));

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: stop.signal }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`sluice: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
