/* Runs before main, and so before any Rust code of this program, as a constructor compiled for
 * baseline x86-64 (build.rs passes -march=x86-64). The Rust code is compiled for a higher level
 * (see .cargo/config.toml) and would die with SIGILL on an older CPU; this says why instead. */
#include <unistd.h>

#if defined(COMPRESSOR_X86_64_LEVEL)
__attribute__((constructor)) static void compressor_check_cpu(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports(COMPRESSOR_X86_64_LEVEL)) {
        return;
    }
    static const char message[] =
        "compressor: this build needs an " COMPRESSOR_X86_64_LEVEL " CPU (AVX2, FMA and BMI2: Intel Haswell or AMD "
        "Excavator/Zen, 2013-2015, or later), and this CPU lacks it.\n"
        "compressor: rebuild for any x86-64 CPU with: RUSTFLAGS=\"-C target-cpu=x86-64\" cargo build --release\n";
    (void)!write(2, message, sizeof message - 1);
    _exit(1);
}
#endif
