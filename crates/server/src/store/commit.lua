-- A transaction's commit in one shard (one hash tag, so one slot), in one atomic step: check
-- that every value the transaction read is unchanged, check the family limits, then write.
--
-- KEYS    c checked keys; then per write its value key and its shard index; then per counter
--         its shard's key ({tag}:counters:FAMILY); then the shard's counters index (if any)
-- ARGV    c, w (writes), d (counters); then c expectations: 'v' .. value (the value read),
--         'x' (read as existing), 'n' (read as absent); then per write: the key (the index
--         member), 's' or 'd' (set or delete), the value (empty for a delete); then per
--         counter: its name, the delta, its limit (-1: none), the total the transaction read,
--         and the other shards' part of it
--
-- Returns 1 if committed, 0 if something read changed or a limit would now be passed (nothing
-- was written: the transaction runs again on fresh values).

local c, w, d = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local a = 4
for i = 1, c do
  local e = ARGV[a]
  a = a + 1
  local t = string.sub(e, 1, 1)
  if t == 'v' then
    if redis.call('GET', KEYS[i]) ~= string.sub(e, 2) then
      return 0
    end
  elseif (redis.call('EXISTS', KEYS[i]) == 1) ~= (t == 'x') then
    return 0
  end
end
local wa = a
local ca = a + 3 * w
local ck = c + 2 * w + 1
-- A limit the transaction saw room under, but that concurrent writers have filled since:
-- run again, so that it decides on what is there now. (A write that was over the limit when
-- read was let through by the operation itself: it does not check, and neither does this.)
for j = 0, d - 1 do
  local b = ca + 5 * j
  local delta, limit = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
  local seen, others = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  if delta > 0 and limit >= 0 and seen + delta <= limit then
    local now = tonumber(redis.call('GET', KEYS[ck + j]) or '0') + others
    if now + delta > limit then
      return 0
    end
  end
end
for j = 0, w - 1 do
  local vk, ik = KEYS[c + 2 * j + 1], KEYS[c + 2 * j + 2]
  local b = wa + 3 * j
  if ARGV[b + 1] == 's' then
    redis.call('SET', vk, ARGV[b + 2])
    redis.call('ZADD', ik, 0, ARGV[b])
  else
    redis.call('DEL', vk)
    redis.call('ZREM', ik, ARGV[b])
  end
end
for j = 0, d - 1 do
  local b = ca + 5 * j
  local delta = tonumber(ARGV[b + 1])
  if delta ~= 0 then
    local v = redis.call('INCRBY', KEYS[ck + j], delta)
    if v < 0 then
      redis.call('SET', KEYS[ck + j], 0)
    end
    redis.call('ZADD', KEYS[ck + d], 0, ARGV[b])
  end
end
return 1
