import { type CompletionContext, createEmitter, createPipeline, type Pipeline, type SluiceEmitter } from '@sluice/core';
import { abortReason, onAbort } from '@sluice/core/kit';
import { hedgeLossCost } from './hedge-loss.js';
import type { ResolvedDeployment, ResolvedOptions } from './options.js';

/**
 * The deployments' inner pipelines and what the router knows of each in
 * this process: calls in flight, and how long one that refused (open
 * circuit, 429, full limit) is passed over.
 *
 * Inner pipelines are built on a deployment's first call, on that call's
 * store and clock, so a deployment's breaker, limits and budget keep
 * their state where the outer pipeline keeps everything else. Their
 * events reach the outer pipeline's listeners, except `request` and
 * `response`, which belong to the outer call (one call, however many hops).
 */
export class DeploymentPool {
  private readonly pipelines = new WeakMap<SluiceEmitter, Map<string, Pipeline>>();
  private readonly all = new Set<Pipeline>();
  private readonly inFlight = new Map<string, number>();
  private readonly coolUntil = new Map<string, number>();
  private waiters: Array<() => void> = [];
  private readonly tagsOnly = new Map<string, Readonly<Record<string, string>>>();

  constructor(private readonly options: ResolvedOptions) {}

  /** The deployment's inner pipeline for calls of `ctx`'s pipeline. */
  pipelineFor(deployment: ResolvedDeployment, ctx: CompletionContext): Pipeline {
    let byId = this.pipelines.get(ctx.events);
    if (!byId) {
      byId = new Map();
      this.pipelines.set(ctx.events, byId);
    }
    let pipeline = byId.get(deployment.id);
    if (!pipeline) {
      pipeline = createPipeline({
        transport: deployment.transport,
        store: ctx.store,
        clock: ctx.clock,
        events: forwarding(ctx.events),
        // The outer pipeline validated the request; only the model changes.
        validateRequests: false,
      });
      for (const middleware of this.options.middleware(deployment)) pipeline = pipeline.use(middleware);
      // Only a hedged router cancels hops it would have to cost; the others skip the extra step.
      if (this.options.hedge) pipeline = pipeline.use(hedgeLossCost);
      byId.set(deployment.id, pipeline);
      this.all.add(pipeline);
    }
    return pipeline;
  }

  load(id: string): number {
    return this.inFlight.get(id) ?? 0;
  }

  isFull(deployment: ResolvedDeployment): boolean {
    return deployment.maxConcurrency !== undefined && this.load(deployment.id) >= deployment.maxConcurrency;
  }

  /**
   * Takes one of the deployment's slots; the picked deployment gives it
   * back (once). Taken in the same turn as the capacity check, so
   * concurrent calls never overfill a deployment.
   *
   * @param sticky - whether the call's sticky record chose it
   */
  acquire(deployment: ResolvedDeployment, sticky: boolean): Picked {
    this.inFlight.set(deployment.id, this.load(deployment.id) + 1);
    return new Picked(deployment, sticky, this);
  }

  /** Gives back a slot of `id` and wakes the calls waiting for one; through {@link Picked.release}. */
  giveBack(id: string): void {
    this.inFlight.set(id, this.load(id) - 1);
    const waiters = this.waiters;
    if (waiters.length === 0) return;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** The tags a hop to `deployment` carries: the outer call's and `deployment: <id>`. */
  hopTags(deployment: ResolvedDeployment, ctx: CompletionContext): Record<string, string> {
    // Most calls carry no tags: their hops share one frozen object per deployment instead of a copy each.
    for (const _ in ctx.tags) return { ...ctx.tags, deployment: deployment.id };
    let tags = this.tagsOnly.get(deployment.id);
    if (!tags) {
      tags = Object.freeze({ deployment: deployment.id });
      this.tagsOnly.set(deployment.id, tags);
    }
    return tags;
  }

  /** Passes the deployment over until `until` (clock time). */
  cool(id: string, until: number): void {
    if (until > (this.coolUntil.get(id) ?? 0)) this.coolUntil.set(id, until);
  }

  /** Whether any deployment may be cooling (some may have cooled already). */
  cooling(): boolean {
    return this.coolUntil.size > 0;
  }

  /** When the deployment may be tried again, if it is cooling at `now`. */
  coolingUntil(id: string, now: number): number | undefined {
    const until = this.coolUntil.get(id);
    if (until === undefined) return undefined;
    if (until > now) return until;
    this.coolUntil.delete(id);
    return undefined;
  }

  /** Resolves when any slot is given back; rejects when the call is aborted first. */
  waitForSlot(ctx: CompletionContext): Promise<void> {
    return new Promise((resolve, reject) => {
      const wake = () => {
        unwatch();
        resolve();
      };
      const unwatch = onAbort(ctx, () => {
        this.waiters = this.waiters.filter((waiter) => waiter !== wake);
        reject(abortReason(ctx));
      });
      this.waiters.push(wake);
    });
  }

  /** Closes every inner pipeline (and so every deployment's transport). */
  async close(): Promise<void> {
    await Promise.all([...this.all].map((pipeline) => pipeline.close({ graceMs: 1_000 })));
  }
}

/**
 * A deployment picked for a hop, holding one of its slots until
 * `release()` (which gives it back once). One object per hop: no closure
 * and no flag of its own beside it.
 */
export class Picked {
  private released = false;

  constructor(
    readonly deployment: ResolvedDeployment,
    readonly sticky: boolean,
    private readonly pool: DeploymentPool,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.pool.giveBack(this.deployment.id);
  }
}

const outerOnly = new Set(['request', 'response']);

/** An emitter for an inner pipeline: its events reach `outer`, except the outer call's own. */
function forwarding(outer: SluiceEmitter): SluiceEmitter {
  const inner = createEmitter();
  const emit = ((event: string, ...args: unknown[]) =>
    outerOnly.has(event) ? false : (outer.emit as (event: string, ...rest: unknown[]) => boolean)(event, ...args)) as SluiceEmitter['emit'];
  const listenerCount = ((event: string) => (outerOnly.has(event) ? 0 : outer.listenerCount(event as never))) as SluiceEmitter['listenerCount'];
  return Object.assign(inner, { emit, listenerCount });
}
