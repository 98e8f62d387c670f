/*
 * Percentiles of a million latencies in constant memory: buckets whose
 * bounds grow by 2% each, from 1 ms to about an hour (~420 buckets), so a
 * reported p50 or p99 is within 2% of the true value whatever the count.
 */
const growth = 1.02;
const logGrowth = Math.log(growth);
const bucketCount = Math.ceil(Math.log(3_600_000) / logGrowth) + 1;

/** Latency percentiles and mean in constant memory, within 2%. */
export class LatencyHistogram {
  private readonly buckets = new Float64Array(bucketCount);
  private total = 0;
  private sum = 0;

  /** Adds one latency in milliseconds (clamped to [1 ms, 1 h]). */
  add(ms: number): void {
    if (!Number.isFinite(ms)) return;
    const clamped = Math.min(Math.max(ms, 1), 3_600_000);
    const index = Math.min(bucketCount - 1, Math.floor(Math.log(clamped) / logGrowth));
    this.buckets[index] = (this.buckets[index] ?? 0) + 1;
    this.total++;
    this.sum += ms;
  }

  get count(): number {
    return this.total;
  }

  /** The mean latency, or 0 with none recorded. */
  mean(): number {
    return this.total === 0 ? 0 : this.sum / this.total;
  }

  /** The `q`-th quantile (0.5, 0.99) in milliseconds, or 0 with none recorded. */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let index = 0; index < bucketCount; index++) {
      seen += this.buckets[index] ?? 0;
      // The bucket's geometric middle: at most 1% off either of its bounds.
      if (seen >= rank) return growth ** (index + 0.5);
    }
    return growth ** bucketCount;
  }

  /** Folds another histogram into this one. */
  merge(other: LatencyHistogram): void {
    for (let index = 0; index < bucketCount; index++) this.buckets[index] = (this.buckets[index] ?? 0) + (other.buckets[index] ?? 0);
    this.total += other.total;
    this.sum += other.sum;
  }
}
