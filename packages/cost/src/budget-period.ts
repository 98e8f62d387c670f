/** A budget period, in UTC on the pipeline's clock. */
export type BudgetPeriod = 'hour' | 'day' | 'month';

/** One period: its id (`2026-11-25`, `2026-11-25T10`, `2026-11`), start and end. */
export interface PeriodBucket {
  id: string;
  start: number;
  end: number;
}

const hourMs = 3_600_000;

/**
 * The UTC period that contains `now`; internal.
 *
 * @param period - hour, day or month
 * @param now - epoch milliseconds, from `ctx.clock.now()`
 * @example
 * ```ts
 * periodBucket('day', Date.UTC(2026, 10, 25, 10)); // { id: '2026-11-25', start: …, end: … }
 * ```
 */
export function periodBucket(period: BudgetPeriod, now: number): PeriodBucket {
  const date = new Date(now);
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth();
  const day = date.getUTCDate();
  const iso = date.toISOString();
  switch (period) {
    case 'hour': {
      const start = Math.floor(now / hourMs) * hourMs;
      return { id: iso.slice(0, 13), start, end: start + hourMs };
    }
    case 'day': {
      const start = Date.UTC(year, month, day);
      return { id: iso.slice(0, 10), start, end: Date.UTC(year, month, day + 1) };
    }
    case 'month':
      return { id: iso.slice(0, 7), start: Date.UTC(year, month, 1), end: Date.UTC(year, month + 1, 1) };
  }
}
