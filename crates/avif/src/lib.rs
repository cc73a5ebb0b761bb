//! Decodes AVIF still images to 8-bit RGBA.
//!
//! ```text
//! pub struct Decoded { width, height, rgba /* 8-bit RGBA, straight alpha, row-major */, icc, bit_depth }
//! pub enum AvifError { Unsupported(String), Corrupt(String), TooLarge { width, height } }
//! pub fn dimensions(data: &[u8]) -> Result<(u32, u32), AvifError>  // container only, no decoding
//! pub fn decode(data: &[u8], max_pixels: u64) -> Result<Decoded, AvifError>
//! ```
//!
//! Call [`dimensions`] to check limits before decoding; [`decode`] checks `max_pixels` again
//! (against `ispe`, the AV1 sequence header and the decoded picture) before allocating anything of
//! image size, and returns [`AvifError::TooLarge`] above it.
//!
//! # How
//! The container (ISO BMFF / HEIF / MIAF) is read by a small bounds-checked parser in this crate
//! (the `avif-parse` crate exposes neither `ispe`, `irot`/`imir` nor `colr`/ICC). The AV1 payload
//! is decoded by the system **dav1d** (Debian: `libdav1d-dev`, found with pkg-config), one thread
//! per decode and `frame_size_limit` = `max_pixels`. Everything runs under `catch_unwind`, so any
//! input gives a result or an error, never a panic.
//!
//! # Supported
//! - The primary `av01` item, 8, 10 and 12 bits (scaled to 8-bit output; [`Decoded::bit_depth`]
//!   reports the source depth), 4:2:0, 4:2:2, 4:4:4 and monochrome (4:0:0).
//! - Full and limited range (from the AV1 sequence header, which the decoder itself obeys).
//! - Matrix coefficients from the `colr` `nclx` box, else from the AV1 sequence header: identity
//!   (RGB), BT.709, BT.601/BT.470BG/SMPTE 170M (also used when unspecified), FCC, SMPTE 240M,
//!   YCgCo, BT.2020 non-constant-luminance, and chromaticity-derived non-constant-luminance.
//!   Chroma is upsampled bilinearly (chroma sited between luma samples).
//! - Alpha from the auxiliary alpha item (`auxl` + `auxC` alpha URN), in its own range and depth,
//!   returned straight; colour premultiplied by alpha (`prem` reference) is un-premultiplied.
//! - `irot` and `imir`, applied in the order they are associated with the item; the returned size
//!   (and that of [`dimensions`]) is after rotation.
//! - The ICC profile from `colr` (`prof` or `rICC`) is returned, not applied.
//! - Progressive (layered, `a1lx`) images: the last, complete layer is returned.
//! - Animated AVIF (`avis`): the still primary image that such files carry (libavif writes the
//!   first frame there) is decoded; a sequence without one gives `Unsupported`.
//! - Grid (`grid`) primary items: rows × columns of `av01` tiles of one size (from `dimg`, in
//!   order; a tile may repeat), cropped to the grid's output size, which is what [`dimensions`]
//!   reports and `max_pixels` is checked against before any tile is decoded. Alpha as a grid of
//!   the same layout or as one image of the output size. Colour (`nclx`, ICC) from the grid item,
//!   else from its first tile; `irot`/`imir` of the grid item applied to the whole.
//!
//! # Not supported
//! - Overlay (`iovl`) and tone-mapped (`tmap`) primary items: `Unsupported`. Gain
//!   maps and other auxiliary or thumbnail items are ignored; the base image is decoded.
//! - Constant-luminance, ST 2085 and ICtCp matrices: `Unsupported`.
//! - No colour management: pixels keep the source's primaries and transfer (HDR PQ/HLG is not
//!   tone-mapped); the ICC profile is only passed on. Clean aperture (`clap`) is not applied.
//! - An essential property this crate does not know (e.g. `lsel`, `a1op`): `Unsupported`.

use std::fmt;

mod av1;
mod container;
mod convert;

/// A decoded image.
#[derive(Clone, PartialEq, Eq)]
pub struct Decoded {
    pub width: u32,
    pub height: u32,
    /// `width * height * 4` bytes: 8-bit R, G, B, A per pixel, straight (not premultiplied) alpha;
    /// A is 255 when the image has no alpha.
    pub rgba: Vec<u8>,
    /// The embedded ICC profile, if any (not applied to the pixels).
    pub icc: Option<Vec<u8>>,
    /// Colour primaries and transfer characteristics (H.273 code points, 2 when unspecified):
    /// the `nclx` box's, else the sequence header's; not applied to the pixels either.
    pub cicp: (u16, u16),
    /// Bit depth of the source's colour samples: 8, 10 or 12.
    pub bit_depth: u8,
}

impl fmt::Debug for Decoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoded")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("rgba_len", &self.rgba.len())
            .field("icc_len", &self.icc.as_ref().map(Vec::len))
            .field("bit_depth", &self.bit_depth)
            .field("cicp", &self.cicp)
            .finish()
    }
}

/// Why an AVIF could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AvifError {
    /// Valid, or at least plausible, but uses something this crate does not handle.
    Unsupported(String),
    /// Malformed container or AV1 data.
    Corrupt(String),
    /// More pixels than the caller's `max_pixels`.
    TooLarge { width: u32, height: u32 },
}

impl fmt::Display for AvifError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AvifError::Unsupported(m) => write!(f, "unsupported AVIF: {m}"),
            AvifError::Corrupt(m) => write!(f, "corrupt AVIF: {m}"),
            AvifError::TooLarge { width, height } => write!(f, "AVIF too large: {width}x{height}"),
        }
    }
}

impl std::error::Error for AvifError {}

/// Runs `f`, turning a panic into [`AvifError::Corrupt`].
fn guarded<T>(f: impl FnOnce() -> Result<T, AvifError>) -> Result<T, AvifError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(AvifError::Corrupt("internal error (panic) while decoding".into())))
}

/// Width and height of the primary image as it will be decoded (after `irot`), from the
/// container's `ispe` property (a grid's output size), without decoding any AV1 data. Fails for
/// the same container-level reasons as [`decode`] (e.g. `Unsupported` for overlay images).
pub fn dimensions(data: &[u8]) -> Result<(u32, u32), AvifError> {
    guarded(|| Ok(container::parse(data, false)?.output_size()))
}

/// Decodes the primary image to 8-bit RGBA. `max_pixels` bounds width × height (checked before
/// any image-sized allocation): larger images give [`AvifError::TooLarge`].
pub fn decode(data: &[u8], max_pixels: u64) -> Result<Decoded, AvifError> {
    guarded(|| decode_inner(data, max_pixels))
}

fn decode_inner(data: &[u8], max_pixels: u64) -> Result<Decoded, AvifError> {
    let image = container::parse(data, true)?;
    let (out_w, out_h) = image.output_size();
    if u64::from(out_w) * u64::from(out_h) > max_pixels {
        return Err(AvifError::TooLarge { width: out_w, height: out_h });
    }

    if let Some(grid) = &image.grid {
        return decode_grid(&image, grid, max_pixels);
    }
    let color = av1::decode(&image.color, max_pixels, "colour image")?;
    if (color.width, color.height) != image.ispe {
        return Err(AvifError::Corrupt(format!(
            "decoded size {}x{} differs from the declared {}x{}",
            color.width, color.height, image.ispe.0, image.ispe.1
        )));
    }
    let alpha = match &image.alpha {
        None => None,
        Some(obus) => {
            let frame = av1::decode(obus, max_pixels, "alpha image")?;
            if (frame.width, frame.height) != image.ispe {
                return Err(AvifError::Corrupt(format!(
                    "alpha image is {}x{}, colour image {}x{}",
                    frame.width, frame.height, image.ispe.0, image.ispe.1
                )));
            }
            Some(convert::alpha_plane(&frame)?)
        }
    };

    // The container's nclx wins over the bitstream's, unless it leaves the matrix unspecified.
    let (mc, primaries) = match image.nclx {
        Some(n) if n.matrix != 2 => (n.matrix, n.primaries),
        _ => (color.matrix, color.primaries),
    };
    let matrix = convert::matrix(mc, primaries)?;
    let mut rgba = convert::to_rgba(&color, matrix, alpha.as_deref(), image.premultiplied)?;
    let (bit_depth, cicp) = (color.bit_depth, cicp(image.nclx, &color));
    drop(color);
    let (w, h) = convert::transform(&mut rgba, image.ispe.0 as usize, image.ispe.1 as usize, &image.transforms);
    debug_assert_eq!((w as u32, h as u32), (out_w, out_h));
    Ok(Decoded { width: w as u32, height: h as u32, rgba, icc: image.icc, bit_depth, cicp })
}

/// Primaries and transfer: the container's `nclx`, else the (first) bitstream's.
fn cicp(nclx: Option<container::Nclx>, frame: &av1::Frame) -> (u16, u16) {
    nclx.map_or((frame.primaries, frame.transfer), |n| (n.primaries, n.transfer))
}

/// A grid: each tile decoded and converted on its own (with its alpha tile), copied into the
/// output canvas and cropped at the right and bottom edges; then the transformations.
fn decode_grid(image: &container::Image, grid: &container::Grid, max_pixels: u64) -> Result<Decoded, AvifError> {
    let (width, height) = (image.ispe.0 as usize, image.ispe.1 as usize);
    let (tw, th) = (grid.tile.0 as usize, grid.tile.1 as usize);
    let mut canvas = vec![0u8; width * height * 4];
    let mut bit_depth = 8;
    let mut colour = (2, 2);
    for (index, obus) in grid.color.iter().enumerate() {
        let (row, column) = (index / grid.columns as usize, index % grid.columns as usize);
        let color = av1::decode(obus, max_pixels, "grid tile")?;
        if (color.width, color.height) != grid.tile {
            return Err(AvifError::Corrupt(format!("grid tile decoded {}x{}, declared {tw}x{th}", color.width, color.height)));
        }
        let alpha = match grid.alpha.as_ref().and_then(|tiles| tiles.get(index)) {
            None => None,
            Some(obus) => {
                let frame = av1::decode(obus, max_pixels, "alpha grid tile")?;
                if (frame.width, frame.height) != grid.tile {
                    return Err(AvifError::Corrupt(format!("alpha tile is {}x{}, colour tile {tw}x{th}", frame.width, frame.height)));
                }
                Some(convert::alpha_plane(&frame)?)
            }
        };
        let (mc, primaries) = match image.nclx {
            Some(n) if n.matrix != 2 => (n.matrix, n.primaries),
            _ => (color.matrix, color.primaries),
        };
        let rgba = convert::to_rgba(&color, convert::matrix(mc, primaries)?, alpha.as_deref(), image.premultiplied)?;
        bit_depth = color.bit_depth;
        colour = cicp(image.nclx, &color);
        let (x0, y0) = (column * tw, row * th);
        let copy_w = tw.min(width.saturating_sub(x0));
        for y in 0..th.min(height.saturating_sub(y0)) {
            let from = y * tw * 4;
            let to = ((y0 + y) * width + x0) * 4;
            canvas[to..to + copy_w * 4].copy_from_slice(&rgba[from..from + copy_w * 4]);
        }
    }
    // One alpha image for the whole grid.
    if let Some(obus) = &image.alpha {
        let frame = av1::decode(obus, max_pixels, "alpha image")?;
        if (frame.width as usize, frame.height as usize) != (width, height) {
            return Err(AvifError::Corrupt(format!("alpha image is {}x{}, the grid {width}x{height}", frame.width, frame.height)));
        }
        let plane = convert::alpha_plane(&frame)?;
        for (pixel, &a) in canvas.chunks_exact_mut(4).zip(&plane) {
            pixel[3] = a;
            if image.premultiplied && a > 0 && a < 255 {
                for c in &mut pixel[..3] {
                    *c = ((u32::from(*c) * 255 + u32::from(a) / 2) / u32::from(a)).min(255) as u8;
                }
            }
        }
    }
    let (w, h) = convert::transform(&mut canvas, width, height, &image.transforms);
    Ok(Decoded { width: w as u32, height: h as u32, rgba: canvas, icc: image.icc.clone(), bit_depth, cicp: colour })
}
