-- wrk script for POST /api/chatbots/{slug}/ask: each request carries one of the guest tokens
-- in tokens.lua (round robin) and one of a few realistic questions, in Korean and English,
-- answered and unanswered. With ASK_UNIQUE set, each question gets a serial number so that no
-- two are the same text (no question embedding comes from the cache).
local tokens = dofile(os.getenv("ASK_TOKENS"))
local slug = os.getenv("ASK_SLUG")
local questions = {
  "Which database did she migrate the warehouse to?",
  "How many engineers did she manage?",
  "Why is she applying for this role?",
  "어떤 데이터베이스로 웨어하우스를 이전했나요?",
  "How did she reduce on-call pages?",
  "What is her favourite pizza topping?",
  "Which programming languages does she use?",
  "CI 시간을 얼마나 줄였나요?",
}
local n = 0
local unique = os.getenv("ASK_UNIQUE") ~= nil
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
request = function()
  n = n + 1
  local q = questions[(n % #questions) + 1]
  if unique then q = q .. " (" .. tostring(n) .. "-" .. tostring(math.random(1000000)) .. ")" end
  wrk.headers["authorization"] = "Bearer " .. tokens[(n % #tokens) + 1]
  return wrk.format(nil, "/api/chatbots/" .. slug .. "/ask", nil, '{"question":"' .. q .. '"}')
end
local non200 = 0
response = function(status)
  if status ~= 200 then non200 = non200 + 1 end
end
done = function(summary, latency)
  io.write(string.format("RESULT requests=%d non200=%d p50_ms=%.2f p99_ms=%.2f mean_ms=%.2f rps=%.1f\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000,
    summary.requests / (summary.duration / 1e6)))
end
