//! JPEG: lossless re-optimisation of the DCT coefficients (jpegtran-style, through mozjpeg's
//! coefficient API) and lossy re-encoding with mozjpeg (trellis quantization, optimised scans).
//!
//! libjpeg reports fatal errors by calling `error_exit`; ours unwinds (mozjpeg is built with
//! unwinding support), every call is wrapped in `catch_unwind`, and guards free libjpeg's memory.

use std::os::raw::{c_int, c_uint, c_ulong};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::{mem, ptr};

use mozjpeg_sys as sys;

use crate::error::Error;
use crate::format::{Format, ImageInfo};
use crate::image::Image;
use crate::image::color::{self, Output, ProfileAction};
use crate::image::metadata::{exif_orientation, orientation_only_exif};
use crate::image::pixels::Pixels;
use crate::options::{MetadataPolicy, Mode, Options};
use crate::result::Encoded;
use crate::score;

pub const DEFAULT_QUALITY: u8 = 80;

const APP0: u8 = 0xE0;
const APP1: u8 = 0xE1;
const APP2: u8 = 0xE2;
const APP14: u8 = 0xEE;
const COM: u8 = 0xFE;
const EXIF_PREFIX: &[u8] = b"Exif\0\0";
const ICC_PREFIX: &[u8] = b"ICC_PROFILE\0";

/// The header of a JPEG file: frame size and the metadata segments before the first scan.
pub(crate) struct Header<'a> {
    pub width: u32,
    pub height: u32,
    /// APPn and COM segments in file order: (marker, payload).
    pub markers: Vec<(u8, &'a [u8])>,
}

/// Walks marker segments up to the first scan. Reads only headers, so it is cheap and safe to
/// run on hostile input before any decoder sees it.
/// Width and height from the frame header.
pub(crate) fn dimensions(d: &[u8]) -> Result<(u32, u32), Error> {
    read_header(d).map(|h| (h.width, h.height))
}

pub(crate) fn read_header(d: &[u8]) -> Result<Header<'_>, Error> {
    let truncated = || Error::corrupt("JPEG header is truncated");
    let mut pos = 2;
    let mut markers = Vec::new();
    let mut size = None;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while d.get(pos) == Some(&0xFF) && d.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        let (Some(&0xFF), Some(&marker)) = (d.get(pos), d.get(pos + 1)) else {
            return Err(if pos + 1 >= d.len() { truncated() } else { Error::corrupt("JPEG marker expected") });
        };
        pos += 2;
        match marker {
            0xD0..=0xD7 | 0x01 => continue,
            0xD9 => return Err(Error::corrupt("JPEG ends before its first scan")),
            _ => {}
        }
        let len = d.get(pos..pos + 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))).ok_or_else(truncated)?;
        if len < 2 {
            return Err(Error::corrupt("JPEG segment length below 2"));
        }
        let payload = d.get(pos + 2..pos + len).ok_or_else(truncated)?;
        pos += len;
        match marker {
            0xDA => {
                let (width, height) = size.ok_or_else(|| Error::corrupt("JPEG has no frame header before its scan"))?;
                return Ok(Header { width, height, markers });
            }
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if payload.len() < 5 {
                    return Err(Error::corrupt("JPEG frame header too short"));
                }
                let height = u32::from(u16::from_be_bytes([payload[1], payload[2]]));
                let width = u32::from(u16::from_be_bytes([payload[3], payload[4]]));
                size = Some((width, height));
            }
            APP0..=0xEF | COM => markers.push((marker, payload)),
            _ => {}
        }
    }
}

pub(crate) fn compress(input: &[u8], info: &ImageInfo, options: &Options) -> Result<Encoded, Error> {
    let header = read_header(input)?;
    let icc = icc_of(&header);
    let carried = color::decide(icc.as_deref(), Format::Jpeg, Output::SameFile, options) == ProfileAction::Carry;
    let markers = markers_to_keep(&header, options.metadata, carried);
    let original = decode(input, 1)?;
    // A rewrite of the coefficients is kept only if it decodes to exactly the input's pixels.
    let verified = |data: Vec<u8>| -> Option<Vec<u8>> {
        match decode(&data, 1) {
            Ok(decoded) if decoded == original => Some(data),
            _ => None,
        }
    };
    let lossless_result = |lossless: Option<Vec<u8>>, notes: Vec<String>| match lossless {
        Some(data) => Encoded {
            data,
            format: Format::Jpeg,
            width: info.width,
            height: info.height,
            score: None,
            method: "jpeg-lossless".into(),
            notes,
            candidates: Vec::new(),
            resized_from: None,
        },
        None => Encoded::unchanged(input, info, vec!["optimised coefficients did not decode to identical pixels; input kept".into()]),
    };
    let Decoded::Pixels(pixels) = &original else {
        let lossless = verified(transcode(input, &markers, Scans::Searched)?);
        let notes = match options.mode {
            Mode::Lossless => vec![],
            Mode::Lossy => vec!["CMYK JPEG: re-encoded losslessly (colour conversion would change the colours)".into()],
        };
        return Ok(lossless_result(lossless, notes));
    };
    if options.mode == Mode::Lossless {
        return Ok(lossless_result(verified(transcode(input, &markers, Scans::Searched)?), vec![]));
    }
    options.cancel.check()?;
    let quality = options.quality.map_or(DEFAULT_QUALITY, |q| q.max);
    let lossy = encode(pixels, quality, &markers)?;
    // A lossless rewrite that is already smaller is strictly better than a lossy one. The scan
    // search (most of a lossless rewrite's CPU) saves 0.2–3.5 % over the fixed progressive script
    // on the corpus's camera JPEGs, so it runs only when the fixed script's rewrite is within 10 %
    // of the lossy result; only the rewrite that would be returned is decoded to verify it.
    let mut lossless = transcode(input, &markers, Scans::Fixed)?;
    if lossless.len() as f64 <= lossy.len() as f64 * 1.1 {
        let searched = transcode(input, &markers, Scans::Searched)?;
        if searched.len() < lossless.len() {
            lossless = searched;
        }
    }
    if lossless.len() <= lossy.len()
        && let Some(lossless) = verified(lossless)
    {
        return Ok(lossless_result(
            Some(lossless),
            vec![format!("lossless optimisation was smaller than re-encoding at quality {quality}")],
        ));
    }
    let score = if options.score {
        // Both carry the same profile (or an sRGB one was dropped): compared as displayed.
        let icc = icc.filter(|_| carried);
        match decode(&lossy, 1)? {
            Decoded::Pixels(p) => score::in_profile(pixels, &p, icc.as_deref()),
            Decoded::Cmyk { .. } => None,
        }
    } else {
        None
    };
    Ok(Encoded {
        data: lossy,
        format: Format::Jpeg,
        width: info.width,
        height: info.height,
        score,
        method: format!("jpeg-q{quality}"),
        notes: vec![],
        candidates: Vec::new(),
        resized_from: None,
    })
}

/// The metadata segments the policy lets through, in file order. JFIF (APP0) and Adobe (APP14)
/// headers are not in the list: libjpeg writes its own from the frame parameters. Under `safe`
/// and `strip` the orientation survives as a minimal EXIF block (the picture must not turn), and
/// the ICC profile when the colour policy carries it (`icc_carried`).
fn markers_to_keep(header: &Header<'_>, policy: MetadataPolicy, icc_carried: bool) -> Vec<(u8, Vec<u8>)> {
    if policy == MetadataPolicy::Keep {
        return header.markers.iter().filter(|(m, _)| !matches!(*m, APP0 | APP14)).map(|(m, p)| (*m, p.to_vec())).collect();
    }
    let mut out = Vec::new();
    let orientation = orientation_of(header);
    if orientation != 1 {
        out.push((APP1, [EXIF_PREFIX, &orientation_only_exif(orientation)].concat()));
    }
    if icc_carried {
        out.extend(header.markers.iter().filter(|(m, p)| *m == APP2 && p.starts_with(ICC_PREFIX)).map(|(m, p)| (*m, p.to_vec())));
    }
    out
}

/// The ICC profile of the APP2 segments, joined in file order.
fn icc_of(header: &Header<'_>) -> Option<Vec<u8>> {
    let icc: Vec<u8> = header
        .markers
        .iter()
        .filter(|(m, p)| *m == APP2 && p.starts_with(ICC_PREFIX) && p.len() > 14)
        .flat_map(|(_, p)| p[14..].to_vec())
        .collect();
    (!icc.is_empty()).then_some(icc)
}

/// The ICC profile a JPEG file carries, from its header alone.
pub(crate) fn embedded_icc(input: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    Ok(icc_of(&read_header(input)?))
}

/// Decodes to an [`Image`] with its ICC profile and orientation, for conversions.
/// `shrink` (1, 2, 4 or 8) decodes at that fraction of the size, by libjpeg's scaled inverse
/// DCT: far less work than decoding every pixel, for images about to be made much smaller.
pub(crate) fn decode_image(input: &[u8], shrink: u32) -> Result<Image, Error> {
    let header = read_header(input)?;
    let icc = icc_of(&header);
    let mut image = match decode(input, shrink)? {
        Decoded::Pixels(pixels) => Image { icc, ..Image::still(pixels) },
        // Ink amounts are not pixels: converted to sRGB here, through the file's profile if any.
        // Adobe's (APP14) CMYK JPEGs store inverted ink, as libjpeg returns it.
        Decoded::Cmyk { width, height, samples } => {
            let inverted = header.markers.iter().any(|(m, p)| *m == APP14 && p.starts_with(b"Adobe"));
            let mut image = Image::still(color::cmyk_to_srgb(width, height, &samples, inverted, icc.as_deref())?);
            image.notes.push("CMYK converted to sRGB".into());
            image
        }
    };
    image.orientation = orientation_of(&header);
    Ok(image)
}

/// The EXIF orientation from the header alone (1 when there is none).
pub(crate) fn orientation(input: &[u8]) -> Result<u16, Error> {
    Ok(orientation_of(&read_header(input)?))
}

fn orientation_of(header: &Header<'_>) -> u16 {
    header
        .markers
        .iter()
        .find_map(|(m, p)| (*m == APP1 && p.starts_with(EXIF_PREFIX)).then(|| exif_orientation(&p[EXIF_PREFIX.len()..])).flatten())
        .unwrap_or(1)
}

/// Encodes decoded pixels (opaque: flatten first) at a quality, with the ICC profile the image
/// holds (the colour policy has decided it) and its orientation.
pub(crate) fn encode_image(image: &Image, quality: u8) -> Result<Vec<u8>, Error> {
    let mut markers = Vec::new();
    if let Some(icc) = &image.icc {
        // ICC profiles are split over APP2 segments of at most 65519 bytes, numbered from 1.
        let parts: Vec<&[u8]> = icc.chunks(65519 - ICC_PREFIX.len() - 2).collect();
        for (i, part) in parts.iter().enumerate() {
            markers.push((APP2, [ICC_PREFIX, &[(i + 1) as u8, parts.len() as u8], part].concat()));
        }
    }
    if image.orientation > 1 {
        markers.insert(0, (APP1, [EXIF_PREFIX, &orientation_only_exif(image.orientation)].concat()));
    }
    encode(image.first(), quality, &markers)
}

#[derive(Debug, PartialEq)]
enum Decoded {
    Pixels(Pixels),
    /// CMYK/YCCK samples as libjpeg returns them (inverted in Adobe's files).
    Cmyk {
        width: u32,
        height: u32,
        samples: Vec<u8>,
    },
}

/// Decodes with libjpeg. Block smoothing is off so that the same coefficients always give the
/// same pixels, whatever the scan structure (that is what the lossless check relies on).
/// `shrink` as in [`decode_image`] (1: full size).
fn decode(data: &[u8], shrink: u32) -> Result<Decoded, Error> {
    debug_assert!(matches!(shrink, 1 | 2 | 4 | 8));
    let decoded = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Decoded> {
        let mut d = mozjpeg::Decompress::new_mem(data)?;
        d.do_block_smoothing(false);
        if shrink > 1 {
            d.scale((8 / shrink) as u8);
        }
        Ok(match d.color_space() {
            sys::J_COLOR_SPACE::JCS_GRAYSCALE => {
                let mut s = d.grayscale()?;
                let (w32, h32) = (s.width() as u32, s.height() as u32);
                let gray: Vec<u8> = s.read_scanlines()?;
                s.finish()?;
                Decoded::Pixels(Pixels::rgba8(w32, h32, gray.iter().flat_map(|&g| [g, g, g, 255]).collect()))
            }
            sys::J_COLOR_SPACE::JCS_CMYK | sys::J_COLOR_SPACE::JCS_YCCK => {
                let mozjpeg::decompress::Format::CMYK(mut s) = d.image()? else {
                    return Err(std::io::Error::other("CMYK JPEG did not decode as CMYK"));
                };
                let (width, height) = (s.width() as u32, s.height() as u32);
                let samples: Vec<u8> = s.read_scanlines()?;
                s.finish()?;
                Decoded::Cmyk { width, height, samples }
            }
            // libjpeg writes RGBA rows itself: no second pass over the pixels.
            _ => {
                let mut s = d.rgba()?;
                let (w32, h32) = (s.width() as u32, s.height() as u32);
                let rgba: Vec<u8> = s.read_scanlines()?;
                s.finish()?;
                Decoded::Pixels(Pixels::rgba8(w32, h32, rgba))
            }
        })
    }));
    match decoded {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => Err(Error::corrupt(format!("JPEG: {e}"))),
        Err(panic) => Err(libjpeg_error(&panic_message(&panic))),
    }
}

/// libjpeg's fatal errors: features it does not implement (12-bit precision, some processes)
/// are `UnsupportedFormat`; everything else is damaged input.
fn libjpeg_error(message: &str) -> Error {
    if message.starts_with("Unsupported") || message.contains("not supported") {
        Error::unsupported(format!("JPEG: {message}"))
    } else {
        Error::corrupt(format!("JPEG: {message}"))
    }
}

fn encode(pixels: &Pixels, quality: u8, markers: &[(u8, Vec<u8>)]) -> Result<Vec<u8>, Error> {
    let rgba = pixels.to_rgba8();
    let gray = rgba.chunks_exact(4).all(|p| p[0] == p[1] && p[1] == p[2]);
    let encoded = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Vec<u8>> {
        let (space, samples): (_, Vec<u8>) = if gray {
            (mozjpeg::ColorSpace::JCS_GRAYSCALE, rgba.chunks_exact(4).map(|p| p[0]).collect())
        } else {
            (mozjpeg::ColorSpace::JCS_RGB, rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect())
        };
        let mut c = mozjpeg::Compress::new(space);
        c.set_size(pixels.width as usize, pixels.height as usize);
        c.set_quality(f32::from(quality));
        c.set_progressive_mode();
        c.set_optimize_scans(true);
        c.set_optimize_coding(true);
        let mut c = c.start_compress(Vec::new())?;
        for (marker, payload) in markers {
            c.write_marker(mozjpeg::Marker::APP(marker - APP0), payload);
        }
        c.write_scanlines(&samples)?;
        c.finish()
    }));
    match encoded {
        Ok(Ok(data)) => Ok(data),
        Ok(Err(e)) => Err(Error::internal(format!("JPEG encoder: {e}"))),
        Err(panic) => Err(Error::internal(format!("JPEG encoder: {}", panic_message(&panic)))),
    }
}

/// How a lossless rewrite chooses its progressive scans.
#[derive(Clone, Copy, PartialEq)]
enum Scans {
    /// mozjpeg's scan optimisation: many trial encodings, the smallest kept.
    Searched,
    /// mozjpeg's fixed progressive script: one encoding.
    Fixed,
}

/// Rewrites the entropy-coded data from the same DCT coefficients: optimised Huffman tables and a
/// progressive scan script (`scans`). No pixel changes.
fn transcode(input: &[u8], markers: &[(u8, Vec<u8>)], scans: Scans) -> Result<Vec<u8>, Error> {
    match catch_unwind(AssertUnwindSafe(|| unsafe { transcode_unchecked(input, markers, scans) })) {
        Ok(out) => Ok(out),
        Err(panic) => Err(libjpeg_error(&panic_message(&panic))),
    }
}

/// Frees libjpeg state however the transcode ends (including by unwinding).
struct Codecs {
    err: Box<sys::jpeg_error_mgr>,
    src: Box<sys::jpeg_decompress_struct>,
    dst: Box<sys::jpeg_compress_struct>,
    out_buf: *mut u8,
    out_len: c_ulong,
}

impl Drop for Codecs {
    fn drop(&mut self) {
        unsafe {
            sys::jpeg_destroy_compress(&mut self.dst);
            sys::jpeg_destroy_decompress(&mut self.src);
            if !self.out_buf.is_null() {
                libc_free(self.out_buf.cast());
            }
        }
    }
}

unsafe extern "C" {
    #[link_name = "free"]
    fn libc_free(p: *mut std::ffi::c_void);
}

unsafe fn transcode_unchecked(input: &[u8], markers: &[(u8, Vec<u8>)], scans: Scans) -> Vec<u8> {
    unsafe {
        let mut c = Codecs {
            err: Box::new(mem::zeroed()),
            src: Box::new(mem::zeroed()),
            dst: Box::new(mem::zeroed()),
            out_buf: ptr::null_mut(),
            out_len: 0,
        };
        sys::jpeg_std_error(&mut c.err);
        c.err.error_exit = Some(unwind_error_exit);
        c.err.emit_message = Some(silence_message);
        c.src.common.err = &mut *c.err;
        c.dst.common.err = &mut *c.err;
        sys::jpeg_create_decompress(&mut *c.src);
        sys::jpeg_create_compress(&mut *c.dst);

        sys::jpeg_mem_src(&mut c.src, input.as_ptr(), input.len() as c_ulong);
        sys::jpeg_read_header(&mut c.src, 1);
        let coefficients = sys::jpeg_read_coefficients(&mut c.src);

        sys::jpeg_mem_dest(&mut c.dst, &mut c.out_buf, &mut c.out_len);
        sys::jpeg_copy_critical_parameters(&c.src, &mut c.dst);
        sys::jpeg_c_set_int_param(&mut c.dst, sys::J_INT_PARAM::JINT_COMPRESS_PROFILE, sys::JCP_MAX_COMPRESSION as c_int);
        sys::jpeg_c_set_bool_param(&mut c.dst, sys::J_BOOLEAN_PARAM::JBOOLEAN_OPTIMIZE_SCANS, (scans == Scans::Searched).into());
        c.dst.optimize_coding = 1;
        sys::jpeg_simple_progression(&mut c.dst);
        sys::jpeg_write_coefficients(&mut c.dst, coefficients);
        for (marker, payload) in markers {
            sys::jpeg_write_marker(&mut c.dst, c_int::from(*marker), payload.as_ptr(), payload.len() as c_uint);
        }
        sys::jpeg_finish_compress(&mut c.dst);
        sys::jpeg_finish_decompress(&mut c.src);
        std::slice::from_raw_parts(c.out_buf, c.out_len as usize).to_vec()
    }
}

extern "C-unwind" fn unwind_error_exit(cinfo: &mut sys::jpeg_common_struct) {
    let message = libjpeg_message(cinfo);
    // Not `panic!`: the panic hook would print a backtrace notice for what is just bad input.
    resume_unwind(Box::new(message));
}

extern "C-unwind" fn silence_message(_cinfo: &mut sys::jpeg_common_struct, _level: c_int) {}

/// libjpeg's own text for the current error.
fn libjpeg_message(cinfo: &mut sys::jpeg_common_struct) -> String {
    type FormatMessage = unsafe extern "C-unwind" fn(&mut sys::jpeg_common_struct, &mut [u8; 80]);
    let Some(format) = (unsafe { cinfo.err.as_ref() }).and_then(|e| e.format_message) else {
        return "libjpeg error".into();
    };
    let mut buffer = [0u8; 80];
    // The binding declares the buffer `&[u8; 80]`, but libjpeg writes into it.
    unsafe {
        let format: FormatMessage = mem::transmute(format);
        format(cinfo, &mut buffer);
    }
    let text = buffer.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text).into_owned()
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "codec panicked".into())
}
