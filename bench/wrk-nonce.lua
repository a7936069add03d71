-- wrk script: POSTs the OCSP request in $OCSP_BENCH_BODY (hex) with a fresh random 16-byte nonce each time,
-- at byte offset $OCSP_BENCH_NONCE_OFFSET. With $OCSP_BENCH_EXPECT=ocsp (the default) an answer counts as ok
-- only when it is HTTP 200 and a successful OCSPResponse (SEQUENCE whose first element is ENUMERATED 0:
-- 0a 01 00) longer than the 5-byte error form; with "signature" (the bare signing server, which answers with
-- the signature alone) any HTTP 200 with a body of 64 bytes or more counts. Everything else counts as refused.
local hex = os.getenv("OCSP_BENCH_BODY")
local offset = tonumber(os.getenv("OCSP_BENCH_NONCE_OFFSET"))
local expect = os.getenv("OCSP_BENCH_EXPECT") or "ocsp"
local body = (hex:gsub("..", function(c) return string.char(tonumber(c, 16)) end))
local head, tail = body:sub(1, offset), body:sub(offset + 17)
local headers = { ["Content-Type"] = "application/ocsp-request" }
local threads = {}

-- wrk's default resolve opens and closes a test connection to the server before the run. `openssl ocsp`
-- (3.0, openssl/openssl#31129) spins forever on a connection closed before its request line, so the test
-- connection is skipped for every server alike: the address is used as looked up.
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup(host, service)
end

function setup(thread) table.insert(threads, thread) end

function init(args)
  ok, refused = 0, 0
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
  local n = {}
  for i = 1, 16 do n[i] = string.char(math.random(0, 255)) end
  return wrk.format("POST", "/", headers, head .. table.concat(n) .. tail)
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
  local good
  if expect == "signature" then good = status == 200 and #b >= 64 else good = status == 200 and successful(b) end
  if good then ok = ok + 1 else refused = refused + 1 end
end

function done(summary, latency, requests)
  local okTotal, refusedTotal = 0, 0
  for _, t in ipairs(threads) do
    okTotal = okTotal + t:get("ok")
    refusedTotal = refusedTotal + t:get("refused")
  end
  local e = summary.errors
  io.write(string.format('RESULT {"ok":%d,"refused":%d,"socketErrors":%d,"seconds":%f,"p50ms":%f,"p99ms":%f}\n',
    okTotal, refusedTotal, e.connect + e.read + e.write + e.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
