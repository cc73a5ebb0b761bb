//! Links the CPU check (csrc/cpu_check.c) when the Rust code is compiled for an x86-64 level above
//! the baseline, so the program says which CPU it needs instead of dying with SIGILL.

fn main() {
    println!("cargo:rerun-if-changed=csrc/cpu_check.c");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let has = |f: &str| features.split(',').any(|x| x == f);
    let level = if has("avx512f") && has("avx512bw") && has("avx512vl") {
        "x86-64-v4"
    } else if has("avx2") && has("fma") && has("bmi2") {
        "x86-64-v3"
    } else {
        return;
    };
    if arch != "x86_64" {
        return;
    }
    cc::Build::new()
        .file("csrc/cpu_check.c")
        // The check itself must run on any x86-64 CPU.
        .flag("-march=x86-64")
        .inherit_rustflags(false)
        .define("COMPRESSOR_X86_64_LEVEL", Some(format!("\"{level}\"").as_str()))
        .cargo_metadata(false)
        .compile("compressor_cpu_check");
    // Nothing refers to the constructor by name: keep the whole archive so the linker keeps it.
    println!("cargo:rustc-link-search=native={}", std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rustc-link-lib=static:+whole-archive=compressor_cpu_check");
}
