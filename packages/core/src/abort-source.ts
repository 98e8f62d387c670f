/**
 * An object an abort source tells through a method of its own, which costs
 * no closure per listener (a child source, a transport's answer, an attempt).
 */
export interface AbortListener {
  /** The source (or one it follows) was aborted; read its `reason`. */
  sourceAborted(): void;
}

/** What an abort source notifies: a listener function, or an object. */
type Follower = (() => void) | AbortListener;

/** Hears that a follower of an abort source threw (a call: as a `listener-error` event). */
export interface AbortFailureReporter {
  abortListenerFailed(error: unknown): void;
}

/**
 * A minimal abort source. undici accepts any object with `aborted`,
 * `reason` and `addEventListener`; a real AbortController costs several
 * microseconds and, on Node 20, keeps garbage alive across collections,
 * which the benchmark showed as the largest single overhead per call.
 * Where a real `AbortSignal` is needed (`ctx.signal`), it is made lazily
 * from one of these.
 *
 * A source may follow a parent (a call made for another, such as a
 * router's hop): it reads as aborted, with the parent's reason, as soon as
 * the parent is. It joins the parent's followers only while it has
 * listeners of its own, so following costs no closure, and a child that
 * nobody watches any more (a stream whose transport is done) needs no
 * unlinking.
 *
 * Every follower hears an abort, whatever another does: one that throws
 * (a middleware's `onAbort` listener with a bug) is reported to the
 * source's reporter (a call's `listener-error` event) and the rest still
 * run, as an AbortSignal's listeners do. Before, the first throw ended the
 * round: the attempt behind it never heard its call's deadline, and the
 * call waited for the transport's own limits.
 */
export class AbortSource implements AbortListener {
  private abortedHere = false;
  private reasonHere: unknown = undefined;
  /** The first follower, and those that came after it while it stayed. */
  private first: Follower | undefined = undefined;
  private more: Follower[] | undefined = undefined;
  /** Whether this source is among its parent's followers (it has followers of its own). */
  private linked = false;

  /**
   * @param parent - the source this one follows, if any
   * @param reporter - told when a follower throws; without one, the throw is rethrown on a later tick (an uncaught exception, as an AbortSignal's listener's is)
   */
  constructor(
    private parent?: AbortSource,
    private readonly reporter?: AbortFailureReporter,
  ) {}

  get aborted(): boolean {
    return this.abortedHere || (this.parent !== undefined && this.parent.aborted);
  }

  get reason(): unknown {
    if (this.abortedHere) return this.reasonHere;
    return this.parent?.aborted ? this.parent.reason : undefined;
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    this.follow(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    this.unfollow(listener);
  }

  /** Tells `listener` once when this source is aborted; none after that (read `aborted` first). */
  listen(listener: AbortListener): void {
    this.follow(listener);
  }

  /** Stops telling `listener`. */
  unlisten(listener: AbortListener): void {
    this.unfollow(listener);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.abortedHere = true;
    this.reasonHere = reason;
    this.sourceAborted();
  }

  /**
   * Stops following the parent: from now on only this source's own abort
   * counts (a call made for another that outlives it). Nothing changes for
   * a source aborted already, or one with no parent.
   *
   * @returns whether it was following a parent and now is not
   */
  detach(): boolean {
    const parent = this.parent;
    if (parent === undefined || this.aborted) return false;
    if (this.linked) {
      this.linked = false;
      parent.unfollow(this);
    }
    this.parent = undefined;
    return true;
  }

  /** A real AbortSignal that follows this source. */
  toSignal(): AbortSignal {
    const controller = new AbortController();
    if (this.aborted) controller.abort(this.reason);
    else this.addEventListener('abort', () => controller.abort(this.reason));
    return controller.signal;
  }

  private follow(follower: Follower): void {
    if (this.aborted) return;
    // Most sources have one follower at a time (a call's attempt, an attempt's socket): a field, no array.
    if (this.first === undefined && this.more === undefined) this.first = follower;
    else if (this.more === undefined) this.more = [follower];
    else this.more.push(follower);
    if (this.parent !== undefined && !this.linked) {
      this.linked = true;
      this.parent.follow(this);
    }
  }

  private unfollow(follower: Follower): void {
    const more = this.more;
    if (this.first === follower) {
      // The oldest of the rest takes its place, so followers still run in the order they came.
      this.first = more?.[0];
      if (more !== undefined) removeAt(more, 0);
    } else {
      const index = more === undefined ? -1 : more.indexOf(follower);
      if (index < 0) return;
      removeAt(more as Follower[], index);
    }
    if (this.more !== undefined && this.more.length === 0) this.more = undefined;
    if (this.first === undefined && this.more === undefined && this.linked) {
      this.linked = false;
      this.parent?.unfollow(this);
    }
  }

  /** Runs every follower once: this source or its parent was aborted. */
  sourceAborted(): void {
    const { first, more } = this;
    this.first = this.more = undefined;
    if (this.linked) {
      this.linked = false;
      // Aborted on its own while following: the parent need not call it any more.
      if (this.abortedHere) this.parent?.unfollow(this);
    }
    if (first !== undefined) this.run(first);
    if (more !== undefined) for (const follower of more) this.run(follower);
  }

  private run(follower: Follower): void {
    try {
      if (typeof follower === 'function') follower();
      else follower.sourceAborted();
    } catch (error) {
      this.failed(error);
    }
  }

  private failed(error: unknown): void {
    const reporter = this.reporter;
    if (reporter !== undefined) {
      try {
        reporter.abortListenerFailed(error);
        return;
      } catch {
        // A reporter that throws too: reported as if there were none.
      }
    }
    queueMicrotask(() => {
      throw error;
    });
  }
}

/** Removes `list[index]` in place: `splice` would make an array of the removed entry. */
function removeAt(list: Follower[], index: number): void {
  for (let at = index + 1; at < list.length; at++) list[at - 1] = list[at] as Follower;
  list.length--;
}
