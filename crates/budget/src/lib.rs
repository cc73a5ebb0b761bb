//! The memory budget: bytes of decoded pixels and codec state in flight, shared by every image
//! worker of one process (the server's pool, batch's jobs). Work asks for its estimated peak
//! (`compressor_engine::estimate_peak_bytes`) before it starts and holds the [`Reservation`]
//! until it ends. The default budget comes from the memory the process may use (the cgroup's
//! limit when there is one, else physical memory) less headroom, so a 1 GB instance is not
//! killed by the kernel when several large images arrive at once.
//!
//! Waiting is not first-come-first-served: whoever fits when memory is released goes, so small
//! images keep flowing while a large one waits for room (a fair queue would stall them behind it).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// Memory the process keeps outside the budget: the program, its threads' stacks, request and
/// response bodies, the allocator's slack.
const HEADROOM_BYTES: u64 = 256 << 20;

/// The budget for this process: 3/4 of what is left of the memory limit after the headroom.
/// (For a 1 GiB cgroup: 576 MiB.)
pub fn default_budget() -> u64 {
    budget_for(memory_limit())
}

fn budget_for(limit: u64) -> u64 {
    (limit.saturating_sub(HEADROOM_BYTES) / 4 * 3).max(64 << 20)
}

/// The memory this process may use: the cgroup v2 `memory.max` (or v1 `memory.limit_in_bytes`) of
/// its own cgroup when set, else the machine's physical memory.
pub fn memory_limit() -> u64 {
    let physical = physical_memory().unwrap_or(1 << 30);
    cgroup_limit().map_or(physical, |limit| limit.min(physical))
}

fn cgroup_limit() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in own.lines() {
        // v2: "0::/path"; v1: "N:memory:/path" (or a controller list holding "memory").
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let file = if controllers.is_empty() {
            format!("/sys/fs/cgroup{path}/memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
        } else {
            continue;
        };
        // Inside a container the cgroup path may not exist under its own /sys; the root file is it.
        let text = std::fs::read_to_string(&file)
            .or_else(|_| {
                std::fs::read_to_string(if controllers.is_empty() {
                    "/sys/fs/cgroup/memory.max"
                } else {
                    "/sys/fs/cgroup/memory/memory.limit_in_bytes"
                })
            })
            .ok()?;
        // "max" (v2) or a huge number (v1) mean no limit.
        return text.trim().parse::<u64>().ok().filter(|&n| n < (1 << 60));
    }
    None
}

fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `600M`, `1.5G`, `512MiB`, `2GB` or a bare number of bytes (K, M, G are powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("{text:?}: give bytes, or a number with K, M or G")),
    };
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a size like 600M or 2G"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !(1.0..1e18).contains(&bytes) {
        return Err(format!("{text:?} is not a usable size"));
    }
    Ok(bytes as u64)
}

/// Why a reservation was not granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// More than the whole budget: this work can never run here.
    NeverFits { needed: u64, budget: u64 },
    /// The budget stayed full for the whole wait.
    Busy { needed: u64, budget: u64 },
}

/// "needs about N MiB, more than the whole memory budget of M MiB" (or "…, and the memory budget
/// of M MiB had no room for it in time"): the end of a sentence that names the work.
impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b.div_ceil(1 << 20);
        match *self {
            Refusal::NeverFits { needed, budget } => {
                write!(f, "needs about {} MiB, more than the whole memory budget of {} MiB", mib(needed), mib(budget))
            }
            Refusal::Busy { needed, budget } => {
                write!(f, "needs about {} MiB, and the memory budget of {} MiB had no room for it in time", mib(needed), mib(budget))
            }
        }
    }
}

impl std::error::Error for Refusal {}

#[derive(Clone)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

struct Inner {
    total: u64,
    reserved: Mutex<u64>,
    released: Notify,
}

impl MemoryBudget {
    pub fn new(total: u64) -> MemoryBudget {
        MemoryBudget { inner: Arc::new(Inner { total, reserved: Mutex::new(0), released: Notify::new() }) }
    }

    pub fn total(&self) -> u64 {
        self.inner.total
    }

    /// Bytes held by reservations now.
    pub fn reserved(&self) -> u64 {
        *self.inner.reserved.lock().unwrap()
    }

    /// `bytes` at once, or a refusal saying whether waiting could help.
    pub fn try_reserve(&self, bytes: u64) -> Result<Reservation, Refusal> {
        let budget = self.inner.total;
        if bytes > budget {
            return Err(Refusal::NeverFits { needed: bytes, budget });
        }
        let mut reserved = self.inner.reserved.lock().unwrap();
        if *reserved + bytes > budget {
            return Err(Refusal::Busy { needed: bytes, budget });
        }
        *reserved += bytes;
        Ok(Reservation { budget: self.clone(), bytes })
    }

    /// `bytes`, waiting up to `wait` for other work to release enough (`None`: as long as it takes).
    pub async fn reserve(&self, bytes: u64, wait: Option<Duration>) -> Result<Reservation, Refusal> {
        let waiting = async {
            loop {
                // Registered before the check, so a release between the check and the wait is not missed.
                let released = self.inner.released.notified();
                tokio::pin!(released);
                released.as_mut().enable();
                match self.try_reserve(bytes) {
                    Err(Refusal::Busy { .. }) => released.await,
                    done => return done,
                }
            }
        };
        match wait {
            None => waiting.await,
            Some(wait) => {
                tokio::time::timeout(wait, waiting).await.unwrap_or(Err(Refusal::Busy { needed: bytes, budget: self.inner.total }))
            }
        }
    }
}

/// Held while the work runs; dropping it returns the bytes and wakes the waiters.
#[derive(Debug)]
#[must_use]
pub struct Reservation {
    budget: MemoryBudget,
    bytes: u64,
}

impl Reservation {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Takes `other` (of the same budget) into this reservation: one hold that is given back at once.
    pub fn merge(&mut self, mut other: Reservation) {
        debug_assert!(Arc::ptr_eq(&self.budget.inner, &other.budget.inner), "reservations of different budgets");
        self.bytes += std::mem::take(&mut other.bytes);
    }
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemoryBudget({} of {} bytes reserved)", self.reserved(), self.inner.total)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        *self.budget.inner.reserved.lock().unwrap() -= self.bytes;
        self.budget.inner.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_leaves_headroom_below_the_limit() {
        assert_eq!(budget_for(1 << 30), 576 << 20);
        assert_eq!(budget_for(8 << 30), ((8u64 << 30) - (256 << 20)) / 4 * 3);
        assert_eq!(budget_for(100 << 20), 64 << 20, "a floor, so a tiny limit still admits small images");
        let limit = memory_limit();
        assert!(limit >= 64 << 20 && limit <= physical_memory().unwrap(), "{limit}");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("600M"), Ok(600 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("123456"), Ok(123456));
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5T").is_err());
    }

    #[test]
    fn reservations_add_up_and_are_returned_on_drop() {
        let budget = MemoryBudget::new(100);
        let a = budget.try_reserve(60).unwrap();
        assert_eq!(budget.try_reserve(50).unwrap_err(), Refusal::Busy { needed: 50, budget: 100 });
        assert_eq!(budget.try_reserve(101).unwrap_err(), Refusal::NeverFits { needed: 101, budget: 100 });
        let b = budget.try_reserve(40).unwrap();
        assert_eq!(budget.reserved(), 100);
        drop(a);
        drop(b);
        assert_eq!(budget.reserved(), 0);
    }

    #[test]
    fn refusals_say_both_sizes() {
        let never = Refusal::NeverFits { needed: (3 << 20) + 1, budget: 1 << 20 };
        assert_eq!(never.to_string(), "needs about 4 MiB, more than the whole memory budget of 1 MiB");
        assert!(Refusal::Busy { needed: 1 << 20, budget: 2 << 20 }.to_string().contains("of 2 MiB had no room"));
    }

    #[test]
    fn a_merged_reservation_is_held_and_returned_as_one() {
        let budget = MemoryBudget::new(100);
        let mut grown = budget.try_reserve(0).unwrap();
        grown.merge(budget.try_reserve(30).unwrap());
        grown.merge(budget.try_reserve(50).unwrap());
        assert_eq!((grown.bytes(), budget.reserved()), (80, 80));
        assert!(budget.try_reserve(21).is_err());
        drop(grown);
        assert_eq!(budget.reserved(), 0);
    }

    #[tokio::test]
    async fn a_waiter_gets_in_when_memory_is_released_and_small_work_passes_a_waiting_large_one() {
        let budget = MemoryBudget::new(100);
        let held = budget.try_reserve(70).unwrap();
        let large = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(80, Some(Duration::from_secs(5))).await.map(|r| r.bytes) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The large one waits; a small one that fits goes ahead of it.
        let small = budget.reserve(20, Some(Duration::from_millis(10))).await.unwrap();
        drop(small);
        drop(held);
        assert_eq!(large.await.unwrap(), Ok(80));
        assert_eq!(budget.reserved(), 0);
    }

    #[tokio::test]
    async fn a_wait_that_runs_out_is_busy() {
        let budget = MemoryBudget::new(100);
        let _held = budget.try_reserve(70).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(budget.reserve(50, Some(Duration::from_millis(50))).await.unwrap_err(), Refusal::Busy { needed: 50, budget: 100 });
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
