//! WebP through libwebp: still and animated decoding (composited by libwebp's animation
//! decoder), lossy and lossless encoding, animation with timing and loop count, ICC via the muxer.

use std::os::raw::c_int;
use std::ptr;

use libwebp_sys as sys;

use crate::error::{Error, LimitKind};
use crate::image::pixels::Pixels;
use crate::image::{Frame, Image, changed_bounds};
use crate::options::Limits;

/// Default quality for lossy WebP (cwebp's -q default too).
pub const DEFAULT_QUALITY: u8 = 80;

/// Reads the ICC profile chunk and the animation flag from the RIFF container.
/// The ICC profile of the `ICCP` chunk, if any.
pub(crate) fn embedded_icc(data: &[u8]) -> Option<Vec<u8>> {
    riff_chunks(data).0
}

fn riff_chunks(data: &[u8]) -> (Option<Vec<u8>>, bool) {
    let (mut icc, mut animated) = (None, false);
    let mut pos = 12;
    while let Some(header) = data.get(pos..pos + 8) {
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let body = data.get(pos + 8..(pos + 8).saturating_add(len)).unwrap_or_default();
        match &header[0..4] {
            b"ICCP" => icc = Some(body.to_vec()),
            b"ANIM" => animated = true,
            _ => {}
        }
        pos = pos.saturating_add(8 + len + (len & 1));
    }
    (icc, animated)
}

/// Width and height from the first chunk: the canvas of an extended file, or the bitstream's.
pub(crate) fn dimensions(d: &[u8]) -> Result<(u32, u32), Error> {
    let truncated = || Error::truncated("WebP");
    let le24 = |at: usize| d.get(at..at + 3).map(|b| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16);
    match d.get(12..16).ok_or_else(truncated)? {
        b"VP8X" => Ok((le24(24).ok_or_else(truncated)? + 1, le24(27).ok_or_else(truncated)? + 1)),
        b"VP8L" => {
            let b = d.get(21..25).ok_or_else(truncated)?;
            let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8 " => {
            let b = d.get(26..30).ok_or_else(truncated)?;
            Ok((u32::from(u16::from_le_bytes([b[0], b[1]]) & 0x3FFF), u32::from(u16::from_le_bytes([b[2], b[3]]) & 0x3FFF)))
        }
        other => Err(Error::corrupt(format!("WebP starts with unknown chunk {:?}", String::from_utf8_lossy(other)))),
    }
}

pub(crate) fn decode(data: &[u8], limits: &Limits) -> Result<Image, Error> {
    let (icc, animated) = riff_chunks(data);
    let mut image = if animated { decode_animation(data, limits)? } else { decode_still(data)? };
    image.icc = icc;
    Ok(image)
}

fn decode_still(data: &[u8]) -> Result<Image, Error> {
    let (mut w, mut h) = (0, 0);
    let buf = unsafe { sys::WebPDecodeRGBA(data.as_ptr(), data.len(), &mut w, &mut h) };
    if buf.is_null() {
        return Err(Error::corrupt("WebP: libwebp could not decode the image"));
    }
    let rgba = unsafe { std::slice::from_raw_parts(buf, w as usize * h as usize * 4).to_vec() };
    unsafe { sys::WebPFree(buf.cast()) };
    Ok(Image::still(Pixels::rgba8(w as u32, h as u32, rgba)))
}

/// Frees the animation decoder however decoding ends.
struct AnimDecoder(*mut sys::WebPAnimDecoder);
impl Drop for AnimDecoder {
    fn drop(&mut self) {
        unsafe { sys::WebPAnimDecoderDelete(self.0) }
    }
}

fn decode_animation(data: &[u8], limits: &Limits) -> Result<Image, Error> {
    let mut options: sys::WebPAnimDecoderOptions = unsafe { std::mem::zeroed() };
    if unsafe { sys::WebPAnimDecoderOptionsInit(&mut options) } == 0 {
        return Err(Error::internal("WebP animation decoder options"));
    }
    options.color_mode = sys::WEBP_CSP_MODE::MODE_RGBA;
    options.use_threads = 0;
    let webp_data = sys::WebPData { bytes: data.as_ptr(), size: data.len() };
    let decoder = AnimDecoder(unsafe { sys::WebPAnimDecoderNew(&webp_data, &options) });
    if decoder.0.is_null() {
        return Err(Error::corrupt("WebP: invalid animation"));
    }
    let mut info: sys::WebPAnimInfo = unsafe { std::mem::zeroed() };
    if unsafe { sys::WebPAnimDecoderGetInfo(decoder.0, &mut info) } == 0 {
        return Err(Error::corrupt("WebP: invalid animation header"));
    }
    let (w, h) = (info.canvas_width, info.canvas_height);
    if info.frame_count > limits.max_frames {
        return Err(Error::LimitExceeded {
            what: LimitKind::Frames,
            value: u64::from(info.frame_count),
            limit: u64::from(limits.max_frames),
        });
    }
    let total = u64::from(info.frame_count) * u64::from(w) * u64::from(h);
    if total > limits.max_pixels {
        return Err(Error::LimitExceeded { what: LimitKind::Pixels, value: total, limit: limits.max_pixels });
    }
    let mut frames = Vec::with_capacity(info.frame_count as usize);
    let mut previous_end = 0;
    while unsafe { sys::WebPAnimDecoderHasMoreFrames(decoder.0) } != 0 {
        let (mut buf, mut end): (*mut u8, c_int) = (ptr::null_mut(), 0);
        if unsafe { sys::WebPAnimDecoderGetNext(decoder.0, &mut buf, &mut end) } == 0 {
            return Err(Error::corrupt(format!("WebP: frame {} cannot be decoded", frames.len() + 1)));
        }
        let rgba = unsafe { std::slice::from_raw_parts(buf, w as usize * h as usize * 4).to_vec() };
        frames.push(Frame { pixels: Pixels::rgba8(w, h, rgba), delay_ms: (end - previous_end).max(0) as u32 });
        previous_end = end;
    }
    if frames.is_empty() {
        return Err(Error::corrupt("WebP animation has no frames"));
    }
    let mut image = Image::still(frames[0].pixels.clone());
    image.frames = frames;
    image.loop_count = info.loop_count;
    Ok(image)
}

/// Encoder settings: `quality` 0-100 for lossy, or lossless; `effort` 1-6 maps to libwebp's method
/// (see [`method`]).
pub(crate) struct Settings {
    pub lossless: bool,
    pub quality: u8,
    pub effort: u8,
}

/// libwebp's `method` (0 fast .. 6 slow) for an effort. The default effort 2 is method 5: at equal
/// SSIMULACRA2 (scores 60-90, 31 images of every kind) it needs 1.2 % fewer bytes than cwebp's and
/// sharp's default method 4, for 4 % more CPU on photos and 15 % more on a mix with graphics and
/// screenshots; method 6 saves 3.1 % for 1.9 x the CPU, so it waits for effort 3. Method 2
/// (effort 1) is about 15 % larger than method 4.
fn method(effort: u8) -> c_int {
    match effort {
        0 | 1 => 2,
        2 => 5,
        _ => 6,
    }
}

fn config(s: &Settings) -> Result<sys::WebPConfig, Error> {
    let mut config = sys::WebPConfig::new().map_err(|()| Error::internal("WebP config"))?;
    config.lossless = c_int::from(s.lossless);
    config.quality = if s.lossless { 75.0 } else { f32::from(s.quality) };
    config.method = method(s.effort);
    if s.lossless {
        config.exact = 1; // keep the colour of transparent pixels: lossless means every sample
    }
    config.thread_level = 0;
    if unsafe { sys::WebPValidateConfig(&config) } == 0 {
        return Err(Error::internal("WebP config is invalid"));
    }
    Ok(config)
}

/// Frees a picture however encoding ends.
struct Picture(sys::WebPPicture);
impl Drop for Picture {
    fn drop(&mut self) {
        unsafe { sys::WebPPictureFree(&mut self.0) }
    }
}

fn picture(pixels: &Pixels, lossless: bool) -> Result<Picture, Error> {
    let mut pic = Picture(sys::WebPPicture::new().map_err(|()| Error::internal("WebP picture"))?);
    pic.0.use_argb = c_int::from(lossless);
    pic.0.width = pixels.width as c_int;
    pic.0.height = pixels.height as c_int;
    let rgba = pixels.to_rgba8();
    if unsafe { sys::WebPPictureImportRGBA(&mut pic.0, rgba.as_ptr(), pixels.width as c_int * 4) } == 0 {
        return Err(Error::internal("WebP: out of memory importing pixels"));
    }
    Ok(pic)
}

pub(crate) fn encode(image: &Image, settings: &Settings) -> Result<Vec<u8>, Error> {
    if image.width > 16383 || image.height > 16383 {
        return Err(Error::unsupported(format!("WebP images are at most 16383x16383, this one is {}x{}", image.width, image.height)));
    }
    let config = config(settings)?;
    let data = if image.is_animated() { encode_animation(image, &config)? } else { encode_still(image.first(), &config)? };
    match &image.icc {
        Some(icc) => set_icc(&data, icc),
        None => Ok(data),
    }
}

fn encode_still(pixels: &Pixels, config: &sys::WebPConfig) -> Result<Vec<u8>, Error> {
    let mut pic = picture(pixels, config.lossless != 0)?;
    let mut writer: sys::WebPMemoryWriter = unsafe { std::mem::zeroed() };
    unsafe { sys::WebPMemoryWriterInit(&mut writer) };
    pic.0.writer = Some(sys::WebPMemoryWrite);
    pic.0.custom_ptr = (&mut writer as *mut sys::WebPMemoryWriter).cast();
    let ok = unsafe { sys::WebPEncode(config, &mut pic.0) };
    let out = unsafe { std::slice::from_raw_parts(writer.mem, writer.size).to_vec() };
    unsafe { sys::WebPMemoryWriterClear(&mut writer) };
    if ok == 0 {
        return Err(Error::internal(format!("WebP encoder failed: {:?}", pic.0.error_code)));
    }
    Ok(out)
}

/// Assembles the animation frame by frame with the muxer, so every input frame stays a frame
/// with its own duration (libwebp's animation encoder would merge identical frames). Each frame
/// stores only the rectangle that changed, replacing those pixels exactly (no blending).
fn encode_animation(image: &Image, config: &sys::WebPConfig) -> Result<Vec<u8>, Error> {
    let mux = Mux(sys::WebPMuxNew());
    if mux.0.is_null() {
        return Err(Error::internal("WebP muxer"));
    }
    let params = sys::WebPMuxAnimParams { bgcolor: 0, loop_count: image.loop_count.min(65535) as c_int };
    let ok = |e: sys::WebPMuxError, what: &str| {
        if e == sys::WebPMuxError::WEBP_MUX_OK { Ok(()) } else { Err(Error::internal(format!("WebP muxer: {what}: {e:?}"))) }
    };
    ok(unsafe { sys::WebPMuxSetAnimationParams(mux.0, &params) }, "animation parameters")?;
    let (w, h) = (image.width as usize, image.height as usize);
    let mut shown = vec![0u8; w * h * 4];
    for frame in &image.frames {
        let canvas = frame.pixels.to_rgba8();
        let as_pixels = |rgba: &[u8]| -> Vec<[u8; 4]> { rgba.chunks_exact(4).map(|p| [p[0], p[1], p[2], p[3]]).collect() };
        let (mut left, mut top, right, bottom) = changed_bounds(&as_pixels(&canvas), &as_pixels(&shown), w, h).unwrap_or((0, 0, 1, 1));
        // Frame offsets are stored halved: round the rectangle's corner down to even.
        left &= !1;
        top &= !1;
        let (fw, fh) = (right - left, bottom - top);
        let mut patch = Vec::with_capacity(fw * fh * 4);
        for y in top..bottom {
            patch.extend_from_slice(&canvas[(y * w + left) * 4..(y * w + right) * 4]);
        }
        let bitstream = encode_still(&Pixels::rgba8(fw as u32, fh as u32, patch), config)?;
        let info = sys::WebPMuxFrameInfo {
            bitstream: sys::WebPData { bytes: bitstream.as_ptr(), size: bitstream.len() },
            x_offset: left as c_int,
            y_offset: top as c_int,
            duration: frame.delay_ms.min(0xFF_FFFF) as c_int,
            id: sys::WebPChunkId::WEBP_CHUNK_ANMF,
            dispose_method: sys::WebPMuxAnimDispose::WEBP_MUX_DISPOSE_NONE,
            blend_method: sys::WebPMuxAnimBlend::WEBP_MUX_NO_BLEND,
            pad: [0],
        };
        ok(unsafe { sys::WebPMuxPushFrame(mux.0, &info, 1) }, "frame")?;
        shown.copy_from_slice(&canvas);
    }
    ok(unsafe { sys::WebPMuxSetCanvasSize(mux.0, w as c_int, h as c_int) }, "canvas size")?;
    let mut out = sys::WebPData::default();
    ok(unsafe { sys::WebPMuxAssemble(mux.0, &mut out) }, "assemble")?;
    let bytes = unsafe { std::slice::from_raw_parts(out.bytes, out.size).to_vec() };
    unsafe { sys::WebPDataClear(&mut out) };
    Ok(bytes)
}

struct Mux(*mut sys::WebPMux);
impl Drop for Mux {
    fn drop(&mut self) {
        unsafe { sys::WebPMuxDelete(self.0) }
    }
}

/// Adds an ICCP chunk (the muxer also sets the VP8X flag for it).
fn set_icc(webp: &[u8], icc: &[u8]) -> Result<Vec<u8>, Error> {
    let data = sys::WebPData { bytes: webp.as_ptr(), size: webp.len() };
    let mux = Mux(unsafe { sys::WebPMuxCreateInternal(&data, 1, sys::WebPGetMuxABIVersion()) });
    if mux.0.is_null() {
        return Err(Error::internal("WebP muxer could not read the encoded image"));
    }
    let chunk = sys::WebPData { bytes: icc.as_ptr(), size: icc.len() };
    if unsafe { sys::WebPMuxSetChunk(mux.0, c"ICCP".as_ptr(), &chunk, 1) } != sys::WebPMuxError::WEBP_MUX_OK {
        return Err(Error::internal("WebP muxer refused the ICC profile"));
    }
    let mut out = sys::WebPData::default();
    if unsafe { sys::WebPMuxAssemble(mux.0, &mut out) } != sys::WebPMuxError::WEBP_MUX_OK {
        return Err(Error::internal("WebP muxer could not assemble the file"));
    }
    let bytes = unsafe { std::slice::from_raw_parts(out.bytes, out.size).to_vec() };
    unsafe { sys::WebPDataClear(&mut out) };
    Ok(bytes)
}
