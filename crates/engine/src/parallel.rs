//! How much of the machine one image may use: the codecs' own parallelism (rayon, in oxipng,
//! libimagequant and libaom's threads) only for images large enough to gain from it.

use std::sync::{Mutex, PoisonError};

/// Below this many pixels the codecs' internal parallelism (rayon, in oxipng and libimagequant;
/// libaom's threads follow the pool) costs more than it saves: waking the global thread pool and
/// its idle spinning doubled the CPU time of a 48×48 icon, while a 512×512 image still finishes sooner with both cores.
pub(crate) const PARALLEL_MIN_PIXELS: u64 = 256 * 1024;

/// Runs `job` in a one-thread rayon pool, so the codecs' parallel loops run in sequence and the
/// global pool is never started for it. Idle pools are kept for the next small image: one pool per
/// concurrent job, whichever thread calls. (A new pool per image would also spread a long batch's
/// allocations over ever more malloc arenas, and peak memory would grow with the image count.)
pub(crate) fn on_one_thread<T: Send>(job: impl FnOnce() -> T + Send) -> T {
    static IDLE_POOLS: Mutex<Vec<rayon::ThreadPool>> = Mutex::new(Vec::new());
    let idle = || IDLE_POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    let pool = idle().pop().or_else(|| rayon::ThreadPoolBuilder::new().num_threads(1).build().ok());
    let Some(pool) = pool else { return job() };
    let result = pool.install(job);
    idle().push(pool);
    result
}
