import type { ChatCompletionRequest } from '@sluice/core';
import { canonicalBytes } from './canonical-json.js';
import { sha256 } from './sha256.js';

/**
 * The cache key of a request: its kind (a stream and a completion are
 * stored apart, so each replays as what it was) and the SHA-256 of its
 * upstream and canonical form. A cryptographic hash, because an
 * exact-match cache that a crafted collision could poison would serve one
 * tenant's answer to another; internal.
 *
 * @param request - the request as it will be sent
 * @param stream - whether the call is a stream
 * @param origin - the upstream it goes to (another upstream may answer otherwise)
 * @param ignore - top-level fields left out
 * @example
 * ```ts
 * const key = requestKey(ctx.request, ctx.stream, ctx.transport.origin, ignore); // 'stream:3fa9…'
 * ```
 */
export function requestKey(request: ChatCompletionRequest, stream: boolean, origin: string, ignore: ReadonlySet<string>): string {
  return (stream ? 'stream:' : 'completion:') + sha256(canonicalBytes(request, ignore, origin));
}
