import type { SluiceEmitter, SluiceEvents } from '@sluice/core';

/** How many problems were reported, and the end of the report. */
export interface ProblemReport {
  /** Every problem heard, shown or not. */
  readonly count: number;
  /** Stops listening, and writes how many problems there were in all, if any. */
  finish(): void;
}

/**
 * Writes what would otherwise go unseen in a command's run to `stream`: a
 * listener that threw (a ledger that cannot be written: a full disk, a
 * file removed under it) and a store that failed (Redis away, and the
 * policy applied). Each distinct message once, so a failure on every call
 * does not bury the progress; the count says how often; internal.
 *
 * @param events - the pipeline's events
 * @param stream - where warnings go (stderr)
 * @param prefix - what each line starts with (`sluice batch`)
 */
export function reportProblems(events: SluiceEmitter, stream: NodeJS.WritableStream, prefix: string): ProblemReport {
  const shown = new Set<string>();
  let count = 0;
  const warn = (message: string) => {
    count++;
    if (shown.has(message)) return;
    shown.add(message);
    stream.write(`${prefix}: warning: ${message}\n`);
  };
  const onListenerError = (event: SluiceEvents['listener-error']) => {
    const where = event.event === undefined ? 'a settlement listener' : `a listener of '${event.event}'`;
    warn(`${where} failed: ${messageOf(event.error)}`);
  };
  const onStoreError = (event: SluiceEvents['store-error']) => {
    warn(`the ${event.name} store failed (${event.operation}, policy ${event.policy}): ${messageOf(event.error)}`);
  };
  events.on('listener-error', onListenerError);
  events.on('store-error', onStoreError);
  return {
    get count() {
      return count;
    },
    finish() {
      events.off('listener-error', onListenerError);
      events.off('store-error', onStoreError);
      if (count > 0) stream.write(`${prefix}: ${count} warning(s) in all (each kind shown once above)\n`);
    },
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
