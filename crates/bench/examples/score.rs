// scratch: SSIMULACRA2 of each file after the first against the first
fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let r = compressor_bench::measure::decode(&std::fs::read(&a[0]).unwrap(), None).unwrap();
    for p in &a[1..] {
        let d = std::fs::read(p).unwrap();
        let s = compressor_bench::measure::decode(&d, None).ok().and_then(|x| compressor_bench::measure::ssimulacra2(&r, &x));
        println!("{p} {} {:?}", d.len(), s);
    }
}
