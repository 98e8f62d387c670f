/**
 * Recent times to first chunk, in process: an EWMA per deployment for
 * `latency` routing and a ring of the latest samples for the hedge's
 * percentile delay. Kept per instance on purpose: latency is what this
 * process sees of an upstream, and sharing it would cost a store write
 * on every call.
 */
export class LatencyTracker {
  private readonly ewma = new Map<string, number>();
  /** When each deployment's latest sample came, in clock time. */
  private readonly sampledAt = new Map<string, number>();
  private readonly ring: number[] = [];
  private next = 0;
  private sorted: number[] | undefined;
  private sinceSort = 0;

  /**
   * @param staleMs - a figure with no sample for this long is replaced by the next sample, not blended with it
   * @param alpha - the weight of a new sample in the EWMA
   * @param size - how many recent samples the percentile is taken over
   */
  constructor(
    private readonly staleMs = Infinity,
    private readonly alpha = 0.3,
    private readonly size = 256,
  ) {}

  /**
   * Records one time to first chunk.
   *
   * @param deployment - whose it is
   * @param ms - the time
   * @param now - the clock's time now, for {@link fresh}
   */
  observe(deployment: string, ms: number, now: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    // A stale figure says nothing of now: the first sample after it starts the EWMA again.
    const previous = this.fresh(deployment, now);
    this.ewma.set(deployment, previous === undefined ? ms : previous + this.alpha * (ms - previous));
    this.sampledAt.set(deployment, now);
    if (this.ring.length < this.size) this.ring.push(ms);
    else this.ring[this.next] = ms;
    this.next = (this.next + 1) % this.size;
    this.sinceSort++;
  }

  /** The deployment's EWMA while its latest sample is under `staleMs` old; undefined before its first sample or once stale. */
  fresh(deployment: string, now: number): number | undefined {
    const at = this.sampledAt.get(deployment);
    return at !== undefined && now - at < this.staleMs ? this.ewma.get(deployment) : undefined;
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
