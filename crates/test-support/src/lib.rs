//! What the workspace's test crates share (a dev-dependency of each, never of the program):
//! where the shared corpus is, with the rule for when it is missing; image generators; decoders
//! independent of the engine, for comparing pixels; and ports and paths for tests that start
//! processes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// ---- the corpus ------------------------------------------------------------------------------

/// The shared corpus, from `COMPRESSOR_CORPUS`. Unset: `None` and a notice (the test is skipped,
/// for a developer without it). Set but missing: a failure, so CI cannot silently skip.
pub fn corpus() -> Option<PathBuf> {
    match std::env::var_os("COMPRESSOR_CORPUS") {
        None => {
            eprintln!("COMPRESSOR_CORPUS is not set: skipping a corpus test");
            None
        }
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(dir.is_dir(), "COMPRESSOR_CORPUS={} is not a directory", dir.display());
            Some(dir)
        }
    }
}

/// A file of the corpus by its path inside it; `None` (skip) as [`corpus`] says, a failure when
/// the corpus is there but the file is not.
pub fn corpus_file(relative: &str) -> Option<PathBuf> {
    let path = corpus()?.join(relative);
    assert!(path.is_file(), "{} is missing from the corpus", path.display());
    Some(path)
}

/// Files directly in `dir` (not recursive) with one of the extensions, sorted.
pub fn files(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| extensions.iter().any(|e| x.eq_ignore_ascii_case(e))))
        .collect();
    out.sort();
    out
}

/// All files under `dir`, recursively, sorted.
pub fn files_recursive(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out.sort();
    out
}

// ---- generated images ------------------------------------------------------------------------

/// Pixels as a plain PNG (8-bit, fast deflate, no optimisation): an input with something to gain.
/// `samples` holds `color`'s channels per pixel; `chunks` are written before the image data.
pub fn encode_png_as(width: u32, height: u32, color: png::ColorType, samples: &[u8], chunks: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().unwrap();
        for (name, data) in chunks {
            writer.write_chunk(png::chunk::ChunkType(*name), data).unwrap();
        }
        writer.write_image_data(samples).unwrap();
    }
    out
}

/// RGBA8 pixels as a plain PNG; see [`encode_png_as`].
pub fn encode_png(width: u32, height: u32, rgba: &[u8], chunks: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    encode_png_as(width, height, png::ColorType::Rgba, rgba, chunks)
}

/// A photo-like test image: smooth gradients plus deterministic noise, with an optional alpha ramp.
pub fn synthetic_rgba(width: u32, height: u32, alpha: bool) -> Vec<u8> {
    let mut seed = 0x2545_f491_u32;
    let mut out = Vec::with_capacity((width * height * 4) as usize);
    for y in 0..height {
        for x in 0..width {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let noise = (seed % 24) as u8;
            let r = ((x * 255 / width.max(1)) as u8).saturating_add(noise);
            let g = ((y * 255 / height.max(1)) as u8).saturating_add(noise / 2);
            let b = (((x + y) * 127 / (width + height).max(1)) as u8).saturating_add(noise);
            let a = if alpha { (x * 255 / width.max(1)) as u8 } else { 255 };
            out.extend_from_slice(&[r, g, b, a]);
        }
    }
    out
}

/// An RGB PNG of a gradient with noise seeded by `seed`: many colours, so lossy palette
/// quantization makes it much smaller, and the encoders have real work to do.
pub fn noisy_png(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761) | 1;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 24) as u8
    };
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            pixels.push(((x * 200 / width.max(1)) as u8).wrapping_add(noise()));
            pixels.push(((y * 200 / height.max(1)) as u8).wrapping_add(noise()));
            pixels.push((((x + y) * 100 / (width + height).max(1)) as u8).wrapping_add(noise()));
        }
    }
    encode_png_as(width, height, png::ColorType::Rgb, &pixels, &[])
}

/// A PNG header declaring `width` x `height` with a tiny IDAT: a decompression bomb by its header.
pub fn bomb_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = !crc32(data, crc32(kind, 0xFFFF_FFFF));
        out.extend_from_slice(&crc.to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

fn crc32(data: &[u8], mut crc: u32) -> u32 {
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    crc
}

// ---- decoding and comparing ------------------------------------------------------------------

/// PNG pixels as RGBA with 16-bit samples (8-bit scaled by 257), so any two decodings compare.
pub fn png_rgba16(data: &[u8]) -> (u32, u32, Vec<u16>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(data));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).expect("PNG frame");
    buf.truncate(frame.buffer_size());
    let samples: Vec<u16> = match frame.bit_depth {
        png::BitDepth::Sixteen => buf.chunks_exact(2).map(|b| u16::from_be_bytes([b[0], b[1]])).collect(),
        _ => buf.iter().map(|&b| u16::from(b) * 257).collect(),
    };
    let rgba = match frame.color_type.samples() {
        4 => samples,
        3 => samples.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], u16::MAX]).collect(),
        2 => samples.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect(),
        _ => samples.iter().flat_map(|&g| [g, g, g, u16::MAX]).collect(),
    };
    (frame.width, frame.height, rgba)
}

/// Width and height of a PNG, decoding it fully (so a broken output fails the test).
pub fn decode_png(data: &[u8]) -> (u32, u32) {
    let (width, height, _) = png_rgba16(data);
    (width, height)
}

/// JPEG samples as libjpeg decodes them (RGB, gray or CMYK), without block smoothing.
pub fn jpeg_samples(data: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut d = mozjpeg::Decompress::new_mem(data).expect("JPEG header");
    d.do_block_smoothing(false);
    let (w, h) = d.size();
    let samples = match d.image().expect("JPEG start") {
        mozjpeg::decompress::Format::RGB(mut s) => s.read_scanlines::<u8>().unwrap(),
        mozjpeg::decompress::Format::Gray(mut s) => s.read_scanlines::<u8>().unwrap(),
        mozjpeg::decompress::Format::CMYK(mut s) => s.read_scanlines::<u8>().unwrap(),
    };
    (w, h, samples)
}

/// Mean absolute difference per channel (R, G, B, A) of two RGBA8 buffers.
pub fn mae(a: &[u8], b: &[u8]) -> [f64; 4] {
    assert_eq!(a.len(), b.len(), "buffers differ in size");
    let mut sum = [0u64; 4];
    for (pa, pb) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for c in 0..4 {
            sum[c] += u64::from(pa[c].abs_diff(pb[c]));
        }
    }
    let n = (a.len() / 4).max(1) as f64;
    sum.map(|s| s as f64 / n)
}

/// Asserts every channel's mean absolute error is below `limit`, with a readable message.
pub fn assert_close(what: &str, got: &[u8], want: &[u8], limit: f64) {
    let e = mae(got, want);
    eprintln!("{what}: mean abs error R {:.3} G {:.3} B {:.3} A {:.3}", e[0], e[1], e[2], e[3]);
    assert!(e.iter().all(|&v| v < limit), "{what}: mean absolute error {e:?} not below {limit}");
}

// ---- processes -------------------------------------------------------------------------------

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something accepts connections on the loopback `port`; fails after 30 s.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start listening on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `ready` every 50 ms until it is true; fails the test after `deadline`.
pub fn wait_until(what: &str, deadline: Duration, mut ready: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !ready() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `compressor serve` process started from `command` (which must log JSON to standard error),
/// its address read from its first log line; killed when dropped.
pub struct Served {
    pub child: std::process::Child,
    pub address: String,
}

impl Served {
    pub fn start(mut command: std::process::Command) -> Served {
        use std::io::BufRead as _;
        let mut child = command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().expect("compressor serve");
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().expect("a log line").unwrap();
        // The rest is read and dropped, so the service never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let event: serde_json::Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
        let address = event["fields"]["address"].as_str().expect("the listening address").to_owned();
        Served { child, address }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- videos ----------------------------------------------------------------------------------

/// A `testsrc2` clip made by ffmpeg: `size` (`WxH`) at `rate` fps for `seconds`, with a 440 Hz
/// tone when `tone`, encoded as `output` says (codec and container arguments; without any,
/// ffmpeg's defaults for `path`'s extension) into `path`, whose folder is made first.
pub fn ffmpeg_clip(path: &Path, size: &str, rate: u32, seconds: u32, tone: bool, output: &[&str]) {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).unwrap();
    }
    let mut command = std::process::Command::new("ffmpeg");
    command.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"]);
    command.arg(format!("testsrc2=size={size}:rate={rate}:duration={seconds}"));
    if tone {
        command.args(["-f", "lavfi", "-i"]).arg(format!("sine=frequency=440:duration={seconds}"));
    }
    let out = command.args(output).arg(path).output().expect("ffmpeg (Debian package ffmpeg)");
    assert!(out.status.success(), "ffmpeg making {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
}

/// Makes a test video with ffmpeg: `testsrc2` at `width`×`height`, 30 fps, with a sine tone,
/// H.264 at near-lossless quality (a camera original, so re-encoding saves bytes).
pub fn test_video(path: &Path, width: u32, height: u32, seconds: u32) {
    let output = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "8", "-pix_fmt", "yuv444p", "-c:a", "aac", "-shortest"];
    ffmpeg_clip(path, &format!("{width}x{height}"), 30, seconds, true, &output);
}

/// What ffprobe finds in a video file, decoding every frame (so a broken file fails the test).
#[derive(Debug, Clone, PartialEq)]
pub struct Probed {
    /// Frames decoded from the first video stream (0 without one).
    pub frames: u64,
    /// The container's duration in seconds.
    pub duration: f64,
    /// Every stream's codec, in stream order.
    pub codecs: Vec<String>,
    /// The first video stream's codec, width and height (empty and 0 without one).
    pub video_codec: String,
    pub width: u32,
    pub height: u32,
}

/// ffprobe's reading of `path`, every frame decoded.
pub fn ffprobe(path: &Path) -> Probed {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-print_format", "json", "-show_streams", "-show_format"])
        .arg(path)
        .output()
        .expect("ffprobe (Debian package ffmpeg)");
    assert!(out.status.success(), "ffprobe {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let video = streams.iter().find(|s| s["codec_type"] == "video").cloned().unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    Probed {
        frames: video["nb_read_frames"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0),
        duration: json["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0),
        codecs: streams.iter().map(|s| text(&s["codec_name"])).collect(),
        video_codec: text(&video["codec_name"]),
        width: video["width"].as_u64().unwrap_or(0) as u32,
        height: video["height"].as_u64().unwrap_or(0) as u32,
    }
}

/// Makes a video ffprobe reads and ffmpeg decodes but cannot transcode: a 1 s `testsrc2` clip
/// with a 9-channel PCM track in Matroska. Neither ffmpeg's AAC encoder ("Unsupported channel
/// layout") nor libopus ("mapping family undefined for 9 channels") opens for it, so the
/// transcode fails on the output side (`transcode_failed`), in MP4 and in WebM alike.
pub fn untranscodable_video(path: &Path) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1"])
        .args(["-f", "s16le", "-ar", "8000", "-ac", "9", "-t", "1", "-i", "/dev/zero"])
        .args(["-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s16le", "-f", "matroska"])
        .arg(path)
        .output()
        .expect("ffmpeg (Debian package ffmpeg)");
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
}
