//! Writes the committed seed inputs of every fuzz target into the folder given (`fuzz/seeds`):
//! tiny images made here and by the engine, odd headers, requests and manifest lines. Run by hand
//! when a target's input layout changes: `make-seeds fuzz/seeds`.

use std::path::Path;

// `cargo fuzz build` instruments every binary of this crate, this one too: libFuzzer's runtime
// defines the coverage hooks the instrumented code calls (rav1e used to pull it in unasked).
extern crate libfuzzer_sys;

use compressor_batch::{Record, Status, VideoRecord};
use compressor_engine::Format;
use compressor_fuzz::images::{self, convert, exif, jpeg_with_exif, png};
use png::{BitDepth, ColorType};

/// Option prefixes of the compress targets (see `options_from`): lossy keep, lossless keep,
/// lossy to WebP, lossless to PNG, auto, lossy to AVIF with a resize.
const CONTROLS: [[u8; 3]; 6] = [[0x40, 0xFF, 0], [0x41, 0xFF, 0], [0x52, 70, 10], [0x4F, 0xFF, 0], [0x4C, 60, 0], [0x5C, 40, 0xF2]];

fn write(dir: &Path, target: &str, name: &str, data: &[u8]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("seed folder");
    std::fs::write(dir.join(name), data).expect("seed file");
}

fn with_controls(dir: &Path, target: &str, name: &str, image: &[u8]) {
    for (i, control) in CONTROLS.iter().enumerate() {
        write(dir, target, &format!("{name}-{i}"), &[control.as_slice(), image].concat());
    }
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: make-seeds FOLDER");
    let dir = Path::new(&dir);
    let orientation6 = exif(true, &[(0x0112, 3, 1, 6)]);
    let rgba = images::rgba_png(16, 12);
    let pngs: Vec<(&str, Vec<u8>)> = vec![
        ("rgba", rgba.clone()),
        ("rgb", png(9, 7, ColorType::Rgb, BitDepth::Eight, 1, &[])),
        ("gray1", png(9, 5, ColorType::Grayscale, BitDepth::One, 1, &[])),
        ("gray-alpha", png(6, 6, ColorType::GrayscaleAlpha, BitDepth::Eight, 1, &[])),
        ("indexed", png(8, 8, ColorType::Indexed, BitDepth::Eight, 1, &[])),
        ("rgba16", png(4, 5, ColorType::Rgba, BitDepth::Sixteen, 1, &[])),
        ("apng", png(8, 6, ColorType::Rgba, BitDepth::Eight, 3, &[])),
        ("exif-orientation", png(10, 4, ColorType::Rgb, BitDepth::Eight, 1, &[(b"eXIf", &orientation6)])),
        ("text-gamma", png(5, 5, ColorType::Rgb, BitDepth::Eight, 1, &[(b"gAMA", &45455u32.to_be_bytes()), (b"tEXt", b"Comment\0hello")])),
    ];
    for (name, data) in &pngs {
        with_controls(dir, "compress_png", name, data);
    }
    with_controls(dir, "compress_png", "truncated", &rgba[..rgba.len() / 2]);

    let jpeg = convert(&rgba, Format::Jpeg, false);
    let gray_jpeg = convert(&pngs[2].1, Format::Jpeg, false);
    with_controls(dir, "compress_jpeg", "rgb", &jpeg);
    with_controls(dir, "compress_jpeg", "gray", &gray_jpeg);
    with_controls(dir, "compress_jpeg", "exif-orientation", &jpeg_with_exif(&jpeg, &orientation6));
    with_controls(dir, "compress_jpeg", "truncated", &jpeg[..jpeg.len() * 2 / 3]);

    for (name, data) in [
        ("still", convert(&rgba, Format::Gif, false)),
        ("animated", images::gif_animation(7, 5, 3, 16)),
        ("indexed", convert(&pngs[4].1, Format::Gif, false)),
    ] {
        with_controls(dir, "compress_gif", name, &data);
    }
    for (name, data) in [
        ("lossy", convert(&rgba, Format::WebP, false)),
        ("lossless", convert(&rgba, Format::WebP, true)),
        ("animated", convert(&images::gif_animation(6, 6, 3, 8), Format::WebP, true)),
    ] {
        with_controls(dir, "compress_webp", name, &data);
    }
    let avifs = [
        ("lossy", convert(&rgba, Format::Avif, false)),
        ("rgb", convert(&pngs[1].1, Format::Avif, false)),
        ("gray", convert(&pngs[3].1, Format::Avif, false)),
    ];
    for (name, data) in &avifs {
        with_controls(dir, "compress_avif", name, data);
        write(dir, "avif_container", name, data);
        write(dir, "avif_container", &format!("{name}-truncated"), &data[..data.len() * 3 / 4]);
    }

    // metadata: a control byte (container, policy, output format, mode), then the EXIF block.
    let exifs = [
        ("orientation6-be", orientation6.clone()),
        ("orientation8-le", exif(false, &[(0x0112, 3, 1, 8)])),
        ("gps-and-orientation", exif(true, &[(0x010F, 2, 4, 0x4143_4D45), (0x0112, 3, 1, 3), (0x8825, 4, 1, 26)])),
        ("bad-offset", [b"MM\0*".as_slice(), &[0xFF, 0xFF, 0xFF, 0xF0]].concat()),
    ];
    for (name, block) in &exifs {
        for control in [0x00u8, 0x01, 0x02, 0x05, 0x06, 0x07, 0x10, 0x21, 0x24, 0x35] {
            write(dir, "metadata", &format!("{name}-{control:02x}"), &[&[control][..], block.as_slice()].concat());
        }
    }

    // v1_query: query, Accept, Content-Type, then the body.
    let small = &pngs[1].1;
    // `note`: a field besides the file, which the legacy route reads past and /v1 refuses.
    let form = |field: &str, boundary: &str, image: &[u8], note: bool| {
        let note =
            if note { format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n") } else { String::new() };
        [
            note.as_bytes(),
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"a b.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
            image,
            format!("\r\n--{boundary}--\r\n").as_bytes(),
        ]
        .concat()
    };
    let queries: [(&str, &str, &str, &[u8]); 8] = [
        ("", "", "image/png", small),
        ("quality=60-80&effort=1", "application/json", "application/octet-stream", small),
        ("format=webp&mode=lossless&metadata=strip", "image/webp", "", small),
        ("format=auto&width=4&fit=scale", "image/avif,image/webp,*/*", "", &jpeg),
        ("width=3&height=3&fit=cover&enlarge=true", "", "", small),
        ("max_bytes=100&allow_downscale=true&score=true", "application/json", "", &jpeg),
        ("target_quality=70&format=jpeg", "", "", small),
        ("quality=101&bogus=1&effort=9", "", "", b"not an image"),
    ];
    for (i, (query, accept, content_type, body)) in queries.iter().enumerate() {
        write(
            dir,
            "v1_query",
            &format!("raw-{i}"),
            &[query.as_bytes(), b"\n", accept.as_bytes(), b"\n", content_type.as_bytes(), b"\n", body].concat(),
        );
    }
    let multipart =
        [b"mode=lossless\n\nmultipart/form-data; boundary=XyZ\n".as_slice(), form("file", "XyZ", small, false).as_slice()].concat();
    write(dir, "v1_query", "multipart", &multipart);

    // legacy_multipart: query, Content-Type, then the multipart body.
    for (i, (query, boundary, field, image)) in [
        ("strategy=pngquant", "XyZ", "image_files", small.as_slice()),
        ("strategy=stdlib", "----b0undary", "image_files", rgba.as_slice()),
        ("strategy=", "a", "image_files", jpeg.as_slice()),
        ("strategy=bimg", "XyZ", "image", small.as_slice()),
    ]
    .iter()
    .enumerate()
    {
        let body = form(field, boundary, image, true);
        write(
            dir,
            "legacy_multipart",
            &format!("form-{i}"),
            &[query.as_bytes(), b"\n", format!("multipart/form-data; boundary={boundary}").as_bytes(), b"\n", &body].concat(),
        );
        write(
            dir,
            "legacy_multipart",
            &format!("form-{i}-truncated"),
            &[query.as_bytes(), b"\n", format!("multipart/form-data; boundary={boundary}").as_bytes(), b"\n", &body[..body.len() / 2]]
                .concat(),
        );
    }

    // manifest_line: records as batch writes them, one per line, and a line cut short.
    let mut done = Record::new("photos/café.png", 1234, "\"etag-1\"", Status::Done);
    (done.output_key, done.output_size, done.method) = (Some("out/café.png".into()), Some(999), Some("png-quantized".into()));
    let mut failed = Record::new("bad.jpg", 10, "1700000000", Status::Failed);
    (failed.error, failed.error_code) = (Some("corrupt image: JPEG header is truncated".into()), Some("corrupt_image".into()));
    let mut video = Record::new("clip.mov", 5_000_000, "v1", Status::Done);
    video.video = Some(VideoRecord {
        format: "mp4".into(),
        video_codec: "h264".into(),
        audio_codec: Some("aac".into()),
        width: 1280,
        height: 720,
        duration_seconds: 12.345,
        source_container: "mov,mp4,m4a,3gp,3g2,mj2".into(),
        score: Some(88.5),
        ms: 4321,
    });
    let lines: Vec<String> =
        [&done, &failed, &video, &Record::new("same.gif", 1, "x", Status::Unchanged), &Record::new("e.webp", 2, "y", Status::Existing)]
            .iter()
            .map(|r| serde_json::to_string(r).expect("a record"))
            .collect();
    for (i, line) in lines.iter().enumerate() {
        write(dir, "manifest_line", &format!("record-{i}"), line.as_bytes());
    }
    let all = lines.join("\n");
    write(dir, "manifest_line", "several", all.as_bytes());
    write(dir, "manifest_line", "torn", &all.as_bytes()[..all.len() - 7]);
}
