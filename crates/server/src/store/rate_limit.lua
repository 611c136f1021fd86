-- One sliding-window rate-limit request, atomically: `rate::sliding_window` (rate.rs) and the
-- key accounting of `ops::rate_limit` (ops.rs), step for step, on the same stored values.
--
-- All four keys are in the rate-limit key's shard (one hash tag: see redis.rs):
-- KEYS[1] the key's value                  {tag}:rates:KEY
-- KEYS[2] the shard's rates index          {tag}:index:rates
-- KEYS[3] the shard's part of the family   {tag}:counters:FAMILY
-- KEYS[4] the shard's counters index       {tag}:index:counters
-- ARGV    KEY, FAMILY, now (ms), limit, period (ms), --max-keys, fail open (1 or 0),
--         bucket width (0: an exact log), the family's keys in the other shards ('?': not
--         read yet), n: how many requests arrive at `now` (a batch; see redis.rs)
--
-- A batch of n decides exactly as n requests at `now` one after another would: the first
-- `admitted` pass (the i-th, from 0, with `remaining - i` left), the others are refused.
-- Returns {status, admitted, remaining, reset, refused reset, refused retry}, times in seconds
-- rounded up: status 1 decided as said, 2 every request passed unrecorded (a new server-wide
-- key past --max-keys; each with `remaining`), -1 a new key past --max-keys, -2 a new key and
-- the other shards' count is needed (nothing changed: ask again with it).

local raw = redis.call('GET', KEYS[1])
local now = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local period = tonumber(ARGV[5])
local width = tonumber(ARGV[8])
local n = tonumber(ARGV[10] or '1')
local record = true
if not raw then
  if ARGV[9] == '?' then
    return {-2, 0, 0, 0, 0, 0}
  end
  local keys = tonumber(redis.call('GET', KEYS[3]) or '0') + tonumber(ARGV[9])
  if keys >= tonumber(ARGV[6]) then
    if ARGV[7] ~= '1' then
      return {-1, 0, 0, 0, 0, 0}
    end
    record = false
    n = 1
  end
end

-- The stored entries, if the value is a window of this shape (else: no state).
local entries = {}
if raw then
  local _, w, list = string.match(raw, '^S(%d+);(%d+);([%d,]*)$')
  if w and tonumber(w) == width then
    for n in string.gmatch(list, '%d+') do
      entries[#entries + 1] = tonumber(n)
    end
  end
end

local function ceil_secs(ms)
  return math.ceil(ms / 1000)
end

local admitted, remaining, reset, value = 0, 0, 0, nil
local refused_reset, refused_retry = 0, 0

if width == 0 then
  -- The exact log of admission times.
  local times = {}
  for _, t in ipairs(entries) do
    if t + period > now then
      times[#times + 1] = t
    end
  end
  table.sort(times)
  local count = #times
  admitted = math.max(math.min(n, limit - count), 0)
  if admitted > 0 then
    for _ = 1, admitted do
      times[#times + 1] = now
    end
    table.sort(times)
    local expires = times[#times] + period
    local parts = {}
    for i, t in ipairs(times) do
      parts[i] = string.format('%d', t)
    end
    value = string.format('S%d;0;', expires) .. table.concat(parts, ',')
    remaining, reset = limit - count - 1, expires - now
    count = #times
  end
  if admitted < n then
    local leaves = times[count - limit + 1] + period
    refused_reset = times[count] + period - now
    refused_retry = math.max(leaves - now, 1)
  end
else
  -- Buckets: bucket i counts until (i + 1) * width + period - 1.
  local lowest = 0
  if now + 1 > period then
    lowest = math.floor((now + 1 - period) / width)
  end
  local current = math.floor(now / width)
  local counts, order, total = {}, {}, 0
  for k = 1, #entries - 1, 2 do
    local i, c = entries[k], entries[k + 1]
    if i >= lowest and c > 0 then
      if not counts[i] then
        counts[i] = 0
        order[#order + 1] = i
      end
      counts[i] = counts[i] + c
      total = total + c
    end
  end
  local function leaves(i)
    return (i + 1) * width + period - 1
  end
  admitted = math.max(math.min(n, limit - total), 0)
  if admitted > 0 then
    if not counts[current] then
      counts[current] = 0
      order[#order + 1] = current
    end
    counts[current] = counts[current] + admitted
    table.sort(order)
    local expires = leaves(order[#order])
    local parts = {}
    for _, i in ipairs(order) do
      parts[#parts + 1] = string.format('%d,%d', i, counts[i])
    end
    value = string.format('S%d;%d;', expires, width) .. table.concat(parts, ',')
    remaining, reset = limit - total - 1, expires - now
    total = total + admitted
  end
  if admitted < n then
    table.sort(order)
    local left, next_at = total, now
    for _, i in ipairs(order) do
      left = left - counts[i]
      if left < limit then
        next_at = leaves(i)
        break
      end
    end
    refused_reset = math.max(leaves(order[#order]) - now, 0)
    refused_retry = math.max(next_at - now, 1)
  end
end

local status = 1
if admitted > 0 then
  if record then
    redis.call('SET', KEYS[1], value)
    redis.call('ZADD', KEYS[2], 0, ARGV[1])
    if not raw then
      redis.call('INCR', KEYS[3])
      redis.call('ZADD', KEYS[4], 0, ARGV[2])
    end
  else
    status = 2
  end
end
return {status, admitted, remaining, ceil_secs(reset), ceil_secs(refused_reset), ceil_secs(refused_retry)}
