//! `POST /v1/compress` through the real router: the query string, `Accept`, `Content-Type` and the
//! body come from the input (lines 1-3, then the rest). Never a 5xx; every 4xx is a JSON error
//! `{"error":{"code","message"}}`; a 200 is an image that probes, or the JSON report.
#![no_main]

use compressor_fuzz::server::{check_response, request, send, split_lines};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    compressor_fuzz::panic_policy();
    let [query, accept, content_type, body] = split_lines(data);
    let Some(request) = request("/v1/compress", query, &[("accept", accept), ("content-type", content_type)], body) else { return };
    let json = String::from_utf8_lossy(accept).contains("json");
    let (status, headers, body) = send(request);
    check_response(status, &headers, &body, json);
});
