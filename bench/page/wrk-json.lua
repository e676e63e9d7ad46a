-- wrk script of bench/page/run.sh: prints one JSON line with the round's figures when wrk is
-- done (throughput from wrk's own request count and duration, latency percentiles in µs).
-- With WRK_STOP_AFTER=N in the environment, wrk exits after N responses, printing only
-- {"requests": N}: with one connection (-c1) that is exactly N requests, however long they take
-- (wrk's own thread:stop() would still wait out the whole -d duration).
local stop_after = tonumber(os.getenv("WRK_STOP_AFTER") or "")
local responses = 0
if stop_after then
  response = function(status, headers, body)
    if status < 200 or status > 299 then
      io.stderr:write(string.format("wrk-json.lua: HTTP %d\n", status))
      os.exit(1)
    end
    responses = responses + 1
    if responses >= stop_after then
      io.write(string.format('{"requests": %d}\n', responses))
      io.flush()
      os.exit(0)
    end
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "errors": %d, "non_2xx": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
