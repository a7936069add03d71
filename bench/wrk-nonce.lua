-- wrk script: POSTs the OCSP request in $OCSP_BENCH_BODY (hex) with a fresh random 16-byte nonce each time,
-- at byte offset $OCSP_BENCH_NONCE_OFFSET; counts successful answers (longer than the 5-byte error form).
local hex = os.getenv("OCSP_BENCH_BODY")
local offset = tonumber(os.getenv("OCSP_BENCH_NONCE_OFFSET"))
local body = (hex:gsub("..", function(c) return string.char(tonumber(c, 16)) end))
local head, tail = body:sub(1, offset), body:sub(offset + 17)
local headers = { ["Content-Type"] = "application/ocsp-request" }
local threads = {}

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

function response(status, hdrs, b)
  if status == 200 and #b > 5 then ok = ok + 1 else refused = refused + 1 end
end

function done(summary, latency, requests)
  local okTotal, refusedTotal = 0, 0
  for _, t in ipairs(threads) do
    okTotal = okTotal + t:get("ok")
    refusedTotal = refusedTotal + t:get("refused")
  end
  io.write(string.format('RESULT {"ok":%d,"refused":%d,"seconds":%f,"p50ms":%f,"p99ms":%f}\n',
    okTotal, refusedTotal, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
