/** Small printing helpers shared by the demo's sections. */

export const heading = (title: string) => console.log(`\n\x1b[1m== ${title}\x1b[0m`);

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

export const ms = (value: number) => `${value.toFixed(1)} ms`;
