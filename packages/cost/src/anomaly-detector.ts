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
  private readonly factor: number;
  private readonly metrics: ReadonlySet<AnomalyMetric>;

  constructor(private readonly options: AnomalyOptions = {}) {
    this.factor = options.factor ?? 5;
    this.metrics = new Set(options.metrics ?? ['tokens-per-request', 'usd-per-request', 'tokens-per-minute', 'usd-per-minute']);
  }

  observe(seen: Observation): CostAnomalyEvent[] {
    // A figure that is not a number would poison the baseline for good (every later ratio NaN): left out.
    if (usdAmount(seen.usd) === undefined || usdAmount(seen.tokens) === undefined || !Number.isFinite(seen.now)) return [];
    const state = this.state(seen.model);
    const events: CostAnomalyEvent[] = [];
    const check = (metric: AnomalyMetric, value: number, baseline: Ewma, warmup: number, canFire: () => boolean) => {
      if (!this.metrics.has(metric) || baseline.count < warmup || baseline.mean <= 0) return;
      const ratio = value / baseline.mean;
      if (ratio < this.factor || !canFire()) return;
      events.push({ id: seen.id, metric, value, baseline: baseline.mean, ratio, model: seen.model, tags: seen.tags });
    };
    const warmupRequests = this.options.warmupRequests ?? 20;
    const cooldown = (metric: AnomalyMetric) => () => {
      const last = state.lastFired.get(metric);
      if (last !== undefined && seen.now - last < (this.options.cooldownMs ?? 60_000)) return false;
      state.lastFired.set(metric, seen.now);
      return true;
    };
    check('tokens-per-request', seen.tokens, state.requestTokens, warmupRequests, cooldown('tokens-per-request'));
    check('usd-per-request', seen.usd, state.requestUsd, warmupRequests, cooldown('usd-per-request'));
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
    const onceThisMinute = (metric: AnomalyMetric) => () => !minute.fired.has(metric) && Boolean(minute.fired.add(metric));
    const warmupMinutes = this.options.warmupMinutes ?? 5;
    check('tokens-per-minute', minute.tokens, state.minuteTokens, warmupMinutes, onceThisMinute('tokens-per-minute'));
    check('usd-per-minute', minute.usd, state.minuteUsd, warmupMinutes, onceThisMinute('usd-per-minute'));
    return events;
  }

  private state(model: string): ModelState {
    let state = this.models.get(model);
    if (state) {
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
    return state;
  }
}
