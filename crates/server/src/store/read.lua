-- A transaction's reads in one shard (one hash tag, so one slot), in one atomic step.
--
-- KEYS    the point keys, then one shard index per scan  {tag}:index:TABLE
-- ARGV[1] how many point keys (n); ARGV[2 .. n+1] 'v' (read the value) or 'e' (only whether
--         it exists) for each; then three per scan: the value-key prefix ({tag}:TABLE:),
--         the ZRANGEBYLEX lower bound, and how many entries at most
--
-- Returns one entry per point key (the value or nil; 1 or 0), then one per scan: a flat list
-- key, value, key, value … of the indexed keys that have a value.

local n = tonumber(ARGV[1])
local out = {}
for i = 1, n do
  if ARGV[1 + i] == 'e' then
    out[i] = redis.call('EXISTS', KEYS[i])
  else
    out[i] = redis.call('GET', KEYS[i])
  end
end
local a = n + 2
for j = n + 1, #KEYS do
  local prefix, min, limit = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  local rows = {}
  for _, m in ipairs(redis.call('ZRANGEBYLEX', KEYS[j], min, '+', 'LIMIT', 0, limit)) do
    local v = redis.call('GET', prefix .. m)
    if v then
      rows[#rows + 1] = m
      rows[#rows + 1] = v
    end
  end
  out[j] = rows
end
return out
