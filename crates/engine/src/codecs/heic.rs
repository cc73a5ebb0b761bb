//! HEIC/HEIF input through the system libheif (Debian bookworm: 1.15.1, HEVC decoded by
//! libde265 linked into it) via `libheif-sys`. The primary image only (thumbnails, depth and
//! other auxiliary images, further top-level images are ignored); grids are assembled, `clap`,
//! `irot` and `imir` applied by libheif, once: the EXIF orientation of a HEIF only repeats them
//! and is not applied again. 8-bit images decode to RGBA8, deeper ones to RGBA16; the ICC profile
//! is kept (an `nclx` colour description is applied by libheif's YCbCr conversion, its primaries
//! are not carried). Never written.

use std::ffi::{CStr, c_int};
use std::ptr;

use libheif_sys as heif;

use crate::error::{Error, LimitKind};
use crate::image::Image;
use crate::image::color;
use crate::image::pixels::{Pixels, Samples};
use crate::options::Limits;
use crate::parallel::PARALLEL_MIN_PIXELS;

/// A parsed file: libheif reads the boxes (no pixels) when the context is filled.
struct Context {
    ctx: *mut heif::heif_context,
    handle: *mut heif::heif_image_handle,
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: both were allocated by libheif (or are null) and are released once.
        unsafe {
            if !self.handle.is_null() {
                heif::heif_image_handle_release(self.handle);
            }
            heif::heif_context_free(self.ctx);
        }
    }
}

impl Context {
    /// Parses `data`, which libheif borrows: a context never outlives the function that made it.
    fn read(data: &[u8], max_dimension: u32) -> Result<Context, Error> {
        // SAFETY: the context is freed by Drop; `data` outlives it (every Context lives inside a
        // function that borrows `data`).
        unsafe {
            let ctx = heif::heif_context_alloc();
            if ctx.is_null() {
                return Err(Error::internal("libheif could not allocate a context"));
            }
            let mut context = Context { ctx, handle: ptr::null_mut() };
            heif::heif_context_set_maximum_image_size_limit(ctx, max_dimension.min(c_int::MAX as u32) as c_int);
            check(heif::heif_context_read_from_memory_without_copy(ctx, data.as_ptr().cast(), data.len(), ptr::null()))?;
            check(heif::heif_context_get_primary_image_handle(ctx, &mut context.handle))?;
            Ok(context)
        }
    }

    /// Width and height as displayed (after `clap`, `irot`, `imir`).
    fn size(&self) -> (u32, u32) {
        // SAFETY: the handle is valid while self lives.
        let (w, h) = unsafe { (heif::heif_image_handle_get_width(self.handle), heif::heif_image_handle_get_height(self.handle)) };
        (w.max(0) as u32, h.max(0) as u32)
    }

    /// The ICC profile, or one made from an `nclx` description of wide-gamut primaries.
    fn icc(&self) -> Option<Vec<u8>> {
        // SAFETY: the buffer is sized as libheif reports; the nclx struct is libheif's, freed once.
        unsafe {
            let kind = heif::heif_image_handle_get_color_profile_type(self.handle);
            if kind == heif::heif_color_profile_type_heif_color_profile_type_nclx {
                let mut nclx: *mut heif::heif_color_profile_nclx = ptr::null_mut();
                check(heif::heif_image_handle_get_nclx_color_profile(self.handle, &mut nclx)).ok()?;
                let description = nclx.as_ref().map(|n| (n.color_primaries as u16, n.transfer_characteristics as u16));
                heif::heif_nclx_color_profile_free(nclx);
                let (primaries, transfer) = description?;
                return color::icc_for_cicp(primaries, transfer);
            }
            if kind != heif::heif_color_profile_type_heif_color_profile_type_prof
                && kind != heif::heif_color_profile_type_heif_color_profile_type_rICC
            {
                return None;
            }
            let size = heif::heif_image_handle_get_raw_color_profile_size(self.handle);
            if size == 0 {
                return None;
            }
            let mut icc = vec![0u8; size];
            check(heif::heif_image_handle_get_raw_color_profile(self.handle, icc.as_mut_ptr().cast())).ok()?;
            Some(icc)
        }
    }
}

/// A decoded image, released on drop.
struct Decoded(*mut heif::heif_image);

impl Drop for Decoded {
    fn drop(&mut self) {
        // SAFETY: allocated by heif_decode_image, released once.
        unsafe { heif::heif_image_release(self.0) }
    }
}

/// libheif's message for an error.
pub(crate) fn message(e: &heif::heif_error) -> String {
    if e.message.is_null() {
        return String::new();
    }
    // SAFETY: libheif's messages are NUL-terminated static or context-owned strings.
    unsafe { CStr::from_ptr(e.message) }.to_string_lossy().into_owned()
}

fn check(e: heif::heif_error) -> Result<(), Error> {
    if e.code == heif::heif_error_code_heif_error_Ok {
        return Ok(());
    }
    let detail = format!("HEIF: {}", message(&e));
    Err(match e.code {
        heif::heif_error_code_heif_error_Unsupported_filetype | heif::heif_error_code_heif_error_Unsupported_feature => {
            Error::unsupported(detail)
        }
        heif::heif_error_code_heif_error_Usage_error | heif::heif_error_code_heif_error_Plugin_loading_error => Error::internal(detail),
        // Invalid input, a decoder's complaint about a damaged stream, and allocations the file's
        // declared sizes asked for.
        _ => Error::corrupt(detail),
    })
}

/// The primary image's displayed width and height, from the boxes alone.
pub(crate) fn dimensions(data: &[u8]) -> Result<(u32, u32), Error> {
    Ok(Context::read(data, u32::MAX)?.size())
}

/// Whether the primary image is coded with more than 8 bits (it then decodes to RGBA16).
pub(crate) fn is_deep(data: &[u8]) -> bool {
    // SAFETY: the handle is libheif's, checked non-null by `Context::read`.
    Context::read(data, u32::MAX).is_ok_and(|c| unsafe { heif::heif_image_handle_get_luma_bits_per_pixel(c.handle) } > 8)
}

/// The primary image as RGBA (16-bit when coded with more than 8 bits), with its ICC profile.
pub(crate) fn decode(data: &[u8], limits: &Limits) -> Result<Image, Error> {
    let context = Context::read(data, limits.max_dimension)?;
    let (width, height) = context.size();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(Error::LimitExceeded { what: LimitKind::Pixels, value: pixels, limit: limits.max_pixels });
    }
    if pixels == 0 {
        return Err(Error::corrupt("HEIF: the primary image declares no pixels"));
    }
    // SAFETY: every pointer comes from libheif and is checked; the plane is read within the
    // stride and height libheif reports.
    unsafe {
        let alpha = heif::heif_image_handle_has_alpha_channel(context.handle) != 0;
        let deep = heif::heif_image_handle_get_luma_bits_per_pixel(context.handle) > 8;
        let chroma = match (deep, alpha) {
            (false, false) => heif::heif_chroma_heif_chroma_interleaved_RGB,
            (false, true) => heif::heif_chroma_heif_chroma_interleaved_RGBA,
            (true, false) => heif::heif_chroma_heif_chroma_interleaved_RRGGBB_LE,
            (true, true) => heif::heif_chroma_heif_chroma_interleaved_RRGGBBAA_LE,
        };
        // libheif decodes small images on one thread: the engine's rule for small images.
        if pixels < PARALLEL_MIN_PIXELS {
            heif::heif_context_set_max_decoding_threads(context.ctx, 1);
        }
        let options = heif::heif_decoding_options_alloc();
        if options.is_null() {
            return Err(Error::internal("libheif could not allocate decoding options"));
        }
        (*options).convert_hdr_to_8bit = 0;
        (*options).ignore_transformations = 0;
        let mut image = ptr::null_mut();
        let result = heif::heif_decode_image(context.handle, &mut image, heif::heif_colorspace_heif_colorspace_RGB, chroma, options);
        heif::heif_decoding_options_free(options);
        check(result)?;
        if image.is_null() {
            return Err(Error::internal("libheif returned no image"));
        }
        let image = Decoded(image);
        let channel = heif::heif_channel_heif_channel_interleaved;
        let (w, h) = (heif::heif_image_get_width(image.0, channel), heif::heif_image_get_height(image.0, channel));
        if w <= 0 || h <= 0 || w as u32 != width || h as u32 != height {
            return Err(Error::corrupt(format!("HEIF: decoded {w}x{h}, the header declares {width}x{height}")));
        }
        let mut stride: c_int = 0;
        let plane = heif::heif_image_get_plane_readonly(image.0, channel, &mut stride);
        let channels = if alpha { 4 } else { 3 };
        let sample_bytes = if deep { 2 } else { 1 };
        let row_bytes = width as usize * channels * sample_bytes;
        if plane.is_null() || stride < 0 || (stride as usize) < row_bytes {
            return Err(Error::internal("libheif returned no interleaved plane"));
        }
        let bits = heif::heif_image_get_bits_per_pixel_range(image.0, channel).clamp(1, 16) as u32;
        let rows = (0..height as usize).map(|y| std::slice::from_raw_parts(plane.add(y * stride as usize), row_bytes));
        let samples = if deep {
            let max = (1u32 << bits) - 1;
            let widen = |v: u16| ((u32::from(v).min(max) * 65535 + max / 2) / max) as u16;
            let mut out = Vec::with_capacity(pixels as usize * 4);
            for row in rows {
                for p in row.chunks_exact(channels * 2) {
                    let s = |i: usize| widen(u16::from_le_bytes([p[2 * i], p[2 * i + 1]]));
                    out.extend_from_slice(&[s(0), s(1), s(2), if alpha { s(3) } else { u16::MAX }]);
                }
            }
            Samples::Rgba16(out)
        } else {
            let mut out = Vec::with_capacity(pixels as usize * 4);
            for row in rows {
                if alpha {
                    out.extend_from_slice(row);
                } else {
                    out.extend(row.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], u8::MAX]));
                }
            }
            Samples::Rgba8(out)
        };
        let mut decoded = Image::still(Pixels { width, height, samples });
        decoded.icc = context.icc();
        Ok(decoded)
    }
}
