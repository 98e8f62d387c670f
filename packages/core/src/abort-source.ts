/** What an abort source notifies: a listener, or a child source that follows it. */
type Follower = (() => void) | AbortSource;

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
 */
export class AbortSource {
  private abortedHere = false;
  private reasonHere: unknown = undefined;
  private followers: Follower[] | undefined;
  /** Whether this source is among its parent's followers (it has followers of its own). */
  private linked = false;

  /** @param parent - the source this one follows, if any */
  constructor(private readonly parent?: AbortSource) {}

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

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.abortedHere = true;
    this.reasonHere = reason;
    this.notify();
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
    if (this.followers === undefined) this.followers = [follower];
    else this.followers.push(follower);
    if (this.parent !== undefined && !this.linked) {
      this.linked = true;
      this.parent.follow(this);
    }
  }

  private unfollow(follower: Follower): void {
    const followers = this.followers;
    if (followers === undefined) return;
    const index = followers.indexOf(follower);
    if (index < 0) return;
    // In place: `splice` would make an array of the removed entry on every call.
    if (followers.length === 1) this.followers = undefined;
    else {
      for (let at = index + 1; at < followers.length; at++) followers[at - 1] = followers[at] as Follower;
      followers.length--;
    }
    if (this.followers === undefined && this.linked) {
      this.linked = false;
      this.parent?.unfollow(this);
    }
  }

  /** Runs every follower once: this source or its parent was aborted. */
  private notify(): void {
    const followers = this.followers;
    this.followers = undefined;
    if (this.linked) {
      this.linked = false;
      // Aborted on its own while following: the parent need not call it any more.
      if (this.abortedHere) this.parent?.unfollow(this);
    }
    if (followers === undefined) return;
    for (const follower of followers) {
      if (typeof follower === 'function') follower();
      else follower.notify();
    }
  }
}
