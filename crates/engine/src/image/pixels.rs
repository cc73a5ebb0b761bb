//! Decoded pixels in one of two normal forms, so comparisons and encoders see one layout.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Samples {
    /// RGBA, 8 bits per sample.
    Rgba8(Vec<u8>),
    /// RGBA, 16 bits per sample; kept for 16-bit PNGs so lossless checks see every bit.
    Rgba16(Vec<u16>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pixels {
    pub width: u32,
    pub height: u32,
    pub samples: Samples,
}

impl Pixels {
    pub fn rgba8(width: u32, height: u32, data: Vec<u8>) -> Self {
        debug_assert_eq!(data.len(), width as usize * height as usize * 4);
        Pixels { width, height, samples: Samples::Rgba8(data) }
    }

    /// True when any pixel is not fully opaque.
    pub fn has_alpha(&self) -> bool {
        match &self.samples {
            Samples::Rgba8(v) => v.chunks_exact(4).any(|p| p[3] != u8::MAX),
            Samples::Rgba16(v) => v.chunks_exact(4).any(|p| p[3] != u16::MAX),
        }
    }

    /// True when 8 bits hold every sample exactly (8-bit data, or 16-bit samples that are all v × 257).
    pub fn fits_in_8_bits(&self) -> bool {
        match &self.samples {
            Samples::Rgba8(_) => true,
            Samples::Rgba16(v) => v.iter().all(|&s| s % 257 == 0),
        }
    }

    /// RGBA8, scaling 16-bit samples down with rounding.
    pub fn to_rgba8(&self) -> Cow<'_, [u8]> {
        match &self.samples {
            Samples::Rgba8(v) => Cow::Borrowed(v),
            Samples::Rgba16(v) => Cow::Owned(v.iter().map(|&s| ((u32::from(s) * 255 + 32895) >> 16) as u8).collect()),
        }
    }

    /// RGBA8 by value: 8-bit samples are handed over without a copy.
    pub fn into_rgba8(self) -> Vec<u8> {
        match self.samples {
            Samples::Rgba8(v) => v,
            Samples::Rgba16(_) => self.to_rgba8().into_owned(),
        }
    }

    /// Pixel-exact equality, comparing 8-bit against 16-bit data as the PNG spec scales it (v × 257).
    pub fn same_pixels(&self, other: &Pixels) -> bool {
        if (self.width, self.height) != (other.width, other.height) {
            return false;
        }
        match (&self.samples, &other.samples) {
            (Samples::Rgba8(a), Samples::Rgba8(b)) => a == b,
            (Samples::Rgba16(a), Samples::Rgba16(b)) => a == b,
            (Samples::Rgba8(a), Samples::Rgba16(b)) | (Samples::Rgba16(b), Samples::Rgba8(a)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| u16::from(x) * 257 == y)
            }
        }
    }
}
