//! `POST /compress-image` (the old server's multipart form) through the real router: the query,
//! the `Content-Type` (with its boundary) and the multipart body come from the input (lines 1-2,
//! then the rest). Never a 5xx; every 4xx is a JSON error; a 200 is an image that probes.
#![no_main]

use compressor_fuzz::server::{check_response, request, send, split_lines};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    compressor_fuzz::panic_policy();
    let [query, content_type, body] = split_lines(data);
    let Some(request) = request("/compress-image", query, &[("content-type", content_type)], body) else { return };
    let (status, headers, body) = send(request);
    check_response(status, &headers, &body, false);
});
