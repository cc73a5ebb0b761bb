//! The memory budget: bytes of decoded pixels and codec state in flight, shared by every image
//! worker of one process (the server's pool, batch's jobs). Work asks for its estimated peak
//! (`compressor_engine::estimate_peak_bytes`) before it starts and holds the [`Reservation`]
//! until it ends. The default budget comes from the memory the process may use (the cgroup's
//! limit when there is one, else physical memory) less headroom, so a 1 GB instance is not
//! killed by the kernel when several large images arrive at once.
//!
//! Waiting is not first-come-first-served: whoever fits when memory is released goes, so small
//! images keep flowing while a large one waits for room (a fair queue would stall them behind it).
//!
//! A budget may also keep a share for small work ([`MemoryBudget::keeping_a_share_for_small_work`],
//! the server's): work whose whole estimate is larger than the share is granted only while
//! everything held stays outside it, so large work together never holds more than the rest, and a
//! small image never waits because large ones hold the budget. The price: one large image may
//! hold at most the rest (3/4 of the budget).

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

/// Small work may go beyond the budget by `1 / SMALL_SHARE_DIVISOR` of it, and work estimated at
/// up to that much is small: on a 1 GiB instance (576 MiB budget) images estimated at up to 72 MiB
/// (about 1.5 MP for a lossy PNG) may use 72 MiB beyond it. Beyond, not inside: one 12 MP PNG is
/// estimated at 565 MiB, and a share kept inside the budget would refuse it. The budget is 3/4 of
/// what the cgroup leaves, so the overdraft stays within the memory limit.
const SMALL_SHARE_DIVISOR: u64 = 8;

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
    /// Bytes small work may hold beyond `total`: work whose whole estimate is at most this.
    small_share: u64,
    reserved: Mutex<u64>,
    released: Notify,
}

impl MemoryBudget {
    /// A budget whoever fits may use all of (batch, where nobody waits on a deadline).
    pub fn new(total: u64) -> MemoryBudget {
        MemoryBudget::with_small_share(total, 0)
    }

    /// A budget small work may overdraw by an eighth (the server, where a small image must not
    /// wait, and then be refused, while large ones hold the budget): see [`SMALL_SHARE_DIVISOR`].
    pub fn with_room_for_small_work(total: u64) -> MemoryBudget {
        MemoryBudget::with_small_share(total, total / SMALL_SHARE_DIVISOR)
    }

    fn with_small_share(total: u64, small_share: u64) -> MemoryBudget {
        MemoryBudget { inner: Arc::new(Inner { total, small_share, reserved: Mutex::new(0), released: Notify::new() }) }
    }

    pub fn total(&self) -> u64 {
        self.inner.total
    }

    /// The most that work needing `whole` bytes in all may find reserved, its own bytes included,
    /// when it is granted: the budget and the small share beyond it for small work, the budget for
    /// large work. This is the one rule of the small share.
    fn ceiling_for(&self, whole: u64) -> u64 {
        let Inner { total, small_share, .. } = *self.inner;
        if whole <= small_share { total + small_share } else { total }
    }

    /// Bytes held by reservations now.
    pub fn reserved(&self) -> u64 {
        *self.inner.reserved.lock().unwrap()
    }

    /// `bytes` at once, or a refusal saying whether waiting could help.
    pub fn try_reserve(&self, bytes: u64) -> Result<Reservation, Refusal> {
        self.try_reserve_part(bytes, bytes)
    }

    /// `part` bytes of work that needs `whole` in all (it holds the rest already, as a request
    /// holds its upload): whether the work is small is judged by `whole`.
    pub fn try_reserve_part(&self, part: u64, whole: u64) -> Result<Reservation, Refusal> {
        let (budget, ceiling) = (self.inner.total, self.ceiling_for(whole));
        if whole > ceiling {
            return Err(Refusal::NeverFits { needed: whole, budget });
        }
        let mut reserved = self.inner.reserved.lock().unwrap();
        if *reserved + part > ceiling {
            return Err(Refusal::Busy { needed: whole, budget });
        }
        *reserved += part;
        Ok(Reservation { budget: self.clone(), bytes: part })
    }

    /// `bytes`, waiting up to `wait` for other work to release enough (`None`: as long as it takes).
    pub async fn reserve(&self, bytes: u64, wait: Option<Duration>) -> Result<Reservation, Refusal> {
        self.reserve_part(bytes, bytes, wait).await
    }

    /// [`MemoryBudget::try_reserve_part`], waiting up to `wait` as [`MemoryBudget::reserve`] does.
    pub async fn reserve_part(&self, part: u64, whole: u64, wait: Option<Duration>) -> Result<Reservation, Refusal> {
        let waiting = async {
            loop {
                // Registered before the check, so a release between the check and the wait is not missed.
                let released = self.inner.released.notified();
                tokio::pin!(released);
                released.as_mut().enable();
                match self.try_reserve_part(part, whole) {
                    Err(Refusal::Busy { .. }) => released.await,
                    done => return done,
                }
            }
        };
        match wait {
            None => waiting.await,
            Some(wait) => {
                tokio::time::timeout(wait, waiting).await.unwrap_or(Err(Refusal::Busy { needed: whole, budget: self.inner.total }))
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

    #[test]
    fn small_work_finds_room_beyond_what_large_work_holds() {
        let budget = MemoryBudget::with_room_for_small_work(80);
        // Work of up to 10 (an eighth) is small: it may use 10 beyond the budget of 80.
        let large = budget.try_reserve(50).unwrap();
        let mut growing = budget.try_reserve(10).unwrap();
        assert_eq!(budget.try_reserve(30).unwrap_err(), Refusal::Busy { needed: 30, budget: 80 });
        assert_eq!(budget.try_reserve(81).unwrap_err(), Refusal::NeverFits { needed: 81, budget: 80 });
        // Large work fills the budget; small work still gets in, and waits only once the room
        // beyond the budget is taken too.
        let full = budget.try_reserve(20).unwrap();
        let small = budget.try_reserve(10).unwrap();
        assert_eq!(budget.reserved(), 90);
        assert!(budget.try_reserve(1).is_err(), "the room beyond the budget is taken");
        drop(small);
        // Work is judged by its whole size, not by the part it asks for now: the small one grows
        // past an eighth (as an upload does) and is large from then on, held to the budget.
        assert!(budget.try_reserve_part(1, 11).is_err(), "11 in all is large, and 81 would be held");
        drop(full);
        growing.merge(budget.try_reserve_part(20, 30).unwrap());
        assert_eq!(budget.reserved(), 80);
        assert!(budget.try_reserve(10).is_ok(), "small work still has its room");
        drop((large, growing));
        assert_eq!(budget.try_reserve(80).unwrap().bytes(), 80, "one large work may hold the whole budget");
        // Without the room, whoever fits goes, up to the whole budget and no further.
        let plain = MemoryBudget::new(100);
        let _all = plain.try_reserve(100).unwrap();
        assert!(plain.try_reserve(1).is_err());
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
