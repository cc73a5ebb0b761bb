//! Size limits and hostile input: TooLarge before decoding, errors (never panics) for garbage.

mod common;

use common::opaque_pattern;
use compressor_avif::{AvifError, decode, dimensions};
use ravif::{Encoder, Img, RGBA8};

fn small_avif(w: u32, h: u32) -> Vec<u8> {
    let px: Vec<RGBA8> = opaque_pattern(w, h).chunks_exact(4).map(|p| RGBA8::new(p[0], p[1], p[2], p[3])).collect();
    Encoder::new()
        .with_quality(80.0)
        .with_speed(10)
        .with_num_threads(Some(1))
        .encode_rgba(Img::new(&px[..], w as usize, h as usize))
        .unwrap()
        .avif_file
}

/// Rewrites the width and height in the (first) `ispe` property.
fn patch_ispe(avif: &mut [u8], w: u32, h: u32) {
    let at = avif.windows(4).position(|b| b == b"ispe").expect("an ispe box");
    let body = at + 4 + 4; // after the type and the FullBox version/flags
    avif[body..body + 4].copy_from_slice(&w.to_be_bytes());
    avif[body + 4..body + 8].copy_from_slice(&h.to_be_bytes());
}

#[test]
fn huge_declared_size_is_too_large_before_decoding() {
    let mut avif = small_avif(16, 16);
    patch_ispe(&mut avif, 100_000, 80_000);
    assert_eq!(dimensions(&avif), Ok((100_000, 80_000)));
    assert_eq!(decode(&avif, 50_000_000), Err(AvifError::TooLarge { width: 100_000, height: 80_000 }));
    let mut avif = small_avif(16, 16);
    patch_ispe(&mut avif, u32::MAX, u32::MAX);
    assert_eq!(decode(&avif, u64::MAX / 2), Err(AvifError::TooLarge { width: u32::MAX, height: u32::MAX }));
}

#[test]
fn max_pixels_is_enforced_for_real_sizes() {
    let avif = small_avif(40, 30);
    assert_eq!(decode(&avif, 1199), Err(AvifError::TooLarge { width: 40, height: 30 }));
    assert!(decode(&avif, 1200).is_ok());
    assert_eq!(decode(&avif, 0), Err(AvifError::TooLarge { width: 40, height: 30 }));
}

#[test]
fn declared_size_smaller_than_the_av1_frame_is_caught() {
    // The container claims 4x4 but the AV1 frame is 64x64: refused by the AV1 size check
    // (TooLarge when max_pixels is small), or as corrupt when the limit allows the real size.
    let mut avif = small_avif(64, 64);
    patch_ispe(&mut avif, 4, 4);
    assert_eq!(dimensions(&avif), Ok((4, 4)));
    assert_eq!(decode(&avif, 16), Err(AvifError::TooLarge { width: 64, height: 64 }));
    assert!(matches!(decode(&avif, 1 << 20), Err(AvifError::Corrupt(_))));
}

#[test]
fn garbage_gives_errors() {
    for data in [&b""[..], b"\0\0\0", b"not an image at all", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", b"\0\0\0\x0cftypheic"] {
        assert!(dimensions(data).is_err());
        assert!(matches!(decode(data, 1 << 20), Err(AvifError::Unsupported(_) | AvifError::Corrupt(_))), "{data:?}");
    }
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn truncated_and_mutated_files_never_panic() {
    let original = {
        let px: Vec<RGBA8> = common::pattern(24, 20).chunks_exact(4).map(|p| RGBA8::new(p[0], p[1], p[2], p[3])).collect();
        Encoder::new().with_quality(70.0).with_speed(10).with_num_threads(Some(1)).encode_rgba(Img::new(&px[..], 24, 20)).unwrap().avif_file
    };
    assert!(decode(&original, 1 << 20).is_ok());
    for len in 0..original.len() {
        let cut = &original[..len];
        let _ = dimensions(cut);
        let _ = decode(cut, 1 << 20);
    }
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..1500 {
        let mut data = original.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(data.len());
            match rng.below(3) {
                0 => data[i] ^= 1 << rng.below(8),
                1 => data[i] = rng.next() as u8,
                _ => data[i] = [0, 0xff, 0x7f, 0x80][rng.below(4)],
            }
        }
        let _ = dimensions(&data);
        if let Ok(d) = decode(&data, 1 << 20) {
            assert_eq!(d.rgba.len(), d.width as usize * d.height as usize * 4);
        }
    }
}
