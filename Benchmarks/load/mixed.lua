-- wrk script: POST /evaluate mixing the small seed graph with a 10,000-node chain (1 large in LARGE_EVERY requests).
-- Every response is checked: status 200 and, from the body, the value the graph must evaluate to. Per-thread
-- counts are summed in done(). Env: LARGE_EVERY (default 10), STOP_AFTER (per-thread request count; 0 = no stop).
local small = [[{"nodes":[{"id":"a","value":2.0,"label":"a"},{"id":"b","value":-3.0},{"id":"c","value":10.0},]] ..
  [[{"id":"e","op":"mul","inputs":["a","b"]},{"id":"d","op":"add","inputs":["e","c"]},]] ..
  [[{"id":"p","op":"pow","inputs":["d"],"exponent":2}],"output":"d"}]]

-- 10,000 nodes: c = 1, n0 = 0, n_i = n_(i-1) + c for i = 1..9998; value 9998, d value / d c = 9998.
local parts = {[[{"nodes":[{"id":"c","value":1},{"id":"n0","value":0}]]}
for i = 1, 9998 do parts[#parts + 1] = string.format(',{"id":"n%d","op":"add","inputs":["n%d","c"]}', i, i - 1) end
parts[#parts + 1] = "]}"
local large = table.concat(parts)

local headers = {["Content-Type"] = "application/json"}
local smallRequest, largeRequest
local largeEvery = tonumber(os.getenv("LARGE_EVERY") or "10")
local stopAfter = tonumber(os.getenv("STOP_AFTER") or "0")

local threads = {}
function setup(thread) table.insert(threads, thread) end

function init(args)
  smallRequest = wrk.format("POST", "/evaluate", headers, small)
  largeRequest = wrk.format("POST", "/evaluate", headers, large)
  sent, ok, bad, non200, smallOK, largeOK, sample = 0, 0, 0, 0, 0, 0, ""
end

function request()
  sent = sent + 1
  if largeEvery > 0 and sent % largeEvery == 0 then return largeRequest end
  return smallRequest
end

function response(status, hdrs, body)
  if status ~= 200 then
    non200 = non200 + 1
    if sample == "" then sample = status .. " " .. string.sub(body, 1, 200) end
  elseif string.find(body, '"output":"d","value":4.0,', 1, true) then
    smallOK = smallOK + 1
  elseif string.find(body, '"output":"n9998","value":9998.0,', 1, true)
      and string.find(body, '{"id":"c","data":1.0,"grad":9998.0}', 1, true) then
    largeOK = largeOK + 1
  else
    bad = bad + 1
    if sample == "" then sample = "wrong body: " .. string.sub(body, 1, 200) end
  end
  if stopAfter > 0 and smallOK + largeOK + bad + non200 >= stopAfter then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local s, l, b, n, samples = 0, 0, 0, 0, {}
  for _, t in ipairs(threads) do
    s = s + t:get("smallOK"); l = l + t:get("largeOK"); b = b + t:get("bad"); n = n + t:get("non200")
    local sm = t:get("sample"); if sm ~= nil and sm ~= "" then table.insert(samples, sm) end
  end
  local e = summary.errors
  io.write(string.format(
    "CHECK requests=%d small_ok=%d large_ok=%d wrong_body=%d non200=%d connect_err=%d read_err=%d write_err=%d timeout_err=%d status_err=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f rps=%.0f\n",
    summary.requests, s, l, b, n, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests / (summary.duration / 1e6)))
  for _, sm in ipairs(samples) do io.write("SAMPLE " .. sm .. "\n") end
end
