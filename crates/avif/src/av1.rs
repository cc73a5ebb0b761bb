//! A minimal safe wrapper over the system dav1d (through `dav1d-sys`): decode one AV1 still image.

use crate::AvifError;
use dav1d_sys::*;
use std::ptr;

/// An open dav1d decoder; closed on drop.
struct Context(*mut Dav1dContext);

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful dav1d_open and is closed exactly once.
        unsafe { dav1d_close(&mut self.0) }
    }
}

/// A picture reference owned by us; released on drop.
struct RawPicture(Dav1dPicture);

impl Drop for RawPicture {
    fn drop(&mut self) {
        // SAFETY: filled by a successful dav1d_get_picture and released exactly once.
        unsafe { dav1d_picture_unref(&mut self.0) }
    }
}

/// Input data allocated by dav1d; whatever the decoder did not consume is released on drop.
struct Data(Dav1dData);

impl Drop for Data {
    fn drop(&mut self) {
        // SAFETY: either still holding the buffer from dav1d_data_create, or zeroed by
        // dav1d_send_data after consuming it (unref is a no-op then).
        unsafe { dav1d_data_unref(&mut self.0) }
    }
}

/// Chroma layout of a decoded picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    Monochrome,
    I420,
    I422,
    I444,
}

impl Layout {
    /// Horizontal and vertical chroma subsampling shifts.
    pub(crate) fn shifts(self) -> (u32, u32) {
        match self {
            Layout::I420 => (1, 1),
            Layout::I422 => (1, 0),
            Layout::I444 | Layout::Monochrome => (0, 0),
        }
    }
}

/// A decoded AV1 picture. The picture is released before the decoder that made it is closed.
pub(crate) struct Frame {
    pic: RawPicture,
    _ctx: Context,
    pub width: u32,
    pub height: u32,
    pub bit_depth: u8,
    pub layout: Layout,
    /// Matrix coefficients from the sequence header (H.273 code point; 2 when unspecified).
    pub matrix: u16,
    /// Colour primaries from the sequence header (H.273 code point; 2 when unspecified).
    pub primaries: u16,
    /// Transfer characteristics from the sequence header (H.273 code point; 2 when unspecified).
    pub transfer: u16,
    pub full_range: bool,
}

/// One plane of samples: 8-bit, or 16-bit native-endian words holding 10 or 12 bits.
pub(crate) struct Plane<'a> {
    data: &'a [u8],
    stride: usize,
    pub width: usize,
    pub height: usize,
    high: bool,
}

impl Plane<'_> {
    /// Maps row `y` (clamped into the plane) through `f` into `out`, one value per sample.
    #[inline]
    pub(crate) fn map_row(&self, y: usize, out: &mut [f32], f: impl Fn(u16) -> f32) {
        let start = y.min(self.height - 1) * self.stride;
        if self.high {
            let row = &self.data[start..start + 2 * self.width];
            for (o, b) in out.iter_mut().zip(row.chunks_exact(2)) {
                *o = f(u16::from_ne_bytes([b[0], b[1]]));
            }
        } else {
            let row = &self.data[start..start + self.width];
            for (o, &b) in out.iter_mut().zip(row) {
                *o = f(u16::from(b));
            }
        }
    }
}

impl Frame {
    /// Plane 0 is luma (Y), 1 is Cb (U), 2 is Cr (V); chroma planes are absent for monochrome.
    pub(crate) fn plane(&self, index: usize) -> Option<Plane<'_>> {
        let (sx, sy) = self.layout.shifts();
        let (w, h) = if index == 0 {
            (self.width as usize, self.height as usize)
        } else if self.layout == Layout::Monochrome {
            return None;
        } else {
            (((self.width + sx) >> sx) as usize, ((self.height + sy) >> sy) as usize)
        };
        let p = &self.pic.0;
        let ptr = *p.data.get(index)? as *const u8;
        let stride = *p.stride.get(index.min(1))?;
        let high = self.bit_depth > 8;
        let row_bytes = if high { 2 * w } else { w };
        let stride = usize::try_from(stride).ok().filter(|&s| s >= row_bytes)?;
        if ptr.is_null() || w == 0 || h == 0 {
            return None;
        }
        let len = stride.checked_mul(h - 1)?.checked_add(row_bytes)?;
        // SAFETY: dav1d allocated this plane with `h` rows of `stride` bytes (the last row at least
        // `row_bytes`), and it stays alive and unchanged while `self.pic` holds its reference.
        let data = unsafe { std::slice::from_raw_parts(ptr, len) };
        Some(Plane { data, stride, width: w, height: h, high })
    }
}

fn dav1d_failed(what: &str, code: i32) -> AvifError {
    if code == DAV1D_ERR_NOMEM {
        AvifError::Corrupt(format!("{what}: out of memory"))
    } else {
        AvifError::Corrupt(format!("{what}: AV1 data could not be decoded (dav1d error {code})"))
    }
}

/// Decodes the AV1 payload of an image item (a sequence header and one frame, possibly in several
/// layers: the last picture the decoder outputs is kept). Refuses frames above `max_pixels`.
pub(crate) fn decode(obus: &[u8], max_pixels: u64, what: &str) -> Result<Frame, AvifError> {
    if obus.is_empty() {
        return Err(AvifError::Corrupt(format!("{what}: empty AV1 payload")));
    }
    // SAFETY (whole function): plain C calls on structures we own and initialise as dav1d expects;
    // every resource is held by a guard that releases it on every path.
    let mut seq: Dav1dSequenceHeader = unsafe { std::mem::zeroed() };
    let r = unsafe { dav1d_parse_sequence_header(&mut seq, obus.as_ptr(), obus.len()) };
    if r < 0 {
        return Err(AvifError::Corrupt(format!("{what}: no valid AV1 sequence header")));
    }
    let (mw, mh) = (u32::try_from(seq.max_width).unwrap_or(0), u32::try_from(seq.max_height).unwrap_or(0));
    if u64::from(mw) * u64::from(mh) > max_pixels {
        return Err(AvifError::TooLarge { width: mw, height: mh });
    }

    let mut settings: Dav1dSettings = unsafe { std::mem::zeroed() };
    unsafe { dav1d_default_settings(&mut settings) };
    settings.n_threads = 1; // the caller parallelises across images; keep one decode on one core
    settings.max_frame_delay = 1;
    settings.all_layers = 0; // only the highest spatial layer (the complete image of a layered item)
    settings.frame_size_limit = u32::try_from(max_pixels).unwrap_or(u32::MAX).max(1);
    settings.logger.callback = ptr::null_mut(); // no messages on stderr

    let mut raw_ctx: *mut Dav1dContext = ptr::null_mut();
    let r = unsafe { dav1d_open(&mut raw_ctx, &settings) };
    if r < 0 || raw_ctx.is_null() {
        return Err(dav1d_failed(what, r));
    }
    let ctx = Context(raw_ctx);

    let mut data = Data(unsafe { std::mem::zeroed() });
    let buf = unsafe { dav1d_data_create(&mut data.0, obus.len()) };
    if buf.is_null() {
        return Err(dav1d_failed(what, DAV1D_ERR_NOMEM));
    }
    unsafe { ptr::copy_nonoverlapping(obus.as_ptr(), buf, obus.len()) };

    let mut last: Option<RawPicture> = None;
    // Each round either consumes input or outputs a picture; the bound only guards against a
    // decoder that would do neither.
    for _ in 0..100_000 {
        if data.0.sz > 0 {
            let r = unsafe { dav1d_send_data(ctx.0, &mut data.0) };
            if r < 0 && r != DAV1D_ERR_AGAIN {
                return Err(dav1d_failed(what, r));
            }
        }
        let mut pic: Dav1dPicture = unsafe { std::mem::zeroed() };
        let r = unsafe { dav1d_get_picture(ctx.0, &mut pic) };
        if r == 0 {
            last = Some(RawPicture(pic)); // a previous (lower) layer is released here
        } else if r == DAV1D_ERR_AGAIN {
            if data.0.sz == 0 {
                break;
            }
        } else {
            return Err(dav1d_failed(what, r));
        }
    }
    drop(data);
    let pic = last.ok_or_else(|| AvifError::Corrupt(format!("{what}: the AV1 data holds no picture")))?;

    let p = &pic.0;
    let (width, height) = (u32::try_from(p.p.w).unwrap_or(0), u32::try_from(p.p.h).unwrap_or(0));
    if width == 0 || height == 0 {
        return Err(AvifError::Corrupt(format!("{what}: decoded picture has no pixels")));
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(AvifError::TooLarge { width, height });
    }
    let bit_depth = match p.p.bpc {
        8 => 8,
        10 => 10,
        12 => 12,
        other => return Err(AvifError::Unsupported(format!("{what}: {other}-bit samples"))),
    };
    let layout = match p.p.layout {
        DAV1D_PIXEL_LAYOUT_I400 => Layout::Monochrome,
        DAV1D_PIXEL_LAYOUT_I420 => Layout::I420,
        DAV1D_PIXEL_LAYOUT_I422 => Layout::I422,
        DAV1D_PIXEL_LAYOUT_I444 => Layout::I444,
        other => return Err(AvifError::Unsupported(format!("{what}: pixel layout {other}"))),
    };
    if p.seq_hdr.is_null() {
        return Err(AvifError::Corrupt(format!("{what}: decoded picture has no sequence header")));
    }
    // SAFETY: non-null, and kept alive by the picture's reference to it.
    let s = unsafe { &*p.seq_hdr };
    let (matrix, primaries, transfer, full_range) = (s.mtrx as u16, s.pri as u16, s.trc as u16, s.color_range != 0);
    Ok(Frame { pic, _ctx: ctx, width, height, bit_depth, layout, matrix, primaries, transfer, full_range })
}
