import type { BatchStats } from './batch-stats.js';
import { LatencyHistogram } from './latency-histogram.js';
import { formatDuration } from './progress.js';

const count = new Intl.NumberFormat('en-US');
const usd = (value: number) => `$${value < 1 ? value.toFixed(4) : value.toFixed(2)}`;
const ms = (value: number) => `${Math.round(value)} ms`;

/** Lays rows out as a Markdown table, the first column left-aligned, the rest right. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((cells) => (cells[column] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => (column === 0 ? `-${'-'.repeat(width)}-` : `${'-'.repeat(width + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/**
 * The end-of-run report: one row per model (requests, failures by code,
 * tokens, cost, p50/p99 latency), then the original write-up's
 * performance figures for the run (total time, average latency, success
 * rate, QPS).
 *
 * @param stats - the run's figures
 * @param elapsedMs - the run's wall time
 */
export function formatSummary(stats: BatchStats, elapsedMs: number): string {
  const models = [...stats.models.values()].sort((a, b) => b.requests - a.requests || a.model.localeCompare(b.model));
  const all = new LatencyHistogram();
  for (const model of models) all.merge(model.latency);
  const failures = (record: Record<string, number>) =>
    Object.entries(record)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([code, n]) => `${code} ${count.format(n)}`)
      .join(', ') || '-';
  const rows = models.map((m) => [
    m.model,
    count.format(m.requests),
    count.format(m.requests - m.succeeded),
    failures(m.failures),
    count.format(m.promptTokens),
    count.format(m.completionTokens),
    usd(m.usd),
    ms(m.latency.quantile(0.5)),
    ms(m.latency.quantile(0.99)),
  ]);
  const seconds = elapsedMs / 1000;
  const succeeded = stats.done - stats.failed;
  const lines = [
    table(['model', 'requests', 'failed', 'failures by code', 'input tokens', 'output tokens', 'cost', 'p50', 'p99'], rows),
    '',
    `total time      ${formatDuration(seconds)} (${seconds.toFixed(1)} s)`,
    `requests        ${count.format(stats.done)} sent, ${count.format(succeeded)} succeeded, ${count.format(stats.failed)} failed`,
    `success rate    ${stats.done === 0 ? '-' : `${((succeeded / stats.done) * 100).toFixed(2)}%`}`,
    `average latency ${ms(all.mean())} (p50 ${ms(all.quantile(0.5))}, p99 ${ms(all.quantile(0.99))})`,
    `QPS             ${(seconds > 0 ? stats.done / seconds : 0).toFixed(1)}`,
    `tokens          ${count.format(stats.tokens)}`,
    `cost            ${usd(stats.usd)}`,
  ];
  if (stats.resumed > 0) lines.push(`resumed         ${count.format(stats.resumed)} lines already in the output, skipped`);
  if (stats.malformed > 0) lines.push(`malformed       ${count.format(stats.malformed)} input lines skipped (reported above)`);
  return lines.join('\n');
}
