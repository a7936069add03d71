-- wrk script: rotates through the requests in the file $OCSP_BENCH_FILE, one a line: with
-- $OCSP_BENCH_METHOD=GET each line is a request path (/{url-encoded base64 DER}), with POST the hex of a DER
-- OCSPRequest (sent as application/ocsp-request to $OCSP_BENCH_POST_PATH, default "/"). Each thread starts at
-- its own place in the list. An answer counts as ok only when it is HTTP 200 and a successful OCSPResponse
-- (SEQUENCE whose first element is ENUMERATED 0: 0a 01 00) longer than the 5-byte error form; everything
-- else is counted by kind and, with socket errors, reported as failed.
local file = os.getenv("OCSP_BENCH_FILE")
local method = os.getenv("OCSP_BENCH_METHOD") or "POST"
local postPath = os.getenv("OCSP_BENCH_POST_PATH") or "/"
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local function unhex(h)
  return (h:gsub("..", function(c) return string.char(tonumber(c, 16)) end))
end

function init(args)
  ok, non200, ocspError, short = 0, 0, 0, 0
  reqs = {}
  local headers = { ["Content-Type"] = "application/ocsp-request" }
  for line in io.lines(file) do
    if #line > 0 then
      if method == "GET" then
        reqs[#reqs + 1] = wrk.format("GET", line)
      else
        reqs[#reqs + 1] = wrk.format("POST", postPath, headers, unhex(line))
      end
    end
  end
  n = #reqs
  -- threads spread evenly over the list (id is set by setup before init runs)
  i = math.floor((id or 0) * n / (tonumber(os.getenv("OCSP_BENCH_THREADS")) or 1)) % n
end

function request()
  i = i % n + 1
  return reqs[i]
end

-- A successful OCSPResponse: 30 <len> 0a 01 00 ... (length in short or long form).
local function successful(b)
  if #b <= 5 or b:byte(1) ~= 0x30 then return false end
  local l = b:byte(2)
  local o = 3
  if l >= 0x80 then o = 3 + (l - 0x80) end
  return b:byte(o) == 0x0a and b:byte(o + 1) == 0x01 and b:byte(o + 2) == 0x00
end

function response(status, hdrs, b)
  if status ~= 200 then
    non200 = non200 + 1
  elseif #b <= 5 then
    short = short + 1
  elseif successful(b) then
    ok = ok + 1
  else
    ocspError = ocspError + 1
  end
end

function done(summary, latency, requests)
  local t = { ok = 0, non200 = 0, ocspError = 0, short = 0 }
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + th:get(k) end
  end
  local e = summary.errors
  local socket = e.connect + e.read + e.write + e.timeout
  local failed = t.non200 + t.ocspError + t.short + socket
  io.write(string.format('RESULT {"ok":%d,"failed":%d,"non200":%d,"ocspError":%d,"short":%d,"socketErrors":%d,' ..
    '"requests":%d,"seconds":%f,"p50ms":%f,"p99ms":%f,"requestsInList":%d}\n',
    t.ok, failed, t.non200, t.ocspError, t.short, socket, summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, threads[1]:get("n")))
end
