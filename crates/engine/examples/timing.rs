fn main() {
    let path = std::env::args().nth(1).unwrap();
    let data = std::fs::read(path).unwrap();
    for score in [false, true] {
        for mode in [compressor_engine::Mode::Lossless, compressor_engine::Mode::Lossy] {
            let opts = compressor_engine::Options { mode, score, ..Default::default() };
            let t = std::time::Instant::now();
            let r = compressor_engine::compress(&data, &opts).unwrap();
            println!("{mode:?} score={score}: {} -> {} in {:?}", r.input_size, r.output_size, t.elapsed());
        }
    }
}
