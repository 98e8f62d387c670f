// SHA-256 runs on every cacheable call, so it takes the fastest synchronous
// digest the runtime has. On Node (and Bun) that is `crypto.hash`, reached
// through `process.getBuiltinModule` rather than an import of `node:crypto`,
// so the package still loads on every runtime and bundler: for the few
// hundred bytes of a request it costs about a tenth of a pure-JS digest.
// Elsewhere, @noble/hashes: audited, synchronous and free of `node:`
// imports. Web Crypto's `subtle.digest` gives the same bytes but is
// asynchronous and, on Node, runs on the thread pool: 20 to 50 times the
// CPU of the pure-JS digest.
import { sha256 as digest } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';

type NativeHash = (text: string) => string;

/**
 * The SHA-256 of `text` (UTF-8), in hex, with @noble/hashes: what
 * {@link sha256} falls back to where the runtime has no native digest; internal.
 *
 * @param text - what to hash
 */
export function portableSha256(text: string): string {
  return bytesToHex(digest(utf8ToBytes(text)));
}

/** The runtime's synchronous SHA-256, if it has one; internal. */
export function nativeSha256(): NativeHash | undefined {
  const runtime = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  let crypto: NodeCrypto | undefined;
  try {
    crypto = runtime?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined;
  } catch {
    return undefined;
  }
  if (typeof crypto?.hash === 'function') {
    const hash = crypto.hash;
    return (text) => hash('sha256', text, 'hex');
  }
  if (typeof crypto?.createHash === 'function') {
    const createHash = crypto.createHash;
    return (text) => createHash('sha256').update(text, 'utf8').digest('hex');
  }
  return undefined;
}

/** The part of `node:crypto` used here. */
interface NodeCrypto {
  hash?: (algorithm: string, data: string, encoding: 'hex') => string;
  createHash?: (algorithm: string) => { update(data: string, encoding: 'utf8'): { digest(encoding: 'hex'): string } };
}

/**
 * The SHA-256 of `text` (UTF-8), in hex; internal.
 *
 * @param text - what to hash
 * @example
 * ```ts
 * sha256('abc'); // 'ba7816bf…f20015ad'
 * ```
 */
export const sha256: NativeHash = nativeSha256() ?? portableSha256;
