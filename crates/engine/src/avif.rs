//! AVIF encoding with ravif (rav1e). Decoding is not available in this build.

use ravif::{Encoder, Img, RGBA8};

use crate::image::Image;
use crate::{Error, Mode};

/// rav1e speed for an effort. Measured on a 12-megapixel photo, one core, quality 70:
/// speed 10 takes 3.0 s (591 KB), speed 9 7.6 s (536 KB), speeds 7-8 16 s (528 KB). The default
/// effort 2 uses speed 10 so a 12 MP photo encodes in a few seconds; each effort step above
/// trades time for the last ~10 % of size.
fn speed(effort: u8) -> u8 {
    (12 - effort.clamp(1, 6)).clamp(6, 10)
}

pub(crate) fn encode(image: &Image, quality: u8, effort: u8, mode: Mode) -> Result<Vec<u8>, Error> {
    if image.is_animated() {
        return Err(Error::unsupported("animated AVIF output is not supported; use --first-frame or WebP"));
    }
    if mode == Mode::Lossless {
        return Err(Error::unsupported("AVIF output is lossy only in this build (ravif has no lossless mode)"));
    }
    let rgba = image.first().to_rgba8();
    let pixels: Vec<RGBA8> = rgba.chunks_exact(4).map(|p| RGBA8::new(p[0], p[1], p[2], p[3])).collect();
    let encoder = Encoder::new()
        .with_quality(f32::from(quality.max(1)))
        .with_alpha_quality(f32::from(quality.max(1)))
        .with_speed(speed(effort))
        .with_alpha_color_mode(ravif::AlphaColorMode::UnassociatedClean);
    let encoded = encoder
        .encode_rgba(Img::new(&pixels[..], image.width as usize, image.height as usize))
        .map_err(|e| Error::internal(format!("AVIF encoder: {e}")))?;
    Ok(encoded.avif_file)
}
