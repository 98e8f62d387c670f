import {
  type ChatCompletionChunk,
  type CompletionContext,
  type Middleware,
  SluiceError,
  type Transport,
  UpstreamError,
  toSluiceError,
} from '@sluice/core';
import { abortReason, estimateTokens, keepsChainRules, keyedState, type KeyedState, promptTokens } from '@sluice/core/kit';
import { DeploymentPool, type Picked } from './deployment-pool.js';
import { ContentFilteredError, NoDeploymentError } from './errors.js';
import type { HopReason, RouterEvents, RouterState, SkipReason } from './events.js';
import { type HedgeBudgetState, depositHedge, withdrawHedge } from './hedge-budget.js';
import { hedgeLoss } from './hedge-loss.js';
import { type RunningHop, race } from './hedge.js';
import { type Answer, sendHop, startHop } from './hop.js';
import { LatencyTracker } from './latency.js';
import { lastCause, type ResolvedDeployment, type ResolvedOptions, type RouterOptions, resolveOptions } from './options.js';
import { type Candidate, selectDeployment } from './select.js';

/** The `router` middleware, with the transport its outer pipeline ends in. */
export type RouterMiddleware = Middleware & {
  /**
   * Give this to the outer pipeline's `createPipeline`: the router answers
   * every call itself, so it is never sent to; closing the pipeline closes
   * every deployment's inner pipeline through it.
   */
  readonly transport: Transport;
};

/**
 * Sends each call to one of several deployments, each through its own
 * inner pipeline (its own breaker, limits, budget and cost), and moves it
 * on when a deployment fails in a way the caller chose: to an equivalent
 * deployment of the same model, then down the model's `fallbacks`. A
 * prompt too long for a model goes to the next one that fits; a content
 * filter refusal goes where `contentFilterFallbacks` says. Final errors
 * (400, 401, aborts, deadlines) never move, nor does a stream once its
 * first chunk reached the caller. Within a group, a deployment is picked
 * by `strategy`; deployments cooling after a refusal, full, or too small
 * are passed over without a request. With `hedge`, a call without a first
 * chunk after the delay is also sent to a second deployment, and the
 * slower is cancelled.
 *
 * Use it last: it answers every call itself, so middleware `use`d after it
 * never run; put per-deployment middleware in `middleware`.
 *
 * @param options - deployments, their middleware, strategy, fallbacks, hedging
 * @throws ValidationError naming a bad option (`router.deployments.1.model`)
 * @throws NoDeploymentError (from the middleware) when no deployment can take the call; else the last deployment's error
 * @example
 * ```ts
 * const routed = router({
 *   deployments: [
 *     { id: 'openai', transport: openAICompatible({ baseUrl: openaiUrl, apiKey }), model: 'gpt-4.1' },
 *     { id: 'azure', transport: openAICompatible({ baseUrl: azureUrl, apiKey: azureKey }), model: 'gpt-4.1', weight: 2 },
 *     { id: 'deepseek', transport: openAICompatible({ baseUrl: deepseekUrl, apiKey: deepseekKey }), model: 'deepseek-v3.2' },
 *   ],
 *   middleware: () => [retry({ attempts: 2 }), breaker({ failures: 5 })],
 *   fallbacks: { 'gpt-4.1': ['deepseek-v3.2'] },
 * });
 * const llm = createPipeline({ transport: routed.transport }).use(routed);
 * ```
 */
export function router(options: RouterOptions): RouterMiddleware {
  const config = resolveOptions(options);
  const pool = new DeploymentPool(config);
  const latency = new LatencyTracker(config.latency.staleMs);
  const credit = new Map<string, number>();
  const budget: { state: HedgeBudgetState } = { state: { tokens: 0 } };
  const sticky =
    config.sticky &&
    keyedState({
      name: 'router',
      key: config.sticky.key,
      defaultKey: 'global',
      field: 'router.sticky.key',
      store: config.store,
      onStoreError: config.onStoreError,
    });
  // Each model's chain (itself, then its fallbacks), made once: a call copies it only to change it.
  const chains = new Map<string, readonly string[]>();
  for (const model of config.groups.keys()) chains.set(model, [model, ...(config.fallbacks[model] ?? [])]);
  const timed = config.strategy === 'latency' || config.hedge !== undefined;
  const shared: Shared = { config, pool, latency, timed, credit, budget, sticky, chains };

  // Not async: the call's own promise is the one the middleware returns.
  const middleware = function router(ctx: CompletionContext): Promise<void> {
    return new RoutedCall(ctx, shared).run();
  };
  const transport: Transport = {
    name: 'router',
    origin: `router:${config.deployments.map((deployment) => deployment.id).join(',')}`,
    // Its send throws at once: the router middleware answers every call before it.
    honoursAbort: true,
    send() {
      throw new SluiceError('ROUTER_NOT_LAST', 'the router middleware was not in this pipeline, or a middleware after it called next()', { final: true });
    },
    close: () => pool.close(),
  };
  return Object.assign(keepsChainRules(middleware), { transport });
}

interface Shared {
  config: ResolvedOptions;
  pool: DeploymentPool;
  latency: LatencyTracker;
  /** Whether anything reads `latency`: the latency strategy or hedging. */
  timed: boolean;
  credit: Map<string, number>;
  budget: { state: HedgeBudgetState };
  sticky: KeyedState | undefined;
  chains: ReadonlyMap<string, readonly string[]>;
}

/** One call's way through the deployments. */
class RoutedCall {
  private readonly state: RouterState = { deployment: undefined, hops: [], hedged: false };
  /** The first deployment tried, then a set once there are more: most calls try one. */
  private firstTried: string | undefined;
  private moreTried: Set<string> | undefined;
  private skipped: Set<string> | undefined;
  /** The shared chain until the call changes its own (a content-filter redirect copies it). */
  private chain: readonly string[];
  private readonly primary: string;
  /** Prompt plus output tokens, counted when a deployment's window is first compared. */
  private neededTokens: number | undefined;
  private hops = 0;
  private lastError: SluiceError | undefined;
  private refusal: Answer | undefined;
  private refusalReason: HopReason | 'hedge' = 'route';
  private soonest: number | undefined;

  constructor(
    private readonly ctx: CompletionContext,
    private readonly shared: Shared,
  ) {
    ctx.state.router = this.state;
    this.primary = ctx.request.model;
    this.chain = shared.chains.get(this.primary) ?? [this.primary];
  }

  private get needed(): number {
    if (this.neededTokens === undefined) {
      const { request } = this.ctx;
      const prompt = promptTokens(this.ctx)?.count ?? estimateTokens(request);
      this.neededTokens = prompt + (request.max_completion_tokens ?? request.max_tokens ?? 0);
    }
    return this.neededTokens;
  }

  private set needed(tokens: number) {
    this.neededTokens = tokens;
  }

  private tried(id: string): boolean {
    return this.firstTried === id || this.moreTried?.has(id) === true;
  }

  private markTried(id: string): void {
    if (this.firstTried === undefined || this.firstTried === id) this.firstTried = id;
    else (this.moreTried ??= new Set()).add(id);
  }

  /** Adds a hop to `ctx.state.router.hops`; the first makes an array of one. */
  private record(hop: RouterState['hops'][number]): void {
    if (this.state.hops.length === 0) this.state.hops = [hop];
    else this.state.hops.push(hop);
  }

  run(): Promise<void> {
    const { config, budget } = this.shared;
    if (!config.groups.has(this.primary)) {
      return Promise.reject(new NoDeploymentError(this.primary, `no deployment serves model "${this.primary}"`, undefined));
    }
    if (config.hedge) budget.state = depositHedge(budget.state, config.hedge.ratio);
    const group = this.chain[0] as string;
    let picked: ReturnType<RoutedCall['pick']>;
    try {
      picked = config.maxHops === 0 ? undefined : this.pick(group, this.chain.length === 1);
    } catch (error) {
      return Promise.reject(error);
    }
    // Most calls go to the deployment picked at once, unhedged, and it
    // answers: one `then` on that hop. The loop, an async frame held for
    // the whole call, runs only when a call waits, moves on or is hedged.
    if (picked === undefined || picked instanceof Promise || config.hedge) return this.loop(0, 'route', picked);
    const first = picked;
    const reason = first.sticky ? 'sticky' : 'route';
    if (!this.ctx.stream) return this.sendJson(first, group, reason);
    return this.send(first, group, reason).then(
      (answer) => this.firstAnswered(answer, group, reason),
      (caught: unknown) => this.firstFailed(first.deployment, group, caught, reason),
    );
  }

  /** The first hop answered: delivered, or the loop goes on past a content-filter refusal. */
  private firstAnswered(answer: Answer, group: string, reason: HopReason): void | Promise<void> {
    return this.refused(answer, group, reason) ? this.loop(1, 'content-filter', notPicked) : this.deliver(answer, reason);
  }

  /** The first hop failed: the loop goes on from where that failure sends the call. */
  private firstFailed(deployment: ResolvedDeployment, group: string, caught: unknown, reason: HopReason): Promise<void> {
    const next = this.failed(deployment, group, toSluiceError(caught), reason);
    return this.loop(next === 'content-filter' ? 1 : 0, next === 'same-group' ? 'fallback' : next, notPicked);
  }

  /**
   * The first hop of a JSON call, unhedged: the inner call's context goes
   * straight to the outer call, with no answer object and no second `then`
   * between them unless the deployment refused it.
   */
  private sendJson(picked: Picked, group: string, reason: HopReason): Promise<void> {
    const { deployment } = picked;
    this.markTried(deployment.id);
    this.started(deployment, group, reason);
    // Response times are kept only for the latency strategy and hedging, the two that read them.
    const startedAt = this.shared.timed ? this.ctx.clock.now() : 0;
    return startHop(this.shared.pool, picked, this.ctx).then(
      (inner) => {
        picked.release();
        const firstChunkMs = this.shared.timed ? this.ctx.clock.now() - startedAt : 0;
        if (!inner.response || !filtered(inner.response.choices)) return this.settle(deployment, inner, firstChunkMs, reason);
        return this.firstAnswered({ deployment, inner, chunks: undefined, firstChunkMs, discard: () => Promise.resolve() }, group, reason);
      },
      (caught: unknown) => {
        picked.release();
        return this.firstFailed(deployment, group, caught, reason);
      },
    );
  }

  /**
   * Tries the chain from `start` until a deployment answers.
   *
   * @param picked - what the pick at `start` already gave, or `notPicked`
   */
  private async loop(start: number, from: HopReason, picked: ReturnType<RoutedCall['pick']> | typeof notPicked): Promise<void> {
    const { config } = this.shared;
    let reason = from;
    for (let index = start; index < this.chain.length; ) {
      if (config.maxHops !== undefined && this.hops >= config.maxHops) {
        this.skipRest(index);
        break;
      }
      const group = this.chain[index] as string;
      let choice = picked === notPicked ? this.pick(group, index === this.chain.length - 1) : picked;
      picked = notPicked;
      if (choice instanceof Promise) choice = await choice;
      if (!choice) {
        index++;
        if (reason === 'route') reason = 'fallback';
        continue;
      }
      const hopReason = choice.sticky ? 'sticky' : reason;
      let answer: Answer;
      try {
        answer = await this.send(choice, group, hopReason);
      } catch (caught) {
        // A hedged pair that both failed throws the first deployment's error; the hedge's was recorded apart.
        const next = this.failed(choice.deployment, group, toSluiceError(caught), hopReason);
        if (next === 'content-filter') index++;
        reason = next === 'same-group' ? 'fallback' : next;
        continue;
      }
      // The hedge answered first: that is why the call went there.
      const answeredReason = answer.deployment === choice.deployment ? hopReason : 'hedge';
      const redirect = this.refused(answer, group, answeredReason);
      if (redirect) {
        index++;
        reason = 'content-filter';
        continue;
      }
      return this.deliver(answer, answeredReason);
    }
    if (this.refusal) return this.deliver(this.refusal, this.refusalReason);
    throw this.lastError ?? this.none();
  }

  /**
   * Picks a deployment of `group` that can take the call now; waits for a
   * slot when all are full and none is left after. Synchronous unless it
   * must read a sticky record or wait: most calls make no promise here.
   */
  private pick(group: string, last: boolean): Picked | undefined | Promise<Picked | undefined> {
    if (group === this.primary && this.shared.sticky) return this.pickPinned(group, last);
    const picked = this.pickNow(group, last, undefined);
    return picked === full ? this.pickWhenFree(group, last, undefined) : picked;
  }

  private async pickPinned(group: string, last: boolean): Promise<Picked | undefined> {
    // Read before the candidates are counted: no await may fall between
    // checking a deployment's slots and taking one.
    const pinnedId = await this.pinned();
    const picked = this.pickNow(group, last, pinnedId);
    return picked === full ? this.pickWhenFree(group, last, pinnedId) : picked;
  }

  private async pickWhenFree(group: string, last: boolean, pinnedId: string | undefined): Promise<Picked | undefined> {
    for (;;) {
      await this.shared.pool.waitForSlot(this.ctx);
      const picked = this.pickNow(group, last, pinnedId);
      if (picked !== full) return picked;
    }
  }

  /** A deployment of `group` that can take the call now; `full` when the call should wait for a slot. */
  private pickNow(group: string, last: boolean, pinnedId: string | undefined): Picked | undefined | typeof full {
    const { config, pool, latency, credit } = this.shared;
    const deployments = config.groups.get(group) ?? [];
    // The clock is read only when some deployment is cooling or latency routing ages its figures: most calls do neither.
    const now = pool.cooling() || config.strategy === 'latency' ? this.ctx.clock.now() : 0;
    // The first candidate alone, and a list from the second on: most groups offer one.
    let only: ResolvedDeployment | undefined;
    let candidates: Candidate[] | undefined;
    let busy = false;
    for (const deployment of deployments) {
      if (this.tried(deployment.id)) continue;
      if (deployment.contextWindow !== undefined && this.needed > deployment.contextWindow) this.skip(deployment, 'window');
      else {
        const until = pool.coolingUntil(deployment, now);
        if (until !== undefined) {
          this.soonest = Math.min(this.soonest ?? Infinity, until - now);
          this.skip(deployment, 'cooling');
        } else if (pool.isFull(deployment)) busy = true;
        else if (only === undefined && candidates === undefined) only = deployment;
        else {
          if (candidates === undefined) {
            candidates = [this.candidate(only as ResolvedDeployment, now)];
            only = undefined;
          }
          candidates.push(this.candidate(deployment, now));
        }
      }
    }
    if (only !== undefined) return pool.acquire(only, only.id === pinnedId);
    if (candidates !== undefined) {
      const pinned = pinnedId === undefined ? undefined : candidates.find((candidate) => candidate.deployment.id === pinnedId);
      const deployment = pinned?.deployment ?? selectDeployment(config.strategy, candidates, credit, config.random, config.latency.buffer);
      return pool.acquire(deployment, pinned !== undefined);
    }
    if (busy && last) return full;
    if (busy) for (const deployment of deployments) if (pool.isFull(deployment)) this.skip(deployment, 'busy');
    return undefined;
  }

  /** @param now - the clock's time, read once per pick (latency routing compares it with each figure's age) */
  private candidate(deployment: ResolvedDeployment, now: number): Candidate {
    const { config, pool, latency } = this.shared;
    const inFlight = pool.load(deployment);
    // Only latency routing reads the figure.
    if (config.strategy !== 'latency') return { deployment, inFlight, latencyMs: undefined };
    return { deployment, inFlight, latencyMs: latencyScore(latency, deployment.id, inFlight, now) };
  }

  /** The deployment the call's sticky record names, if any. */
  private async pinned(): Promise<string | undefined> {
    const sticky = this.shared.sticky;
    if (!sticky) return undefined;
    const record = await sticky.get<{ deployment: string }>(sticky.keyOf(this.ctx), this.ctx);
    return record?.deployment;
  }

  /** Sends to `deployment`, hedged when the router hedges. */
  private send(picked: Picked, group: string, reason: HopReason): Promise<Answer> {
    const { hedge } = this.shared.config;
    const { deployment } = picked;
    this.markTried(deployment.id);
    if (!hedge) {
      this.started(deployment, group, reason);
      return sendHop(this.shared.pool, picked, this.ctx);
    }
    return race(this.ctx, picked, {
      start: (target) => {
        if (target.deployment === deployment) this.started(deployment, group, reason);
        return this.startCancellable(target);
      },
      delayMs: () => this.hedgeDelay(),
      second: (primary) => this.hedgeTarget(primary, group),
      hedged: (hop, primary, delayMs) => {
        this.state.hedged = true;
        if (this.heard('hedge')) this.emit('hedge', { id: this.ctx.id, deployment: hop.deployment.id, primary: primary.id, delayMs });
      },
      lost: (hop, winner) => {
        // The loser is the first deployment when the hedge won.
        this.record({ deployment: hop.deployment.id, model: hop.deployment.model, reason: hop.deployment === deployment ? reason : 'hedge', outcome: 'cancelled' });
        if (this.heard('hedge-cancel')) this.emit('hedge-cancel', { id: this.ctx.id, deployment: hop.deployment.id, winner: winner.id });
      },
      failedAside: (hop, error) => this.failedAside(hop.deployment, error, hop.deployment === deployment ? reason : 'hedge'),
    });
  }

  private startCancellable(picked: Picked): RunningHop {
    const controller = new AbortController();
    const answer = sendHop(this.shared.pool, picked, this.ctx, controller.signal);
    return { deployment: picked.deployment, answer, cancel: () => controller.abort(hedgeLoss()) };
  }

  private hedgeDelay(): number {
    const hedge = this.shared.config.hedge;
    if (!hedge) return Infinity;
    const observed = hedge.percentile === undefined ? undefined : this.shared.latency.percentile(hedge.percentile);
    if (observed === undefined) return hedge.delayMs;
    return Math.min(hedge.maxMs, Math.max(hedge.minMs, observed));
  }

  /** Another deployment of the group for a hedge, if the budget allows one. */
  private hedgeTarget(primary: ResolvedDeployment, group: string): Picked | undefined {
    const { config, pool, credit, budget } = this.shared;
    if (config.maxHops !== undefined && this.hops >= config.maxHops) {
      if (this.heard('hedge-skip')) this.emit('hedge-skip', { id: this.ctx.id, reason: 'hop-limit' });
      return undefined;
    }
    const now = this.ctx.clock.now();
    const candidates: Candidate[] = [];
    for (const deployment of config.groups.get(group) ?? []) {
      if (deployment === primary || this.tried(deployment.id) || pool.isFull(deployment)) continue;
      if (deployment.contextWindow !== undefined && this.needed > deployment.contextWindow) continue;
      if (pool.coolingUntil(deployment, now) !== undefined) continue;
      candidates.push(this.candidate(deployment, now));
    }
    if (candidates.length === 0) {
      if (this.heard('hedge-skip')) this.emit('hedge-skip', { id: this.ctx.id, reason: 'no-deployment' });
      return undefined;
    }
    const withdrawn = withdrawHedge(budget.state);
    if (!withdrawn.allowed) {
      if (this.heard('hedge-skip')) this.emit('hedge-skip', { id: this.ctx.id, reason: 'budget' });
      return undefined;
    }
    budget.state = withdrawn.state;
    const deployment = selectDeployment(config.strategy, candidates, credit, config.random, config.latency.buffer);
    this.markTried(deployment.id);
    this.hops++;
    return pool.acquire(deployment, false);
  }

  private started(deployment: ResolvedDeployment, group: string, reason: HopReason): void {
    this.hops++;
    if (this.heard('route')) this.emit('route', { id: this.ctx.id, deployment: deployment.id, group, model: deployment.model, reason, hop: this.hops });
  }

  /** Records a failed hop; says where to go next, or throws when the call must not move. */
  private failed(deployment: ResolvedDeployment, group: string, error: SluiceError, reason: HopReason): 'same-group' | 'content-filter' | 'context-length' {
    const { ctx } = this;
    this.record({ deployment: deployment.id, model: deployment.model, reason, outcome: 'failed', code: error.code });
    const aborted = abortReason(ctx);
    if (aborted !== undefined) throw toSluiceError(aborted);
    const cause = lastCause(error);
    const filtered = cause instanceof UpstreamError && isContentFilterCode(cause.providerCode);
    if (filtered && this.redirect(group)) {
      this.lastError = error;
      this.fellBack(deployment, error);
      return 'content-filter';
    }
    if (error.final || cause.final || !this.shared.config.fallbackOn(error)) throw error;
    this.lastError = error;
    this.cool(deployment, cause);
    this.fellBack(deployment, error);
    if (cause.code === 'CONTEXT_LENGTH_EXCEEDED') {
      // Only a larger window helps: deployments no larger are passed over from now on.
      this.needed = Math.max(this.needed, (deployment.contextWindow ?? this.needed) + 1);
      return 'context-length';
    }
    return 'same-group';
  }

  /**
   * One of a hedged pair failed while the other went on (it answered
   * later, or failed too and its error is the one the call moves on
   * with): recorded, and the deployment cooled when its error says to
   * wait, as `failed` does, but nothing thrown.
   */
  private failedAside(deployment: ResolvedDeployment, error: SluiceError, reason: HopReason | 'hedge'): void {
    this.record({ deployment: deployment.id, model: deployment.model, reason, outcome: 'failed', code: error.code });
    // Aborted with the call, or cancelled as a hedge's loser: the deployment did nothing wrong.
    if (abortReason(this.ctx) !== undefined) return;
    const cause = lastCause(error);
    if (error.final || cause.final || !this.shared.config.fallbackOn(error)) return;
    this.cool(deployment, cause);
    this.fellBack(deployment, error);
  }

  /**
   * Passes over a deployment that said to wait: a Retry-After, an open
   * circuit, a full limiter, a 429 without Retry-After. A half-open
   * circuit says 0 (its probe is in flight): the cooldown, rather than retrying at once.
   * Never longer than `maxCooldownMs`, whatever the refusal asked.
   */
  private cool(deployment: ResolvedDeployment, cause: SluiceError): void {
    if (cause.retryAfterMs === undefined && cause.code !== 'CIRCUIT_OPEN' && cause.code !== 'LIMIT_REJECTED' && cause.code !== 'RATE_LIMITED') return;
    const { cooldownMs, maxCooldownMs } = this.shared.config;
    const now = this.ctx.clock.now();
    this.shared.pool.cool(deployment, now + Math.min(cause.retryAfterMs || cooldownMs, maxCooldownMs), now);
  }

  private fellBack(deployment: ResolvedDeployment, error: SluiceError): void {
    if (this.heard('route-fallback')) this.emit('route-fallback', { id: this.ctx.id, deployment: deployment.id, code: error.code, retryAfterMs: error.retryAfterMs });
  }

  /** A content-filter refusal from a group with somewhere else to go: keeps it as the answer of last resort. */
  private refused(answer: Answer, group: string, reason: HopReason | 'hedge'): boolean {
    const response = answer.inner.response;
    if (!response || !filtered(response.choices)) return false;
    if (!this.redirect(group)) return false;
    const { deployment } = answer;
    this.record({ deployment: deployment.id, model: deployment.model, reason, outcome: 'failed', code: 'CONTENT_FILTERED', attemptId: answer.inner.id });
    if (this.refusal === undefined) {
      this.refusal = answer;
      this.refusalReason = reason;
    }
    this.lastError ??= new ContentFilteredError(deployment.id);
    return true;
  }

  /** Puts the group's content-filter fallbacks next in the chain; false when it has none. */
  private redirect(group: string): boolean {
    const targets = this.shared.config.contentFilterFallbacks[group];
    if (!targets || targets.length === 0) return false;
    // The chain is shared by every call of the model until one changes its own.
    const chain = [...this.chain];
    const at = chain.indexOf(group);
    const fresh = targets.filter((target) => !chain.slice(0, at + 1).includes(target));
    chain.splice(at + 1, 0, ...fresh.filter((target) => !chain.slice(at + 1).includes(target)));
    this.chain = chain;
    // Deployments of the refusing group are not tried again.
    for (const deployment of this.shared.config.groups.get(group) ?? []) this.markTried(deployment.id);
    return true;
  }

  /** Copies the winning answer into the outer call. */
  private deliver(answer: Answer, reason: HopReason | 'hedge'): void {
    this.settle(answer.deployment, answer.inner, answer.firstChunkMs, reason, answer.chunks);
    if (answer !== this.refusal) void this.refusal?.discard();
  }

  /** Copies what `deployment`'s inner call answered into the outer call, and pins the call's key to it when sticky. */
  private settle(
    deployment: ResolvedDeployment,
    inner: CompletionContext,
    firstChunkMs: number,
    reason: HopReason | 'hedge',
    chunks?: AsyncIterable<ChatCompletionChunk>,
  ): void {
    const { ctx, shared } = this;
    if (shared.timed) shared.latency.observe(deployment.id, firstChunkMs, ctx.clock.now());
    this.state.deployment = deployment.id;
    this.record({ deployment: deployment.id, model: deployment.model, reason, outcome: 'answered', attemptId: inner.id });
    ctx.responseHeaders = inner.responseHeaders;
    ctx.usage = inner.usage;
    if (ctx.stream) ctx.chunks = chunks;
    else ctx.response = inner.response;
    const sticky = shared.sticky;
    if (sticky && deployment.group === this.primary) {
      const ttlMs = shared.config.sticky?.ttlMs ?? 3_600_000;
      void sticky
        .update<{ deployment: string }>(ctx, sticky.keyOf(ctx), () => ({ deployment: deployment.id }), { ttlMs, phase: 'settle' })
        .catch(() => {});
    }
  }

  private skip(deployment: ResolvedDeployment, reason: SkipReason): void {
    // Made on the first skip: most calls skip nothing.
    this.skipped ??= new Set();
    if (this.skipped.has(deployment.id)) return;
    this.skipped.add(deployment.id);
    this.record({ deployment: deployment.id, model: deployment.model, reason: 'route', outcome: 'skipped', code: reason });
    if (this.heard('route-skip')) this.emit('route-skip', { id: this.ctx.id, deployment: deployment.id, reason });
  }

  /** The call may be sent nowhere more: every deployment it has not tried, from the chain's `index` on, is passed over. */
  private skipRest(index: number): void {
    for (let at = index; at < this.chain.length; at++) {
      for (const deployment of this.shared.config.groups.get(this.chain[at] as string) ?? []) {
        if (!this.tried(deployment.id)) this.skip(deployment, 'hop-limit');
      }
    }
  }

  private none(): NoDeploymentError {
    const soonest = this.soonest;
    if (soonest !== undefined) {
      return new NoDeploymentError(this.primary, `every deployment of "${this.primary}" is cooling down`, Math.max(0, soonest));
    }
    return new NoDeploymentError(this.primary, `no deployment of "${this.primary}" or its fallbacks can take this request`, undefined);
  }

  // Asked before the payload is built: most calls have no listener, and then make no payload.
  private heard(event: keyof RouterEvents): boolean {
    return this.ctx.events.listenerCount(event) > 0;
  }

  private emit<K extends keyof RouterEvents>(event: K, payload: RouterEvents[K]): void {
    (this.ctx.events.emit as (name: K, value: RouterEvents[K]) => void)(event, payload);
  }
}

/** What `pickNow` says when every deployment left is full and the call should wait for a slot. */
const full = Symbol('full');

/** What `loop` is given when the chain's first pick is still to be made. */
const notPicked = Symbol('not picked');

/** Whether any choice was cut by a content filter (a loop: this runs on every answer). */
function filtered(choices: ReadonlyArray<{ finish_reason: string | null }>): boolean {
  for (let index = 0; index < choices.length; index++) if (choices[index]?.finish_reason === 'content_filter') return true;
  return false;
}

function isContentFilterCode(code: string | undefined): boolean {
  return code === 'content_filter' || code === 'content_policy_violation';
}

/**
 * What `latency` routing compares for a deployment: its EWMA while that is
 * fresh; 0 (try it first) while it is unmeasured or stale and nothing is in
 * flight to it, so one call measures it (again); and `Infinity` while that
 * call is out, so the calls meanwhile go by the figures still fresh
 * instead of piling onto it (at random among all when none is).
 *
 * @param latency - the router's figures
 * @param id - the deployment
 * @param inFlight - its calls in flight
 * @param now - the clock's time
 */
function latencyScore(latency: LatencyTracker, id: string, inFlight: number, now: number): number {
  return latency.fresh(id, now) ?? (inFlight === 0 ? 0 : Infinity);
}
