-- The baseline of the ask benchmark: GET /api/chatbots/{slug} with the same tokens, through the
-- same gateway, token check and rate limits, answered by chat from one PostgreSQL row.
local tokens = dofile(os.getenv("ASK_TOKENS"))
local slug = os.getenv("ASK_SLUG")
local n = 0
request = function()
  n = n + 1
  wrk.headers["authorization"] = "Bearer " .. tokens[(n % #tokens) + 1]
  return wrk.format("GET", "/api/chatbots/" .. slug)
end
done = function(summary, latency)
  io.write(string.format("RESULT requests=%d non200=%d p50_ms=%.2f p99_ms=%.2f mean_ms=%.2f rps=%.1f\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000,
    summary.requests / (summary.duration / 1e6)))
end
