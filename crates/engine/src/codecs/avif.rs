//! AVIF: encoding with libaom through the system libheif (the stack sharp and libvips use),
//! decoding with `compressor-avif` (the system dav1d).

use std::ffi::{CStr, CString, c_void};
use std::ptr;

use libheif_sys as heif;

use crate::error::{Error, LimitKind};
use crate::image::Image;
use crate::image::color;
use crate::image::pixels::Pixels;
use crate::options::{Limits, Mode};

/// Default quality for AVIF.
pub const DEFAULT_QUALITY: u8 = 70;

/// libaom's `cpu-used` (0 slowest .. 9 fastest) for an effort. At equal SSIMULACRA2 (scores
/// 60-90, 11 corpus images: photos, graphics, screenshots, icons) speed 6 needs 18 % fewer bytes
/// than speed 8 and speed 5 another 9 %, at about 2 x and 3.5 x its CPU; speed 6 encodes a 12 MP
/// photo in about 7 s of one core, a third of what sharp's default spends.
fn speed(effort: u8) -> i32 {
    match effort {
        0 | 1 => 9,
        2 => 6,
        3 => 5,
        _ => 4,
    }
}

/// Above this many distinct colours an image is taken for a photograph; at or below it, for
/// screen content (text, user interfaces, charts, icons), which libaom encodes with its screen
/// tools (palette and intra block copy): 65 % fewer bytes at equal score on screenshots, about
/// 1 % more on graphics and icons, and on photographs, where the tools only cost time.
const SCREEN_CONTENT_MAX_COLOURS: usize = 8192;

/// Whether the image has at most [`SCREEN_CONTENT_MAX_COLOURS`] distinct colours (stopping
/// early: a photograph passes the count within its first rows).
fn looks_like_screen_content(rgba: &[u8]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(SCREEN_CONTENT_MAX_COLOURS + 1);
    for pixel in rgba.chunks_exact(4) {
        seen.insert(u32::from_ne_bytes([pixel[0], pixel[1], pixel[2], pixel[3]]));
        if seen.len() > SCREEN_CONTENT_MAX_COLOURS {
            return false;
        }
    }
    true
}

/// What libheif allocated for one encode, released on drop in reverse order.
struct Encoding {
    ctx: *mut heif::heif_context,
    encoder: *mut heif::heif_encoder,
    image: *mut heif::heif_image,
    options: *mut heif::heif_encoding_options,
    nclx: *mut heif::heif_color_profile_nclx,
}

impl Drop for Encoding {
    fn drop(&mut self) {
        // SAFETY: each pointer is null or was allocated by libheif, and is released once.
        unsafe {
            if !self.options.is_null() {
                heif::heif_encoding_options_free(self.options);
            }
            if !self.nclx.is_null() {
                heif::heif_nclx_color_profile_free(self.nclx);
            }
            if !self.image.is_null() {
                heif::heif_image_release(self.image);
            }
            if !self.encoder.is_null() {
                heif::heif_encoder_release(self.encoder);
            }
            heif::heif_context_free(self.ctx);
        }
    }
}

fn check(e: heif::heif_error) -> Result<(), Error> {
    if e.code == heif::heif_error_code_heif_error_Ok {
        return Ok(());
    }
    Err(Error::internal(format!("AVIF encoder: {}", super::heic::message(&e))))
}

pub(crate) fn encode(image: &Image, quality: u8, effort: u8, mode: Mode) -> Result<Vec<u8>, Error> {
    if image.is_animated() {
        return Err(Error::needs("first_frame", "animated AVIF is not written, so only the first frame can be kept (WebP keeps them all)"));
    }
    if mode == Mode::Lossless {
        return Err(Error::unsupported("AVIF output is lossy only in this build"));
    }
    let pixels = image.first();
    let alpha = pixels.has_alpha();
    let (width, height) = (image.width, image.height);
    let rgba = pixels.to_rgba8();
    // Fast effort leaves the screen tools out: they cost 2-4 x the time on the images they help.
    let screen_content = effort >= 2 && looks_like_screen_content(&rgba);
    // SAFETY: every libheif object is owned by `encoding` and released on every path; the plane
    // pointer is written within the stride and height libheif reports for a plane it allocated.
    unsafe {
        let ctx = heif::heif_context_alloc();
        if ctx.is_null() {
            return Err(Error::internal("libheif could not allocate a context"));
        }
        let mut encoding =
            Encoding { ctx, encoder: ptr::null_mut(), image: ptr::null_mut(), options: ptr::null_mut(), nclx: ptr::null_mut() };
        check(heif::heif_context_get_encoder_for_format(ctx, heif::heif_compression_format_heif_compression_AV1, &mut encoding.encoder))?;
        let encoder = encoding.encoder;
        check(heif::heif_encoder_set_lossy_quality(encoder, i32::from(quality.min(100))))?;
        let set_int = |name: &CStr, value: i32| check(heif::heif_encoder_set_parameter_integer(encoder, name.as_ptr(), value));
        let set_str = |name: &CStr, value: &str| {
            let value = CString::new(value).expect("no NUL");
            check(heif::heif_encoder_set_parameter_string(encoder, name.as_ptr(), value.as_ptr()))
        };
        set_int(c"speed", speed(effort))?;
        // As many threads as the rayon pool this image runs in: one for small images (see
        // `parallel.rs`), the machine's for large ones.
        set_int(c"threads", rayon::current_num_threads().clamp(1, 16) as i32)?;
        // Full-resolution chroma, as sharp's default: 4:2:0 needs 4-8 % more bytes at equal score.
        set_str(c"chroma", "444")?;
        set_str(c"tune", "ssim")?;
        if screen_content {
            // libheif passes an `aom:` parameter on to libaom's aom_codec_set_option.
            check(heif::heif_encoder_set_parameter(encoder, c"aom:tune-content".as_ptr(), c"screen".as_ptr()))?;
        }
        if alpha {
            set_int(c"alpha-quality", i32::from(quality.min(100)))?;
        }

        let chroma_layout =
            if alpha { heif::heif_chroma_heif_chroma_interleaved_RGBA } else { heif::heif_chroma_heif_chroma_interleaved_RGB };
        check(heif::heif_image_create(
            width as i32,
            height as i32,
            heif::heif_colorspace_heif_colorspace_RGB,
            chroma_layout,
            &mut encoding.image,
        ))?;
        check(heif::heif_image_add_plane(encoding.image, heif::heif_channel_heif_channel_interleaved, width as i32, height as i32, 8))?;
        let mut stride = 0;
        let plane = heif::heif_image_get_plane(encoding.image, heif::heif_channel_heif_channel_interleaved, &mut stride);
        if plane.is_null() || stride < 0 {
            return Err(Error::internal("libheif gave no image plane"));
        }
        let channels = if alpha { 4 } else { 3 };
        let row_bytes = width as usize * channels;
        for (y, row) in rgba.chunks_exact(width as usize * 4).enumerate() {
            let out = std::slice::from_raw_parts_mut(plane.add(y * stride as usize), row_bytes);
            if alpha {
                out.copy_from_slice(row);
            } else {
                for (o, p) in out.chunks_exact_mut(3).zip(row.chunks_exact(4)) {
                    o.copy_from_slice(&p[..3]);
                }
            }
        }

        encoding.options = heif::heif_encoding_options_alloc();
        if encoding.options.is_null() {
            return Err(Error::internal("libheif could not allocate encoding options"));
        }
        (*encoding.options).save_alpha_channel = u8::from(alpha);
        // sRGB said explicitly (libheif would leave primaries and transfer unspecified), with the
        // BT.601 matrix over the full range, as the engine's pixels are sRGB by now.
        encoding.nclx = heif::heif_nclx_color_profile_alloc();
        if encoding.nclx.is_null() {
            return Err(Error::internal("libheif could not allocate a colour profile"));
        }
        (*encoding.nclx).color_primaries = heif::heif_color_primaries_heif_color_primaries_ITU_R_BT_709_5;
        (*encoding.nclx).transfer_characteristics = heif::heif_transfer_characteristics_heif_transfer_characteristic_IEC_61966_2_1;
        (*encoding.nclx).matrix_coefficients = heif::heif_matrix_coefficients_heif_matrix_coefficients_ITU_R_BT_601_6;
        (*encoding.nclx).full_range_flag = 1;
        (*encoding.options).output_nclx_profile = encoding.nclx;
        // libheif 1.15 writes the input image's description into the file, not the options'.
        check(heif::heif_image_set_nclx_color_profile(encoding.image, encoding.nclx))?;
        let mut handle: *mut heif::heif_image_handle = ptr::null_mut();
        check(heif::heif_context_encode_image(ctx, encoding.image, encoder, encoding.options, &mut handle))?;
        heif::heif_image_handle_release(handle);

        let mut out: Vec<u8> = Vec::new();
        let mut writer = heif::heif_writer { writer_api_version: 1, write: Some(append) };
        check(heif::heif_context_write(ctx, &mut writer, (&mut out as *mut Vec<u8>).cast()))?;
        Ok(out)
    }
}

/// libheif's writer callback: appends the file's bytes to the `Vec<u8>` behind `userdata`.
unsafe extern "C" fn append(_ctx: *mut heif::heif_context, data: *const c_void, size: usize, userdata: *mut c_void) -> heif::heif_error {
    // SAFETY: `userdata` is the `Vec<u8>` `encode` passed, alive for the call; `data` holds `size` bytes.
    unsafe {
        let out = &mut *userdata.cast::<Vec<u8>>();
        out.extend_from_slice(std::slice::from_raw_parts(data.cast::<u8>(), size));
    }
    heif::heif_error {
        code: heif::heif_error_code_heif_error_Ok,
        subcode: heif::heif_suberror_code_heif_suberror_Unspecified,
        message: c"".as_ptr(),
    }
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
