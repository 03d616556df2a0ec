-- request.lua: wrk script for bench/http/run.  ABIS_BENCH_OP is "verify" or
-- "identify"; ABIS_BENCH_PROBES the probes file of populate.c ("TOKEN BASE64"
-- lines); ABIS_BENCH_KEY the client's API key.  Each wrk thread builds all
-- requests once and then sends them round-robin from a random start.
local op = os.getenv("ABIS_BENCH_OP") or "verify"
local file = os.getenv("ABIS_BENCH_PROBES")
local key = os.getenv("ABIS_BENCH_KEY")
local reqs, n, idx = {}, 0, 0

init = function(args)
  local headers = { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }
  for line in io.lines(file) do
    local token, b64 = line:match("^(%x+) (%S+)$")
    local tmpl = '[{"modality":"face","vector_b64":"' .. b64 .. '"}]'
    n = n + 1
    if op == "identify" then
      reqs[n] = wrk.format("POST", "/v1/identify", headers,
        '{"segment":"bench","purpose":"bench","k":10,"templates":' .. tmpl .. '}')
    else
      reqs[n] = wrk.format("POST", "/v1/subjects/" .. token .. "/verify", headers,
        '{"purpose":"bench","templates":' .. tmpl .. '}')
    end
  end
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
  idx = math.random(n) - 1
end

request = function()
  idx = idx % n + 1
  return reqs[idx]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT op=%s requests=%d seconds=%.2f rps=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
    "errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d\n",
    op, summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.status, e.timeout))
end
