import { type CompletionContext, createEmitter, createPipeline, type Middleware, type Pipeline, type SluiceEmitter, ValidationError } from '@sluice/core';
import { abortReason, aheadOfClock, onAbort } from '@sluice/core/kit';
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
  // Per deployment, by its index in `deployments`: an array read, not a
  // string-keyed Map lookup, on every call.
  private readonly pipelines = new WeakMap<SluiceEmitter, Array<Pipeline | undefined>>();
  /** The outer pipeline last seen, and its deployments' pipelines: most routers serve one. */
  private lastEvents: SluiceEmitter | undefined;
  private lastPipelines: Array<Pipeline | undefined> = [];
  private readonly all = new Set<Pipeline>();
  private readonly inFlight: number[];
  /** When each deployment may be tried again (clock time); 0 when it is not cooling. */
  private readonly coolUntil: number[];
  /** When each cooldown began: one that began well after now began before the clock stepped back, and is over. */
  private readonly coolFrom: number[];
  private coolingCount = 0;
  private waiters: Array<() => void> = [];
  private readonly tagsOnly: Array<Readonly<Record<string, string>> | undefined> = [];

  constructor(private readonly options: ResolvedOptions) {
    this.inFlight = options.deployments.map(() => 0);
    this.coolUntil = options.deployments.map(() => 0);
    this.coolFrom = options.deployments.map(() => 0);
  }

  /** The deployment's inner pipeline for calls of `ctx`'s pipeline. */
  pipelineFor(deployment: ResolvedDeployment, ctx: CompletionContext): Pipeline {
    let byIndex: Array<Pipeline | undefined>;
    if (ctx.events === this.lastEvents) byIndex = this.lastPipelines;
    else {
      byIndex = this.pipelines.get(ctx.events) ?? [];
      this.pipelines.set(ctx.events, byIndex);
      this.lastEvents = ctx.events;
      this.lastPipelines = byIndex;
    }
    let pipeline = byIndex[deployment.index];
    if (!pipeline) {
      pipeline = createPipeline({
        transport: deployment.transport,
        store: ctx.store,
        clock: ctx.clock,
        events: forwarding(ctx.events),
        // The outer pipeline validated the request; only the model changes.
        validateRequests: false,
      });
      for (const middleware of innerMiddleware(this.options.middleware(deployment), deployment)) pipeline = pipeline.use(middleware);
      // Only a hedged router cancels hops it would have to cost; the others skip the extra step.
      if (this.options.hedge) pipeline = pipeline.use(hedgeLossCost);
      byIndex[deployment.index] = pipeline;
      this.all.add(pipeline);
    }
    return pipeline;
  }

  /** Calls in flight on the deployment. */
  load(deployment: ResolvedDeployment): number {
    return this.inFlight[deployment.index] as number;
  }

  isFull(deployment: ResolvedDeployment): boolean {
    return deployment.maxConcurrency !== undefined && this.load(deployment) >= deployment.maxConcurrency;
  }

  /**
   * Takes one of the deployment's slots; the picked deployment gives it
   * back (once). Taken in the same turn as the capacity check, so
   * concurrent calls never overfill a deployment.
   *
   * @param sticky - whether the call's sticky record chose it
   */
  acquire(deployment: ResolvedDeployment, sticky: boolean): Picked {
    (this.inFlight[deployment.index] as number)++;
    return new Picked(deployment, sticky, this);
  }

  /** Gives back a slot of `deployment` and wakes the calls waiting for one; through {@link Picked.release}. */
  giveBack(deployment: ResolvedDeployment): void {
    (this.inFlight[deployment.index] as number)--;
    const waiters = this.waiters;
    if (waiters.length === 0) return;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** The tags a hop to `deployment` carries: the outer call's and `deployment: <id>`. */
  hopTags(deployment: ResolvedDeployment, ctx: CompletionContext): Record<string, string> {
    // Most calls carry no tags: their hops share one frozen object per deployment instead of a copy each.
    for (const _ in ctx.tags) return { ...ctx.tags, deployment: deployment.id };
    let tags = this.tagsOnly[deployment.index];
    if (!tags) {
      tags = Object.freeze({ deployment: deployment.id });
      this.tagsOnly[deployment.index] = tags;
    }
    return tags;
  }

  /** Passes the deployment over from `now` until `until` (clock time). */
  cool(deployment: ResolvedDeployment, until: number, now: number): void {
    const current = this.coolUntil[deployment.index] as number;
    if (!(until > current) && !aheadOfClock(this.coolFrom[deployment.index] as number, now)) return;
    if (current === 0) this.coolingCount++;
    this.coolUntil[deployment.index] = until;
    this.coolFrom[deployment.index] = now;
  }

  /** Whether any deployment may be cooling (some may have cooled already). */
  cooling(): boolean {
    return this.coolingCount > 0;
  }

  /** When the deployment may be tried again, if it is cooling at `now`. */
  coolingUntil(deployment: ResolvedDeployment, now: number): number | undefined {
    const until = this.coolUntil[deployment.index] as number;
    if (until === 0) return undefined;
    // Cooling, unless the clock stepped back past its start: it would last as long as the step.
    if (until > now && !aheadOfClock(this.coolFrom[deployment.index] as number, now)) return until;
    this.coolUntil[deployment.index] = 0;
    this.coolingCount--;
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
    this.pool.giveBack(this.deployment);
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

/**
 * What `middleware(deployment)` returned, checked: a configuration mistake
 * (a single middleware, not in an array) names the option and the
 * deployment instead of surfacing as core's "must be a function". It is
 * the server's configuration, not the request, so it is a 500 to a caller.
 */
function innerMiddleware(list: unknown, deployment: ResolvedDeployment): readonly Middleware[] {
  const field = `router.middleware(${JSON.stringify(deployment.id)})`;
  if (!Array.isArray(list)) {
    throw new ValidationError(field, `must return an array of middleware, got ${typeof list === 'function' ? 'one middleware' : typeof list}`, { httpStatus: 500 });
  }
  list.forEach((item, index) => {
    if (typeof item !== 'function') throw new ValidationError(`${field}.${index}`, `must be a middleware function, got ${item === null ? 'null' : typeof item}`, { httpStatus: 500 });
  });
  return list as Middleware[];
}
