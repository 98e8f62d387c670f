import { hash, timingSafeEqual } from 'node:crypto';
import { ValidationError } from '@sluice/core';

/** A virtual key as configured: the key or the variable holding it, and its tenant. */
export type KeyEntry = { key: string; tenant: string } | { keyEnv: string; tenant: string };

/** Finds the tenant of a presented key, or `undefined` for an unknown or missing key. */
export type TenantOf = (authorization: string | undefined) => string | undefined;

// One-shot: a Hash object per request costs a proxy more than the digest itself.
const digest = (text: string) => hash('sha256', text, 'buffer');
/**
 * A presented key's digest, in a buffer kept for it: the digest as a
 * `binary` (latin1) string, one character per byte, written into this
 * buffer costs half of a new Buffer per request, whose memory lives
 * outside the heap. The lookup is synchronous, so one buffer serves every
 * request.
 */
const presentedDigest = Buffer.alloc(32);

/**
 * The virtual keys as a lookup from an `Authorization` header to a tenant.
 * Keys are compared as sha256 digests with `timingSafeEqual`, every key
 * every time, so neither a key's length nor its first differing byte
 * shows in the time an answer takes.
 *
 * @param entries - the configured keys
 * @param env - where `keyEnv` keys are read from
 * @throws ValidationError naming a `keyEnv` that is unset or empty (`keys.1.keyEnv`)
 */
export function apiKeys(entries: readonly KeyEntry[], env: NodeJS.ProcessEnv): TenantOf {
  const known = entries.map((entry, index) => {
    const key = 'key' in entry ? entry.key : env[entry.keyEnv];
    if (key === undefined || key === '') throw new ValidationError(`keys.${index}.keyEnv`, `the environment variable ${(entry as { keyEnv: string }).keyEnv} is not set`);
    return { digest: digest(key), tenant: entry.tenant };
  });
  return (authorization) => {
    const match = authorization === undefined ? undefined : /^Bearer +(\S+) *$/i.exec(authorization);
    if (!match) return undefined;
    presentedDigest.write(hash('sha256', match[1] as string, 'binary'), 0, 'binary');
    let tenant: string | undefined;
    for (const entry of known) if (timingSafeEqual(entry.digest, presentedDigest) && tenant === undefined) tenant = entry.tenant;
    return tenant;
  };
}
