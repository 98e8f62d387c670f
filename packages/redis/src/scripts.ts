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
 * Compare-and-set on every key it is given, each on its own. KEYS[i] is a
 * record; ARGV[1] is '1' to read the server's TIME; then three arguments
 * per key: ARGV[3i-1] the version the caller computed from ('' for
 * absent), ARGV[3i] the new `<version>|<json>` ('' when the value is
 * unchanged: then only the version is checked and the TTL refreshed, so
 * the record keeps its version and nobody else's copy of it goes stale),
 * ARGV[3i+1] the TTL in ms
 * ('' for none; 0 or less deletes, as the memory store's immediate expiry
 * does). Returns { TIME seconds, TIME microseconds (0, 0 when not asked),
 * then two entries per key: 1 and '' when written; 0 and the current
 * record ('' if absent) on a conflict; -1 and the error when the key holds
 * something GET cannot read }. The server's clock comes back with the
 * decisions that ask for it, so the process's offset to it stays measured
 * at no extra round trip.
 *
 * Many keys in one call keep a process that decides over many records at
 * once at one command per batch, not one per decision (cas-batcher.ts).
 * No key's outcome depends on another's: it is the single-key
 * compare-and-set run once per key, a conflict on one key writes nothing
 * for it and leaves the others written, and a key of a foreign type fails
 * its own callers only (`pcall`: an error raised in a script would abort
 * it half-way, failing every key's callers after some writes landed).
 */
export const compareAndSet = `
local time = { 0, 0 }
if ARGV[1] == '1' then time = redis.call('TIME') end
local reply = { time[1], time[2] }
for i = 1, #KEYS do
  local key = KEYS[i]
  local at = 3 * i - 1
  local current = redis.pcall('GET', key)
  if type(current) == 'table' then
    reply[#reply + 1] = -1
    reply[#reply + 1] = tostring(current.err)
  else
    local version = ''
    if current then
      local bar = string.find(current, '|', 1, true)
      if bar then version = string.sub(current, 1, bar - 1) end
    end
    if version ~= ARGV[at] then
      reply[#reply + 1] = 0
      reply[#reply + 1] = current or ''
    elseif ARGV[at + 1] == '' then
      local ttl = tonumber(ARGV[at + 2])
      if ttl ~= nil and ttl > 0 then redis.call('PEXPIRE', key, ttl) end
      reply[#reply + 1] = 1
      reply[#reply + 1] = ''
    else
      local ttl = tonumber(ARGV[at + 2])
      if ttl == nil then
        redis.call('SET', key, ARGV[at + 1])
      elseif ttl > 0 then
        redis.call('SET', key, ARGV[at + 1], 'PX', ttl)
      else
        redis.call('DEL', key)
      end
      reply[#reply + 1] = 1
      reply[#reply + 1] = ''
    end
  end
end
return reply
`;

/** SHA-1 of {@link compareAndSet} (a test keeps it equal), so the fast path sends EVALSHA. */
export const compareAndSetSha = 'd1043935e31ce9eaf489f6c4cd06d3e706cd9175';
