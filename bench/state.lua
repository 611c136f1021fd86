-- wrk script for bench/state.sh: counts responses by status and prints one summary line.
--
--   wrk ... -s bench/state.lua URL -- create TAG   # PUT /resources/c-TAG-<thread>-<n>, small
--                                                 # text/plain body, unique names; wants 201
--   wrk ... -s bench/state.lua URL -- get CODE     # GET the URL as given (headers from -H);
--                                                 # wants CODE
--
-- done() prints: "state: wanted=W good=G other=O codes=CODE:N,... duration_us=D"
-- (G responses had the wanted status, O did not; codes lists the unwanted ones).

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or "get"
  n = 0
  good = 0
  other = 0
  counts = {}
  codes = ""
  if mode == "create" then
    tag = args[2] or "x"
    wanted = 201
    wrk.method = "PUT"
    wrk.headers["Content-Type"] = "text/plain"
    wrk.body = "a small resource body\n"
  else
    wanted = tonumber(args[2] or "200")
  end
end

function request()
  if mode == "create" then
    n = n + 1
    return wrk.format("PUT", "/resources/c-" .. tag .. "-" .. id .. "-" .. n)
  end
  return wrk.format(nil, nil)
end

function response(status, headers, body)
  if status == wanted then
    good = good + 1
  else
    other = other + 1
    counts[status] = (counts[status] or 0) + 1
    local parts = {}
    for c, k in pairs(counts) do
      parts[#parts + 1] = c .. ":" .. k
    end
    codes = table.concat(parts, ",")
  end
end

function done(summary, latency, requests)
  local g, o, all = 0, 0, {}
  local w = 0
  for _, t in ipairs(threads) do
    g = g + (t:get("good") or 0)
    o = o + (t:get("other") or 0)
    w = t:get("wanted") or w
    local c = t:get("codes")
    if c and c ~= "" then all[#all + 1] = c end
  end
  io.write(string.format("state: wanted=%s good=%d other=%d codes=%s duration_us=%d\n",
    tostring(w), g, o, (#all > 0 and table.concat(all, ",") or "-"), summary.duration))
end
