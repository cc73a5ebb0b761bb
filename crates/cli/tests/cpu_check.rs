//! The binary is compiled for x86-64-v3 (.cargo/config.toml). On an older CPU it must say which
//! CPU it needs and exit, not die of SIGILL. Run under qemu-user with CPU models either side of
//! the line: Westmere (2010, no AVX) and Haswell (2013, the first x86-64-v3).

use std::process::Command;

fn qemu() -> &'static str {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join("qemu-x86_64").is_file());
    assert!(found, "qemu-x86_64 is needed for this test: install qemu-user (scripts/install-deps.sh does)");
    "qemu-x86_64"
}

#[test]
fn an_older_cpu_gets_a_clear_message_and_a_newer_one_runs() {
    if !cfg!(all(target_arch = "x86_64", target_feature = "avx2")) {
        return; // built for baseline x86-64: it runs anywhere, nothing to check
    }
    let binary = env!("CARGO_BIN_EXE_compressor");
    let old = Command::new(qemu()).args(["-cpu", "Westmere", binary, "--version"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&old.stderr);
    assert_eq!(old.status.code(), Some(1), "status {:?}, stderr: {stderr}", old.status);
    assert!(stderr.contains("this build needs an x86-64-v3 CPU"), "{stderr}");
    assert!(old.stdout.is_empty(), "the program itself must not have started");

    let new = Command::new(qemu()).args(["-cpu", "Haswell", binary, "--version"]).output().unwrap();
    assert!(new.status.success(), "status {:?}, stderr: {}", new.status, String::from_utf8_lossy(&new.stderr));
    assert!(String::from_utf8_lossy(&new.stdout).starts_with("compressor "), "{:?}", new.stdout);
}
