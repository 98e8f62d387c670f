/**
 * Recent times to first chunk, in process: an EWMA per deployment for
 * `latency` routing and a ring of the latest samples for the hedge's
 * percentile delay. Kept per instance on purpose: latency is what this
 * process sees of an upstream, and sharing it would cost a store write
 * on every call.
 */
export class LatencyTracker {
  private readonly ewma = new Map<string, number>();
  private readonly ring: number[] = [];
  private next = 0;
  private sorted: number[] | undefined;
  private sinceSort = 0;

  /**
   * @param alpha - the weight of a new sample in the EWMA
   * @param size - how many recent samples the percentile is taken over
   */
  constructor(
    private readonly alpha = 0.3,
    private readonly size = 256,
  ) {}

  /** Records one time to first chunk. */
  observe(deployment: string, ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    const previous = this.ewma.get(deployment);
    this.ewma.set(deployment, previous === undefined ? ms : previous + this.alpha * (ms - previous));
    if (this.ring.length < this.size) this.ring.push(ms);
    else this.ring[this.next] = ms;
    this.next = (this.next + 1) % this.size;
    this.sinceSort++;
  }

  /** The deployment's EWMA, or undefined before its first sample (so it gets tried). */
  of(deployment: string): number | undefined {
    return this.ewma.get(deployment);
  }

  /** The `p` percentile (0–1) of recent samples, or undefined with fewer than `minSamples`. */
  percentile(p: number, minSamples = 20): number | undefined {
    if (this.ring.length < minSamples) return undefined;
    // Re-sorted every 16 samples: the delay moves slowly, and sorting 256 numbers on every call would not.
    if (!this.sorted || this.sinceSort >= 16) {
      this.sorted = [...this.ring].sort((a, b) => a - b);
      this.sinceSort = 0;
    }
    const index = Math.min(this.sorted.length - 1, Math.max(0, Math.ceil(p * this.sorted.length) - 1));
    return this.sorted[index];
  }
}
