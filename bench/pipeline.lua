-- wrk script: pipeline BENCH_PIPELINE (default 16) GET requests for the URL's path per write.
-- Used by bench/run.sh for the pipelined rows; wrk counts every response, so req/s stays
-- comparable with the plain rows.
init = function(args)
  local depth = tonumber(os.getenv("BENCH_PIPELINE") or "16")
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil, nil)
  end
  req = table.concat(r)
end

request = function()
  return req
end
