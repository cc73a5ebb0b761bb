-- Load test of POST /v1/compress with wrk (apt-get install wrk), for example:
--   IMG=../shared/corpus/png_real/screenshot/rich__features.png wrk -t2 -c16 -d90s --timeout 60s --latency \
--     -s scripts/wrk/v1.lua http://127.0.0.1:8080/v1/compress
-- POST the image as the raw body to /v1/compress
local f = assert(io.open(os.getenv("IMG"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "application/octet-stream"
