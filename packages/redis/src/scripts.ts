/*
 * Why compare-and-set and not one Lua script per algorithm. Every sluice
 * middleware keeps its state as a pure reducer over plain JSON, the same
 * reducers the in-memory store runs. A script per algorithm would be a
 * second implementation of the sliding window, the circuit and the budget,
 * in Lua, to keep in step with the TypeScript one forever; compare-and-set
 * runs the very same reducer in the process and asks Redis only to write
 * its result if nothing else wrote since the value it was computed from.
 * That keeps every middleware unchanged, makes the guarantees the memory
 * store proves (no window over its limit, no budget overspent) hold across
 * processes by linearisability, and costs one round trip when the process
 * already holds the record's current version (see redis-store.ts).
 *
 * A record is one string key, `<version>|<json>`. Versions are unique per
 * write (a random instance id and a counter), never a counter that restarts
 * when a key expires, so a version seen once can never come back: no ABA.
 */

/**
 * KEYS[1] the record; ARGV[1] the version the caller computed from ('' for
 * absent), ARGV[2] the new `<version>|<json>`, ARGV[3] the TTL in ms ('' for
 * none; 0 or less deletes, as the memory store's immediate expiry does),
 * ARGV[4] '1' to read the server's TIME. Returns { written (1/0), the
 * current record on a conflict ('' if absent), TIME seconds, TIME
 * microseconds (0, 0 when not asked) }: the server's clock comes back with
 * the decisions that ask for it, so the process's offset to it stays
 * measured at no extra round trip.
 */
export const compareAndSet = `
local current = redis.call('GET', KEYS[1])
local time = { 0, 0 }
if ARGV[4] == '1' then time = redis.call('TIME') end
local version = ''
if current then
  local bar = string.find(current, '|', 1, true)
  if bar then version = string.sub(current, 1, bar - 1) end
end
if version ~= ARGV[1] then
  return { 0, current or '', time[1], time[2] }
end
local ttl = tonumber(ARGV[3])
if ttl == nil then
  redis.call('SET', KEYS[1], ARGV[2])
elseif ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('DEL', KEYS[1])
end
return { 1, '', time[1], time[2] }
`;

/** SHA-1 of {@link compareAndSet} (a test keeps it equal), so the fast path sends EVALSHA. */
export const compareAndSetSha = '5d5b12d60994f816ce444a15b1492cf9f97b1169';
