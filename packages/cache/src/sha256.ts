// SHA-256 from @noble/hashes: audited, synchronous and free of `node:`
// imports, so the cache runs on every runtime. Web Crypto's `subtle.digest`
// gives the same bytes but is asynchronous and, on Node, runs on the thread
// pool: for the few hundred bytes of a request it cost 20 to 50 times more
// CPU, on every cacheable call.
import { sha256 as digest } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';

/**
 * The SHA-256 of `text` (UTF-8), in hex; internal.
 *
 * @param text - what to hash
 * @example
 * ```ts
 * sha256('abc'); // 'ba7816bf…f20015ad'
 * ```
 */
export function sha256(text: string): string {
  return bytesToHex(digest(utf8ToBytes(text)));
}
