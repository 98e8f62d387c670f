import type { AnomalyMetric, CostAnomalyEvent } from './events.js';
import type { AnomalyOptions } from './options.js';
import { usdAmount } from './usage-tokens.js';

/** An exponentially weighted moving average, a plain mean until `window` samples. */
class Ewma {
  mean = 0;
  count = 0;
  constructor(private readonly window: number) {}
  add(value: number): void {
    this.count++;
    // 1/count at first so the warm-up average is not dragged toward 0.
    const alpha = Math.max(2 / (this.window + 1), 1 / this.count);
    this.mean += alpha * (value - this.mean);
  }
}

interface ModelState {
  requestTokens: Ewma;
  requestUsd: Ewma;
  minuteTokens: Ewma;
  minuteUsd: Ewma;
  minute: { start: number; tokens: number; usd: number; fired: Set<AnomalyMetric> } | undefined;
  lastFired: Map<AnomalyMetric, number>;
}

const none: readonly CostAnomalyEvent[] = Object.freeze([]);

/** One settled call, as the detector sees it; internal. */
export interface Observation {
  id: string;
  model: string;
  tags: Readonly<Record<string, string>>;
  tokens: number;
  usd: number;
  now: number;
}

/**
 * Compares each call's tokens and spend, and each minute's, with rolling
 * baselines kept per model, in constant memory (a few numbers per model).
 * Per-minute baselines count only minutes that had calls, so a quiet night
 * does not make the morning look like a surge; internal.
 *
 * @example
 * ```ts
 * const detector = new AnomalyDetector({ factor: 5 });
 * for (const event of detector.observe({ id, model, tags, tokens, usd, now })) emit('cost-anomaly', event);
 * ```
 */
export class AnomalyDetector {
  private readonly models = new Map<string, ModelState>();
  /** The model observed last, which is last in `models`' order. */
  private lastModel: string | undefined;
  private readonly factor: number;
  private readonly metrics: ReadonlySet<AnomalyMetric>;

  constructor(private readonly options: AnomalyOptions = {}) {
    this.factor = options.factor ?? 5;
    this.metrics = new Set(options.metrics ?? ['tokens-per-request', 'usd-per-request', 'tokens-per-minute', 'usd-per-minute']);
  }

  observe(seen: Observation): readonly CostAnomalyEvent[] {
    // A figure that is not a number would poison the baseline for good (every later ratio NaN): left out.
    if (usdAmount(seen.usd) === undefined || usdAmount(seen.tokens) === undefined || !Number.isFinite(seen.now)) return none;
    const state = this.state(seen.model);
    // Runs on every settled call: no closure or array is made unless an event fires.
    let events: CostAnomalyEvent[] | undefined;
    const warmupRequests = this.options.warmupRequests ?? 20;
    events = this.check(events, seen, state, 'tokens-per-request', seen.tokens, state.requestTokens, warmupRequests);
    events = this.check(events, seen, state, 'usd-per-request', seen.usd, state.requestUsd, warmupRequests);
    state.requestTokens.add(seen.tokens);
    state.requestUsd.add(seen.usd);

    const minuteStart = Math.floor(seen.now / 60_000) * 60_000;
    if (state.minute && state.minute.start !== minuteStart) {
      state.minuteTokens.add(state.minute.tokens);
      state.minuteUsd.add(state.minute.usd);
      state.minute = undefined;
    }
    const minute = (state.minute ??= { start: minuteStart, tokens: 0, usd: 0, fired: new Set() });
    minute.tokens += seen.tokens;
    minute.usd += seen.usd;
    const warmupMinutes = this.options.warmupMinutes ?? 5;
    events = this.check(events, seen, state, 'tokens-per-minute', minute.tokens, state.minuteTokens, warmupMinutes);
    events = this.check(events, seen, state, 'usd-per-minute', minute.usd, state.minuteUsd, warmupMinutes);
    return events ?? none;
  }

  /** Adds `metric`'s event to `events` when `value` is past `factor` times its baseline and the metric may fire again. */
  private check(
    events: CostAnomalyEvent[] | undefined,
    seen: Observation,
    state: ModelState,
    metric: AnomalyMetric,
    value: number,
    baseline: Ewma,
    warmup: number,
  ): CostAnomalyEvent[] | undefined {
    if (!this.metrics.has(metric) || baseline.count < warmup || baseline.mean <= 0) return events;
    const ratio = value / baseline.mean;
    if (ratio < this.factor || !this.mayFire(state, metric, seen.now)) return events;
    (events ??= []).push({ id: seen.id, metric, value, baseline: baseline.mean, ratio, model: seen.model, tags: seen.tags });
    return events;
  }

  /** Per-request metrics fire at most once per cooldown, per-minute ones once a minute; claims the firing. */
  private mayFire(state: ModelState, metric: AnomalyMetric, now: number): boolean {
    if (metric === 'tokens-per-minute' || metric === 'usd-per-minute') {
      const fired = (state.minute as NonNullable<ModelState['minute']>).fired;
      if (fired.has(metric)) return false;
      fired.add(metric);
      return true;
    }
    const last = state.lastFired.get(metric);
    if (last !== undefined && now - last < (this.options.cooldownMs ?? 60_000)) return false;
    state.lastFired.set(metric, now);
    return true;
  }

  private state(model: string): ModelState {
    let state = this.models.get(model);
    if (state) {
      // The model seen last is already last in the Map's order: most calls.
      if (model === this.lastModel) return state;
      // Re-inserted so the Map's order is least recently seen first.
      this.models.delete(model);
    } else {
      const requestWindow = this.options.requestWindow ?? 50;
      const minuteWindow = this.options.minuteWindow ?? 30;
      state = {
        requestTokens: new Ewma(requestWindow),
        requestUsd: new Ewma(requestWindow),
        minuteTokens: new Ewma(minuteWindow),
        minuteUsd: new Ewma(minuteWindow),
        minute: undefined,
        lastFired: new Map(),
      };
      if (this.models.size >= (this.options.maxModels ?? 256)) {
        const oldest = this.models.keys().next().value;
        if (oldest !== undefined) this.models.delete(oldest);
      }
    }
    this.models.set(model, state);
    this.lastModel = model;
    return state;
  }
}
