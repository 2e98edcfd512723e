-- wrk: GET /v1/images/{id}/content?w=…&format=webp&q=80 with a bearer token ($TOKEN).
-- $IDS is a space-separated list of image ids. MODE=miss walks w = 700..900 over every id, so
-- each request until the (ids × 201) combinations run out asks for an output never made before;
-- MODE=hit asks for w=800 of the first id every time (made once before the run).
-- The x-pixeld-cache response header is counted, so the report says how many were hits.
local ids = {}
for id in string.gmatch(os.getenv("IDS"), "%S+") do ids[#ids + 1] = id end
local mode = os.getenv("MODE")
local token = os.getenv("TOKEN")
local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  threads[#threads + 1] = thread
end

function init(args)
  i = 0
  hits = 0
  misses = 0
  nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
end

function request()
  local id, w
  if mode == "hit" then
    id, w = ids[1], 800
  else
    local n = tid + nthreads * i
    id = ids[(n % #ids) + 1]
    w = 700 + (math.floor(n / #ids) % 201)
  end
  i = i + 1
  return wrk.format("GET", "/v1/images/" .. id .. "/content?w=" .. w .. "&format=webp&q=80",
    { ["Authorization"] = "Bearer " .. token })
end

function response(status, headers, body)
  local c = headers["x-pixeld-cache"] or headers["X-Pixeld-Cache"]
  if c == "hit" then hits = hits + 1 elseif c == "miss" then misses = misses + 1 end
end

function done(summary, latency, requests)
  local h, m = 0, 0
  for _, t in ipairs(threads) do
    h = h + t:get("hits")
    m = m + t:get("misses")
  end
  local secs = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout + summary.errors.status
  io.write(string.format(
    "RESULT requests=%d rps=%.1f p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f errors=%d non2xx=%d hits=%d misses=%d\n",
    summary.requests, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    errors, summary.errors.status, h, m))
end
