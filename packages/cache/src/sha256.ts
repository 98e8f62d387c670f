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

type NativeHash = (data: string | Uint8Array) => string;

/**
 * The SHA-256 of `data` (a string as UTF-8), in hex, with @noble/hashes:
 * what {@link sha256} falls back to where the runtime has no native digest; internal.
 *
 * @param data - what to hash
 */
export function portableSha256(data: string | Uint8Array): string {
  return bytesToHex(digest(typeof data === 'string' ? utf8ToBytes(data) : data));
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
    return (data) => hash('sha256', data, 'hex');
  }
  if (typeof crypto?.createHash === 'function') {
    const createHash = crypto.createHash;
    return (data) => (typeof data === 'string' ? createHash('sha256').update(data, 'utf8') : createHash('sha256').update(data)).digest('hex');
  }
  return undefined;
}

/** The part of `node:crypto` used here. */
interface NodeCrypto {
  hash?: (algorithm: string, data: string | Uint8Array, encoding: 'hex') => string;
  createHash?: (algorithm: string) => {
    update(data: string, encoding: 'utf8'): { digest(encoding: 'hex'): string };
    update(data: Uint8Array): { digest(encoding: 'hex'): string };
  };
}

/**
 * The SHA-256 of `data` (a string as UTF-8), in hex; internal.
 *
 * @param data - what to hash
 * @example
 * ```ts
 * sha256('abc'); // 'ba7816bf…f20015ad'
 * ```
 */
export const sha256: NativeHash = nativeSha256() ?? portableSha256;
