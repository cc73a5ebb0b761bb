//! A batch manifest as resume reads it: never panics, and a record it accepts re-serialises to a
//! line that reads back as the same record.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    compressor_fuzz::panic_policy();
    let history = compressor_batch::read_manifest(data);
    for record in history.values() {
        let line = serde_json::to_string(record).expect("a record serialises");
        let again = compressor_batch::read_manifest(line.as_bytes());
        let reread = again.get(&record.key).unwrap_or_else(|| panic!("{line} does not read back"));
        assert_eq!(serde_json::to_string(reread).unwrap(), line, "the record changed on a round trip");
    }
});
