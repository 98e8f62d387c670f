import cliProgress from 'cli-progress';
import type { BatchStats } from './batch-stats.js';

/** Where progress goes and how often. */
export interface ProgressOptions {
  stream: NodeJS.WritableStream & { isTTY?: boolean };
  /** Requests the input holds, when known (for the bar and the ETA). */
  total: number | undefined;
  stats: BatchStats;
  /** Plain lines are printed this often when the stream is not a terminal. */
  intervalMs: number;
  now?: () => number;
}

/** A running progress display. */
export interface Progress {
  /** Redraws now (the bar) or does nothing (plain lines keep their own pace). */
  tick(): void;
  /** Stops the display, printing a last plain line when not on a terminal. */
  stop(): void;
}

/** What the display shows, from the stats. */
function figures(options: ProgressOptions, startedAt: number) {
  const { stats, total } = options;
  const elapsedS = Math.max((options.now ?? Date.now)() - startedAt, 1) / 1000;
  const rate = stats.done / elapsedS;
  const left = total === undefined ? undefined : Math.max(total - stats.done - stats.resumed - stats.malformed, 0);
  const etaS = left === undefined || rate === 0 ? undefined : left / rate;
  return { rate, etaS, left };
}

/** `1h02m`, `3m05s`, `42s`. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

const count = new Intl.NumberFormat('en-US');

/**
 * The live progress of a batch: a bar (done, failed, requests/s, tokens,
 * spend, ETA) when the stream is a terminal, plain periodic lines when it
 * is not (a CI log, a file), so a log never fills with redraws.
 *
 * @param options - stream, total, stats, interval
 */
export function startProgress(options: ProgressOptions): Progress {
  const now = options.now ?? Date.now;
  const startedAt = now();
  const { stats, total } = options;
  if (options.stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: options.stream as NodeJS.WriteStream,
        format:
          total === undefined
            ? '{value} done | {failed} failed | {rate} req/s | {tokens} tokens | ${usd}'
            : '{bar} {percentage}% | {value}/{total} | {failed} failed | {rate} req/s | {tokens} tokens | ${usd} | ETA {etaText}',
        hideCursor: true,
        // Our own ETA: cli-progress's counts from 0 and would misjudge a resumed run.
        etaBuffer: 1,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    const payload = () => {
      const { rate, etaS } = figures(options, startedAt);
      return { failed: stats.failed, rate: rate.toFixed(1), tokens: count.format(stats.tokens), usd: stats.usd.toFixed(4), etaText: formatDuration(etaS) };
    };
    bar.start(total ?? 0, stats.resumed + stats.malformed, payload());
    let stopped = false;
    return {
      tick: () => {
        if (!stopped) bar.update(stats.done + stats.resumed + stats.malformed, payload());
      },
      stop: () => {
        if (stopped) return;
        stopped = true;
        bar.update(stats.done + stats.resumed + stats.malformed, payload());
        bar.stop();
      },
    };
  }
  const line = () => {
    const { rate, etaS } = figures(options, startedAt);
    const of = total === undefined ? '' : `/${count.format(total)}`;
    const eta = total === undefined ? '' : `, ETA ${formatDuration(etaS)}`;
    options.stream.write(
      `progress: ${count.format(stats.done + stats.resumed + stats.malformed)}${of} lines, ${count.format(stats.failed)} failed, ${rate.toFixed(1)} req/s, ${count.format(stats.tokens)} tokens, $${stats.usd.toFixed(4)}${eta}\n`,
    );
  };
  const timer = setInterval(line, options.intervalMs);
  // Housekeeping: the batch's own work keeps the process alive, not its progress.
  timer.unref();
  let stopped = false;
  return {
    tick: () => {},
    stop: () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      line();
    },
  };
}
