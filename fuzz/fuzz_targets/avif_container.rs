//! The AVIF (HEIF / ISO BMFF) container reader and decoder: `dimensions` and `decode` agree (what
//! one refuses the other does too), the pixel limit holds, and a decoded image has the size it
//! declares.
#![no_main]

use compressor_avif::AvifError;

const MAX_PIXELS: u64 = 1 << 20;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    compressor_fuzz::panic_policy();
    let dimensions = compressor_avif::dimensions(data);
    let decoded = compressor_avif::decode(data, MAX_PIXELS);
    match (&dimensions, &decoded) {
        (Ok((w, h)), Ok(image)) => {
            assert_eq!((image.width, image.height), (*w, *h), "decode and dimensions disagree");
            assert_eq!(image.rgba.len(), *w as usize * *h as usize * 4);
            assert!(u64::from(*w) * u64::from(*h) <= MAX_PIXELS);
            assert!(matches!(image.bit_depth, 8 | 10 | 12));
        }
        // The size named is over the limit; it may be the AV1 stream's, not the container's
        // (a stream that declares more than its item holds is refused before it is decoded).
        (Ok(_), Err(AvifError::TooLarge { width, height })) => {
            assert!(u64::from(*width) * u64::from(*height) > MAX_PIXELS, "TooLarge {width}x{height} within the limit");
        }
        // Over the limit, a container whose item data is also broken may say so first.
        (Ok(_), Err(_)) => {}
        (Err(e), Ok(_)) => panic!("dimensions failed ({e}) but decode succeeded"),
        (Err(_), Err(_)) => {}
    }
});
