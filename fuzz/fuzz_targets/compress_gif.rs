//! `compress` on arbitrary bytes, seeded with GIF images: the first three bytes choose the
//! options (mode, output format, quality, metadata policy, resize), the rest is the image.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    compressor_fuzz::panic_policy();
    compressor_fuzz::compress_and_check(data);
});
