-- Load test of the old route with wrk, as the k6 scripts call it, for example:
--   IMG=../shared/corpus/png_real/screenshot/rich__features.png wrk -t1 -c1 -d45s --timeout 60s --latency \
--     -s scripts/wrk/legacy.lua http://127.0.0.1:8080/compress-image
-- The old k6 scenario: multipart image_files plus a strategy=bimg field, to /compress-image
local f = assert(io.open(os.getenv("IMG"), "rb"))
local img = f:read("*all")
f:close()
local b = "----wrkboundary7d93"
wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. b
wrk.body = "--" .. b .. "\r\n" ..
  'Content-Disposition: form-data; name="strategy"\r\n\r\nbimg\r\n' ..
  "--" .. b .. "\r\n" ..
  'Content-Disposition: form-data; name="image_files"; filename="rich__features.png"\r\n' ..
  "Content-Type: image/png\r\n\r\n" .. img .. "\r\n" ..
  "--" .. b .. "--\r\n"
