//! AVIF: encoding with ravif (rav1e), decoding with `compressor-avif` (the system dav1d).

use ravif::{Encoder, Img, RGBA8};

use crate::error::{Error, LimitKind};
use crate::image::Image;
use crate::image::color;
use crate::image::pixels::Pixels;
use crate::options::{Limits, Mode};

/// Default quality for AVIF.
pub const DEFAULT_QUALITY: u8 = 70;

/// rav1e speed for an effort. The default (effort 2) is speed 8, the knee of rav1e's curve: at
/// equal SSIMULACRA2 (scores 60-90, 9 corpus PNGs: 3 photos, 3 screenshots, 3 graphics) speed 8
/// needs 36 % fewer bytes than speed 10 (photos 16 %, graphics 40 %, screenshots 47 %: speed 10
/// leaves out the tools screen content needs), speed 9 only 12 % fewer, speed 6 39 % fewer. On
/// a 12 MP photo speed 8 costs 14.8 s of CPU against speed 10's 3.0 s, still under what sharp's
/// libaom spends at its default (the bench's rd-avif category compares them); effort 1 keeps
/// speed 10 for callers who want AVIF fast.
fn speed(effort: u8) -> u8 {
    match effort {
        0 | 1 => 10,
        2 => 8,
        3 => 7,
        _ => 6,
    }
}

pub(crate) fn encode(image: &Image, quality: u8, effort: u8, mode: Mode) -> Result<Vec<u8>, Error> {
    if image.is_animated() {
        return Err(Error::needs("first_frame", "animated AVIF is not written, so only the first frame can be kept (WebP keeps them all)"));
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

/// Width and height from the `ispe` property, without decoding.
pub(crate) fn dimensions(data: &[u8]) -> Result<(u32, u32), Error> {
    compressor_avif::dimensions(data).map_err(|e| avif_error(e, u64::MAX))
}

/// The still (primary) image as RGBA, with its ICC profile, or one made from its `nclx` colour
/// description when that names wide-gamut primaries (Display P3, BT.2020).
pub(crate) fn decode(data: &[u8], limits: &Limits) -> Result<Image, Error> {
    let decoded = compressor_avif::decode(data, limits.max_pixels).map_err(|e| avif_error(e, limits.max_pixels))?;
    let mut image = Image::still(Pixels::rgba8(decoded.width, decoded.height, decoded.rgba));
    image.icc = decoded.icc.or_else(|| color::icc_for_cicp(decoded.cicp.0, decoded.cicp.1));
    Ok(image)
}

fn avif_error(e: compressor_avif::AvifError, max_pixels: u64) -> Error {
    match e {
        compressor_avif::AvifError::Unsupported(detail) => Error::unsupported(format!("AVIF: {detail}")),
        compressor_avif::AvifError::Corrupt(detail) => Error::corrupt(format!("AVIF: {detail}")),
        compressor_avif::AvifError::TooLarge { width, height } => {
            Error::LimitExceeded { what: LimitKind::Pixels, value: u64::from(width) * u64::from(height), limit: max_pixels }
        }
    }
}
