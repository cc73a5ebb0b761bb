//! Colour management: the one policy for what an output does with its input's ICC profile, and
//! the conversion to sRGB that the policy and the score need (moxcms: a pure-Rust CMS, so a hostile
//! profile cannot corrupt memory; ICC v2 and v4, matrix-shaper and LUT profiles, grey and CMYK).
//!
//! An output either carries the input's profile, or its pixels are converted to sRGB and it
//! carries none: a viewer then shows the same colours either way. Dropping a profile without
//! converting (what `strip` did) makes Adobe RGB duller and ProPhoto darker in every browser.

use std::sync::Arc;

use moxcms::{
    CicpColorPrimaries, CicpProfile, ColorProfile, DataColorSpace, Layout, MatrixCoefficients, TransferCharacteristics, TransformExecutor,
    TransformOptions,
};

use crate::error::Error;
use crate::format::Format;
use crate::image::Image;
use crate::image::pixels::{Pixels, Samples};
use crate::options::{MetadataPolicy, Mode, Options};

/// What an output does with its input's ICC profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProfileAction {
    /// There is no profile: the pixels are sRGB.
    None,
    /// The output carries the profile as it is.
    Carry,
    /// The profile is dropped and the pixels stay: it describes sRGB (within 8-bit rounding), or
    /// it cannot be read, so nothing could be converted and nothing can carry it.
    Drop,
    /// The pixels are converted to sRGB and the profile dropped.
    Convert,
}

/// Where the output's pixels come from, which decides whether a profile that is not an RGB one
/// (grey, CMYK) still describes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// The input file optimised in its own format, its own sample layout kept (PNG, JPEG).
    SameFile,
    /// Encoded from decoded RGBA pixels.
    FromPixels,
}

/// What `options` make of `icc` in a `to` output: the single decision every path follows.
///
/// - `keep` and `safe` carry the profile where the format's writer stores one (PNG `iCCP`, JPEG
///   APP2, WebP `ICCP`); AVIF (written with an sRGB `nclx` colour box) and GIF outputs are converted.
/// - A profile that describes sRGB is carried only under `keep`: every viewer shows an untagged
///   image as sRGB, so under `safe` and `strip` it is dropped as it is (often 3 KB or more, the
///   bulk of a small photo's savings).
/// - `strip` converts to sRGB, then drops. In lossless mode a profile that is not sRGB is carried
///   even under `strip`: converting would change the pixels.
/// - A grey or CMYK profile cannot describe RGB pixels, so outputs made from pixels convert it.
pub(crate) fn decide(icc: Option<&[u8]>, to: Format, output: Output, options: &Options) -> ProfileAction {
    let Some(icc) = icc else { return ProfileAction::None };
    let carries = matches!(to, Format::Png | Format::Jpeg | Format::WebP);
    let strip = options.metadata == MetadataPolicy::Strip;
    match kind(icc) {
        Kind::Unreadable if carries && !strip => ProfileAction::Carry,
        Kind::Unreadable => ProfileAction::Drop,
        Kind::Srgb if carries && options.metadata == MetadataPolicy::Keep => ProfileAction::Carry,
        Kind::Srgb => ProfileAction::Drop,
        Kind::Rgb | Kind::Other if !carries => ProfileAction::Convert,
        Kind::Other if output == Output::FromPixels => ProfileAction::Convert,
        _ if strip && options.mode == Mode::Lossy => ProfileAction::Convert,
        _ => ProfileAction::Carry,
    }
}

/// Applies [`decide`] to a decoded image about to be encoded as `to`: the image as the output
/// should hold it, and a note for the report when the colours were converted or a profile kept
/// against `strip`.
pub(crate) fn for_output(mut image: Image, to: Format, options: &Options) -> Result<(Image, Option<String>), Error> {
    let action = decide(image.icc.as_deref(), to, Output::FromPixels, options);
    let note = match action {
        ProfileAction::None => None,
        ProfileAction::Carry => (options.metadata == MetadataPolicy::Strip)
            .then(|| "colour profile kept under strip: lossless output cannot convert its pixels to sRGB".to_owned()),
        ProfileAction::Drop => {
            image.icc = None;
            None
        }
        ProfileAction::Convert => {
            let why =
                if options.metadata == MetadataPolicy::Strip { "strip".to_owned() } else { format!("{to} carries no ICC profile here") };
            image = to_srgb(image)?;
            Some(format!("colours converted from the ICC profile to sRGB ({why})"))
        }
    };
    Ok((image, note))
}

/// Whether pixels tagged with `icc` are shown as they are stored: no profile, or one that says
/// sRGB or cannot be read ([`to_srgb`] keeps their pixels).
pub(crate) fn shown_as_stored(icc: Option<&[u8]>) -> bool {
    icc.is_none_or(|icc| !matches!(kind(icc), Kind::Rgb | Kind::Other))
}

/// The image with its pixels converted from its ICC profile to sRGB and no profile; an image
/// without a profile, or with an sRGB or unreadable one, keeps its pixels.
pub(crate) fn to_srgb(mut image: Image) -> Result<Image, Error> {
    let Some(icc) = image.icc.take() else { return Ok(image) };
    let sixteen = matches!(image.first().samples, Samples::Rgba16(_));
    let Some(transform) = Transform::to_srgb(&icc, sixteen)? else { return Ok(image) };
    for frame in &mut image.frames {
        frame.pixels = transform.apply(&frame.pixels)?;
    }
    Ok(image)
}

/// CMYK ink amounts (4 bytes a pixel; `inverted` as Adobe's JPEGs store them) as opaque sRGB:
/// through `icc` when it is a CMYK profile, else by the naive formula browsers use for untagged
/// CMYK.
pub(crate) fn cmyk_to_srgb(width: u32, height: u32, cmyk: &[u8], inverted: bool, icc: Option<&[u8]>) -> Result<Pixels, Error> {
    let ink: Vec<u8> = if inverted { cmyk.iter().map(|&v| 255 - v).collect() } else { cmyk.to_vec() };
    let profile = icc.and_then(|icc| ColorProfile::new_from_slice(icc).ok()).filter(|p| p.color_space == DataColorSpace::Cmyk);
    let rgb: Vec<u8> = match profile {
        Some(profile) => {
            let transform = profile
                .create_transform_8bit(Layout::Rgba, &ColorProfile::new_srgb(), Layout::Rgb, TransformOptions::default())
                .map_err(|e| Error::unsupported(format!("CMYK ICC profile cannot be converted to sRGB: {e}")))?;
            let mut rgb = vec![0u8; ink.len() / 4 * 3];
            transform.transform(&ink, &mut rgb).map_err(|e| Error::unsupported(format!("ICC profile: colour conversion failed: {e}")))?;
            rgb
        }
        None => ink
            .chunks_exact(4)
            .flat_map(|p| {
                let white = |c: u8| ((255 - u32::from(c)) * (255 - u32::from(p[3])) / 255) as u8;
                [white(p[0]), white(p[1]), white(p[2])]
            })
            .collect(),
    };
    Ok(Pixels::rgba8(width, height, rgb.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect()))
}

/// An ICC profile for an H.273 (`nclx`) colour description, so that HEIF and AVIF images
/// described that way go through the same policy as profiled ones; `None` for sRGB (BT.709 or
/// unspecified primaries) and for HDR transfers (PQ, HLG), which this engine does not map.
pub(crate) fn icc_for_cicp(primaries: u16, transfer: u16) -> Option<Vec<u8>> {
    const UNSPECIFIED: u16 = 2;
    const SRGB_TRANSFER: u16 = 13;
    if matches!(primaries, 1 | UNSPECIFIED) || matches!(transfer, 16 | 18) {
        return None;
    }
    let transfer = if transfer == UNSPECIFIED { SRGB_TRANSFER } else { transfer };
    let cicp = CicpProfile {
        color_primaries: CicpColorPrimaries::try_from(u8::try_from(primaries).ok()?).ok()?,
        transfer_characteristics: TransferCharacteristics::try_from(u8::try_from(transfer).ok()?).ok()?,
        matrix_coefficients: MatrixCoefficients::Bt709,
        full_range: true,
    };
    ColorProfile::new_from_cicp(cicp).encode().ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Equal to sRGB on every 8-bit colour probed (the web's default, so carrying it changes nothing).
    Srgb,
    Rgb,
    /// Grey, CMYK and other spaces.
    Other,
    Unreadable,
}

fn kind(icc: &[u8]) -> Kind {
    let Ok(profile) = ColorProfile::new_from_slice(icc) else { return Kind::Unreadable };
    if profile.color_space != DataColorSpace::Rgb {
        return Kind::Other;
    }
    let srgb = ColorProfile::new_srgb();
    let Ok(transform) = profile.create_transform_8bit(Layout::Rgb, &srgb, Layout::Rgb, TransformOptions::default()) else {
        return Kind::Unreadable;
    };
    // A 9×9×9 lattice of colours and the grey ramp: an sRGB profile maps each to itself.
    let step = |i: u32| (i * 255 / 8) as u8;
    let mut probe: Vec<u8> = (0..9 * 9 * 9).flat_map(|i| [step(i / 81), step(i / 9 % 9), step(i % 9)]).collect();
    probe.extend((0..=255u8).flat_map(|v| [v, v, v]));
    let mut out = vec![0u8; probe.len()];
    if transform.transform(&probe, &mut out).is_err() {
        return Kind::Unreadable;
    }
    if probe.iter().zip(&out).all(|(a, b)| a.abs_diff(*b) <= 1) { Kind::Srgb } else { Kind::Rgb }
}

/// A conversion from one profile to sRGB, for the sample layout and depth of one image's frames.
struct Transform {
    from_gray: bool,
    executor: Executor,
}

enum Executor {
    Eight(Arc<moxcms::Transform8BitExecutor>),
    Sixteen(Arc<moxcms::Transform16BitExecutor>),
}

impl Transform {
    /// `None` when there is nothing to convert (an sRGB profile) or nothing can be (unreadable, a
    /// space other than RGB or grey: such pixels were already turned into RGB by their decoder).
    /// Only the executor for the image's depth (`sixteen`) is built.
    fn to_srgb(icc: &[u8], sixteen: bool) -> Result<Option<Transform>, Error> {
        let (Kind::Rgb | Kind::Other) = kind(icc) else { return Ok(None) };
        let profile = ColorProfile::new_from_slice(icc).map_err(|e| Error::corrupt(format!("ICC profile: {e}")))?;
        let from_gray = match profile.color_space {
            DataColorSpace::Rgb => false,
            DataColorSpace::Gray => true,
            _ => return Ok(None),
        };
        let source = if from_gray { Layout::GrayAlpha } else { Layout::Rgba };
        let srgb = ColorProfile::new_srgb();
        let failed = |e: moxcms::CmsError| Error::unsupported(format!("ICC profile cannot be converted to sRGB: {e}"));
        let options = TransformOptions::default();
        let executor = if sixteen {
            Executor::Sixteen(profile.create_transform_16bit(source, &srgb, Layout::Rgba, options).map_err(failed)?)
        } else {
            Executor::Eight(profile.create_transform_8bit(source, &srgb, Layout::Rgba, options).map_err(failed)?)
        };
        Ok(Some(Transform { from_gray, executor }))
    }

    fn apply(&self, pixels: &Pixels) -> Result<Pixels, Error> {
        fn run<T: Copy + Default>(executor: &dyn TransformExecutor<T>, rgba: &[T], from_gray: bool) -> Result<Vec<T>, Error> {
            // Grey profiles read one channel (decoders expand grey to equal R, G and B) and alpha.
            let grey: Vec<T>;
            let source = if from_gray {
                grey = rgba.chunks_exact(4).flat_map(|p| [p[0], p[3]]).collect();
                &grey
            } else {
                rgba
            };
            let mut out = vec![T::default(); rgba.len()];
            executor.transform(source, &mut out).map_err(|e| Error::unsupported(format!("ICC profile: colour conversion failed: {e}")))?;
            Ok(out)
        }
        let samples = match (&pixels.samples, &self.executor) {
            (Samples::Rgba8(v), Executor::Eight(e)) => Samples::Rgba8(run(e.as_ref(), v, self.from_gray)?),
            (Samples::Rgba16(v), Executor::Sixteen(e)) => Samples::Rgba16(run(e.as_ref(), v, self.from_gray)?),
            _ => return Err(Error::internal("frames of one image with different sample depths")),
        };
        Ok(Pixels { width: pixels.width, height: pixels.height, samples })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srgb_is_recognised_and_other_spaces_are_not() {
        let srgb = ColorProfile::new_srgb().encode().unwrap();
        assert_eq!(kind(&srgb), Kind::Srgb);
        let p3 = ColorProfile::new_display_p3().encode().unwrap();
        assert_eq!(kind(&p3), Kind::Rgb);
        assert_eq!(kind(b"not a profile"), Kind::Unreadable);
    }

    #[test]
    fn an_nclx_description_of_display_p3_becomes_a_p3_profile() {
        assert_eq!(icc_for_cicp(1, 13), None, "sRGB needs no profile");
        assert_eq!(icc_for_cicp(9, 16), None, "PQ is not mapped");
        let p3 = icc_for_cicp(12, 13).expect("a Display P3 profile");
        assert_eq!(kind(&p3), Kind::Rgb);
        let mut red = Image::still(Pixels::rgba8(1, 1, vec![255, 0, 0, 255]));
        red.icc = Some(p3);
        let shown = to_srgb(red).unwrap().first().to_rgba8().into_owned();
        assert!(shown[0] >= 250 && shown[1] <= 5 && shown[2] <= 5, "P3 red is beyond sRGB: clipped to sRGB red, not {shown:?}");
    }

    #[test]
    fn display_p3_red_becomes_a_more_saturated_srgb_red() {
        let p3 = ColorProfile::new_display_p3().encode().unwrap();
        let mut image = Image::still(Pixels::rgba8(1, 1, vec![200, 40, 40, 128]));
        image.icc = Some(p3);
        let converted = to_srgb(image).unwrap();
        assert_eq!(converted.icc, None);
        let p = converted.first().to_rgba8().into_owned();
        assert!(p[0] > 200 && p[1] < 40 && p[2] < 40, "{p:?}");
        assert_eq!(p[3], 128, "alpha is kept");
    }
}
