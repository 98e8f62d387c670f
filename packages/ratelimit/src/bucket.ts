/*
 * The arithmetic of one exact rate limit: a GCRA / token bucket kept as a
 * single "debt" number per key, in integers so that exactness is not at the
 * mercy of floating point.
 *
 * Units. Time is counted in `unit` milliseconds (1 ms unless limit × window
 * would overflow 2^50; then the smallest power of ten dividing the window
 * that fits). One token is worth `span` = windowMs / unit debt units, the
 * bucket holds `burst × span` of them and sheds `limit − burst` every time
 * unit, so it refills (limit − burst) tokens per window. Every product stays
 * an integer below 2^53.
 *
 * Debt ≥ 0 means the bucket holds (burst − debt / span) tokens. Negative debt
 * is idle credit: the time the bucket has sat full, down to −(limit − burst)
 * × span (one window's refill). Ordinary admissions need `debt + cost × span
 * ≤ burst × span` and throw idle credit away; a cost above `burst` can only
 * be admitted from credit, that is after the bucket sat full for
 * (cost − burst) / rate. Any window [t, t + W) therefore admits at most
 * burst + (limit − burst) = limit (see the README and bucket.test.ts).
 */

/** How one limit is declared: at most `limit` per `windowMs`, `burst` of it at once. */
export interface BucketSpec {
  limit: number;
  windowMs: number;
  burst: number;
}

/** A validated {@link BucketSpec} with its integer units. */
export interface Bucket extends BucketSpec {
  /** Milliseconds per time unit. */
  readonly unit: number;
  /** Debt units per token: `windowMs / unit`. */
  readonly span: number;
  /** Debt shed per time unit: `limit − burst`. */
  readonly rate: number;
}

const maxProduct = 2 ** 50;

/**
 * Builds the integer form of a limit, or explains why it cannot be exact.
 *
 * @param spec - limit, window and burst; integers with 0 ≤ burst < limit
 * @returns the bucket, or a string saying what is wrong
 * @example
 * ```ts
 * const bucket = createBucket({ limit: 100, windowMs: 60_000, burst: 10 });
 * ```
 */
export function createBucket(spec: BucketSpec): Bucket | string {
  const { limit, windowMs, burst } = spec;
  if (!(burst >= 0 && burst < limit)) return `burst must be at least 0 and below the limit (${limit})`;
  for (let unit = 1; unit <= windowMs; unit *= 10) {
    if (windowMs % unit !== 0) break;
    const span = windowMs / unit;
    if (limit * span <= maxProduct) return { limit, windowMs, burst, unit, span, rate: limit - burst };
  }
  return `limit × windowMs is too large to count exactly (${limit} × ${windowMs}); use a window that is a multiple of 1000 ms`;
}

/** Debt at `nowMs`, given the debt stored at `atMs`. */
export function decay(bucket: Bucket, debt: number, atMs: number, nowMs: number): number {
  const elapsed = Math.max(0, Math.floor(nowMs / bucket.unit) - Math.floor(atMs / bucket.unit));
  const floor = -bucket.rate * bucket.span;
  // For a long idle stretch the product can pass 2^53, but then the result is
  // far below the floor, so the clamp still lands exactly on it.
  return Math.max(floor, debt - bucket.rate * elapsed);
}

/** Whether `cost` can be admitted now (`debt` already decayed to now). */
export function admits(bucket: Bucket, debt: number, cost: number): boolean {
  return debt + cost * bucket.span <= bucket.burst * bucket.span;
}

/** The debt after admitting `cost`: idle credit is dropped, so no burst exceeds what the proof allows. */
export function take(bucket: Bucket, debt: number, cost: number): number {
  return Math.max(debt, 0) + cost * bucket.span;
}

/**
 * Milliseconds from `nowMs` until `cost` would be admitted, given the debt at
 * `nowMs`; 0 when it is admitted now. `cost` must not exceed the limit.
 */
export function waitMs(bucket: Bucket, debt: number, cost: number, nowMs: number): number {
  const excess = debt + cost * bucket.span - bucket.burst * bucket.span;
  if (excess <= 0) return 0;
  const units = Math.ceil(excess / bucket.rate);
  return Math.max(0, (Math.floor(nowMs / bucket.unit) + units) * bucket.unit - nowMs);
}

/**
 * The debt after a correction of `tokens` (positive: usage above the
 * reservation, charged now; negative: unused reservation given back, never
 * beyond a full bucket and never as idle credit).
 */
export function correct(bucket: Bucket, debt: number, tokens: number): number {
  if (tokens >= 0) return Math.max(debt, 0) + tokens * bucket.span;
  return debt <= 0 ? debt : Math.max(0, debt + tokens * bucket.span);
}

/** Milliseconds until the bucket is full again (0 when it is). */
export function fullInMs(bucket: Bucket, debt: number): number {
  return debt <= 0 ? 0 : Math.ceil(debt / bucket.rate) * bucket.unit;
}
