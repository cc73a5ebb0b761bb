//! The manifest as a resumed run reads it (`read_manifest`, the reader of local files and remote
//! segments alike).

use compressor_batch::{Record, Status, read_manifest};

fn line(record: &Record) -> String {
    serde_json::to_string(record).unwrap()
}

/// A run killed while writing a line whose key is not ASCII leaves the file ending inside a
/// character. That line is lost, not the whole history (it was: the file was read as one UTF-8
/// string, and one bad byte made every earlier record vanish, so every image was redone).
#[test]
fn a_line_cut_inside_a_character_loses_only_that_line() {
    let first = line(&Record::new("a.png", 10, "v1", Status::Done));
    let torn = line(&Record::new("photos/café.png", 20, "v1", Status::Done));
    let cut = torn.find('é').unwrap() + 1; // the first byte of the two-byte character
    let bytes = [first.as_bytes(), b"\n", &torn.as_bytes()[..cut]].concat();
    assert!(std::str::from_utf8(&bytes).is_err());

    let history = read_manifest(&bytes);
    assert_eq!(history.keys().collect::<Vec<_>>(), ["a.png"]);
}

#[test]
fn the_last_record_of_a_key_wins_and_records_read_back_as_written() {
    let mut failed = Record::new("k/ü.jpg", 5, "e", Status::Failed);
    failed.error_code = Some("corrupt_image".into());
    let done = Record::new("k/ü.jpg", 5, "e", Status::Done);
    let bytes = [line(&failed), line(&done)].join("\n");
    let history = read_manifest(bytes.as_bytes());
    assert_eq!(line(&history["k/ü.jpg"]), line(&done));
}

/// A run killed mid-line leaves the manifest without its final newline. The next run ends that
/// line before appending, so its first record is a line of its own (it used to be glued to the
/// torn one, and lost with it).
#[test]
fn a_resumed_run_starts_its_records_on_a_new_line() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    std::fs::create_dir_all(&src).unwrap();
    for name in ["a.png", "b.png"] {
        let rgba: Vec<u8> = (0..16 * 16 * 4).map(|i| (i * 7 % 251) as u8).collect();
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, 16, 16);
        encoder.set_color(png::ColorType::Rgba);
        encoder.write_header().unwrap().write_image_data(&rgba).unwrap();
        std::fs::write(src.join(name), png).unwrap();
    }
    let manifest = dst.join(".compressor/manifest-0-of-1.jsonl");
    std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
    std::fs::write(&manifest, br#"{"key":"gone.png","sou"#).unwrap();

    let args = compressor_batch::Settings { src: src.to_str().unwrap().into(), dst: dst.to_str().unwrap().into(), ..Default::default() };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(compressor_batch::run(args, compressor_engine::Options::default(), Default::default())).unwrap();

    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut keys: Vec<String> = text.lines().filter_map(|l| serde_json::from_str::<Record>(l).ok()).map(|r| r.key).collect();
    keys.sort();
    assert_eq!(keys, ["a.png", "b.png"], "manifest:\n{text}");
}
