//! The bounded CPU pool. Compression runs on tokio's blocking threads, at most `workers` at once;
//! at most `workers + queue` requests are admitted (waiting for a worker, or running). An image
//! pool also has the memory budget: work waits (up to [`MEMORY_WAIT`]) until its estimated peak
//! fits, gets 503 when it does not in time, and 413 when it never could. An upload being read holds
//! no admission slot (a slow client must not keep others out); its bytes are charged to the same
//! budget as they arrive ([`UploadCharge`]), so many slow uploads hold little and many fast ones
//! cannot hold more than the budget. A pool without a budget (the video pool, whose uploads go to
//! disk) bounds its uploads being read by a count instead ([`Pool::limiting_uploads`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use compressor_budget::{MemoryBudget, Refusal, Reservation};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, Busy};

/// Seconds a refused client is told to wait (`Retry-After`).
pub(crate) const RETRY_AFTER_SECS: u64 = 1;

/// Longest a request waits for room in the memory budget before it is told to come back (503).
pub const MEMORY_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Pool {
    admission: Arc<Semaphore>,
    workers: Arc<Semaphore>,
    /// Requests waiting for a worker.
    queue_depth: metrics::Gauge,
    memory: Option<Memory>,
    /// Places for uploads being read, when they are counted.
    uploads: Option<Arc<Semaphore>>,
}

/// Held while an upload is read, when the pool counts them.
pub struct UploadSlot {
    _permit: Option<OwnedSemaphorePermit>,
}

/// The memory budget of an image pool.
#[derive(Clone)]
pub struct Memory {
    pub budget: MemoryBudget,
    /// How long work waits for room ([`MEMORY_WAIT`] in the service).
    pub wait: Duration,
}

/// Held from admission until the request's work is done (or the request is dropped). Moved into
/// the blocking task, so a request abandoned by a timeout keeps its slot until the CPU is free.
pub struct Admission {
    _permit: OwnedSemaphorePermit,
    /// The charge of the upload the work is for, held with the rest of the work's estimate.
    upload: Option<UploadCharge>,
}

impl Admission {
    /// The admission for work on an upload that was charged while it was read.
    pub fn holding(self, upload: UploadCharge) -> Admission {
        Admission { upload: Some(upload), ..self }
    }
}

impl Pool {
    pub fn new(workers: usize, queue: usize, queue_depth: metrics::Gauge, memory: Option<Memory>) -> Pool {
        Pool {
            admission: Arc::new(Semaphore::new(workers + queue)),
            workers: Arc::new(Semaphore::new(workers)),
            queue_depth,
            memory,
            uploads: None,
        }
    }

    /// At most `uploads` uploads read at once ([`Pool::try_start_upload`]).
    pub fn limiting_uploads(self, uploads: usize) -> Pool {
        Pool { uploads: Some(Arc::new(Semaphore::new(uploads))), ..self }
    }

    /// A place to read one upload before it asks for a slot, or 503 at once: when workers and
    /// queue are all taken (the upload could only be refused once read) or when as many uploads
    /// as the pool counts are being read.
    pub fn try_start_upload(&self) -> Result<UploadSlot, ApiError> {
        let overloaded = |why| ApiError::Overloaded { why, retry_after: RETRY_AFTER_SECS };
        if self.saturated() {
            return Err(overloaded(Busy::Workers));
        }
        match &self.uploads {
            None => Ok(UploadSlot { _permit: None }),
            Some(uploads) => {
                uploads.clone().try_acquire_owned().map(|p| UploadSlot { _permit: Some(p) }).map_err(|_| overloaded(Busy::Uploads))
            }
        }
    }

    /// A slot for one compress request, or 503 when workers and queue are all taken.
    pub fn try_admit(&self) -> Result<Admission, ApiError> {
        match self.admission.clone().try_acquire_owned() {
            Ok(permit) => Ok(Admission { _permit: permit, upload: None }),
            Err(_) => Err(ApiError::Overloaded { why: Busy::Workers, retry_after: RETRY_AFTER_SECS }),
        }
    }

    /// Bytes of the memory budget held now (uploads being read and work), when the pool has one.
    pub fn memory_reserved(&self) -> Option<u64> {
        self.memory.as_ref().map(|m| m.budget.reserved())
    }

    /// True when a new compress request would be refused.
    pub fn saturated(&self) -> bool {
        self.admission.available_permits() == 0
    }

    /// An empty charge for an upload about to be read (one that charges nothing when the pool has
    /// no memory budget).
    pub fn upload_charge(&self) -> UploadCharge {
        UploadCharge { memory: self.memory.clone(), held: Arc::new(Mutex::new(None)) }
    }

    /// Waits for `memory` bytes of the budget (when the pool has one), then for a worker, and runs
    /// `work` on a blocking thread. Memory comes first so that a request waiting for room does not
    /// hold a CPU. The bytes its upload holds already count towards `memory` (the estimate
    /// includes the input), so only the rest is waited for. A panic in `work` becomes a 500.
    pub async fn run<T, F>(&self, admission: Admission, memory: u64, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let reservation = match &self.memory {
            Some(m) => Some(m.reserve(memory, admission.upload.as_ref().map_or(0, UploadCharge::bytes)).await?),
            None => None,
        };
        let worker = {
            let queue_depth = self.queue_depth.clone();
            queue_depth.increment(1.0);
            struct Waiting(metrics::Gauge);
            impl Drop for Waiting {
                fn drop(&mut self) {
                    self.0.decrement(1.0);
                }
            }
            let _waiting = Waiting(queue_depth);
            self.workers.clone().acquire_owned().await.map_err(|_| ApiError::Internal("worker pool closed".into()))?
        };
        let task = tokio::task::spawn_blocking(move || {
            let _held = (worker, admission, reservation);
            work()
        });
        task.await.map_err(|e| {
            if e.is_panic() {
                let detail = e.into_panic();
                let detail = detail.downcast_ref::<String>().cloned().or_else(|| detail.downcast_ref::<&str>().map(|s| (*s).to_owned()));
                ApiError::Internal(format!("worker panicked: {}", detail.unwrap_or_default()))
            } else {
                ApiError::Internal("worker task was cancelled".into())
            }
        })
    }
}

impl Memory {
    /// `bytes` in all, of which `held` are held already (by the work's upload).
    async fn reserve(&self, bytes: u64, held: u64) -> Result<Reservation, ApiError> {
        self.budget.reserve_part(bytes.saturating_sub(held), bytes, Some(self.wait)).await.map_err(|refusal| match refusal {
            Refusal::Busy { .. } => ApiError::Overloaded { why: Busy::Memory, retry_after: RETRY_AFTER_SECS },
            never @ Refusal::NeverFits { .. } => ApiError::Refused {
                code: "over_memory_budget",
                message: format!("compressing this image {never} (COMPRESSOR_MEMORY_BUDGET); send a smaller image"),
            },
        })
    }
}

/// The bytes of an upload read so far, held in the memory budget. Clones share the one charge: the
/// body being read adds to it, the request hands it to its [`Admission`].
#[derive(Clone)]
pub struct UploadCharge {
    memory: Option<Memory>,
    held: Arc<Mutex<Option<Reservation>>>,
}

/// Why an upload's bytes found no room in the memory budget.
#[derive(Debug, thiserror::Error)]
pub enum UploadOverBudget {
    #[error("the server's memory budget had no room for this upload within {} s", MEMORY_WAIT.as_secs())]
    Busy,
    #[error("the upload {0} (COMPRESSOR_MEMORY_BUDGET)")]
    NeverFits(Refusal),
}

impl UploadCharge {
    /// Charges `bytes` more if they fit now; else what to wait on for room, or why there never is.
    pub fn try_add(&self, bytes: u64) -> Result<(), Result<PendingCharge, UploadOverBudget>> {
        let Some(memory) = &self.memory else { return Ok(()) };
        // The upload is as large as all its bytes so far: once that is over the small share, it
        // is large work in the budget.
        let whole = self.bytes() + bytes;
        match memory.budget.try_reserve_part(bytes, whole) {
            Ok(reservation) => {
                self.take(reservation);
                Ok(())
            }
            Err(never @ Refusal::NeverFits { .. }) => Err(Err(UploadOverBudget::NeverFits(never))),
            Err(Refusal::Busy { .. }) => {
                let (budget, wait) = (memory.budget.clone(), memory.wait);
                Err(Ok(Box::pin(async move {
                    budget.reserve_part(bytes, whole, Some(wait)).await.map_err(|refusal| match refusal {
                        Refusal::Busy { .. } => UploadOverBudget::Busy,
                        never @ Refusal::NeverFits { .. } => UploadOverBudget::NeverFits(never),
                    })
                })))
            }
        }
    }

    /// Bytes charged so far.
    pub fn bytes(&self) -> u64 {
        self.held.lock().unwrap().as_ref().map_or(0, Reservation::bytes)
    }

    /// Adds `reservation` (made at once, or by waiting on a [`PendingCharge`]) to the charge.
    pub fn take(&self, reservation: Reservation) {
        let mut held = self.held.lock().unwrap();
        match held.as_mut() {
            Some(charge) => charge.merge(reservation),
            None => *held = Some(reservation),
        }
    }
}

/// Waiting for room for more upload bytes.
pub type PendingCharge = std::pin::Pin<Box<dyn Future<Output = Result<Reservation, UploadOverBudget>> + Send + 'static>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn admits_workers_plus_queue_then_refuses() {
        let pool = Pool::new(1, 1, metrics::Gauge::noop(), None);
        let a = pool.try_admit().unwrap();
        let b = pool.try_admit().unwrap();
        assert!(pool.saturated());
        assert!(matches!(pool.try_admit(), Err(ApiError::Overloaded { .. })));
        drop(b);
        assert!(!pool.saturated());
        let value = pool.run(a, 0, || 6 * 7).await.unwrap();
        assert_eq!(value, 42);
    }

    #[test]
    fn uploads_are_counted_when_the_pool_limits_them_and_refused_when_it_is_saturated() {
        let pool = Pool::new(1, 0, metrics::Gauge::noop(), None).limiting_uploads(2);
        let (a, b) = (pool.try_start_upload().unwrap(), pool.try_start_upload().unwrap());
        assert!(matches!(pool.try_start_upload(), Err(ApiError::Overloaded { .. })), "two uploads at once");
        drop(a);
        let admission = pool.try_admit().unwrap();
        assert!(matches!(pool.try_start_upload(), Err(ApiError::Overloaded { .. })), "no upload into a saturated pool");
        drop((b, admission));
        assert!(pool.try_start_upload().is_ok());
    }

    #[tokio::test]
    async fn the_slot_is_held_until_the_blocking_work_ends() {
        let pool = Pool::new(1, 0, metrics::Gauge::noop(), None);
        let admission = pool.try_admit().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let running = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(admission, 0, move || rx.recv_timeout(Duration::from_secs(10)).is_ok()).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The waiting future is dropped (as a timeout would), the work goes on and keeps the slot.
        running.abort();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(pool.saturated());
        tx.send(()).unwrap();
        for _ in 0..200 {
            if !pool.saturated() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("slot not released after the work ended");
    }

    #[tokio::test]
    async fn work_waits_for_memory_gets_503_when_it_stays_full_and_413_when_it_never_fits() {
        let memory = Memory { budget: MemoryBudget::new(100), wait: Duration::from_millis(50) };
        let pool = Pool::new(2, 2, metrics::Gauge::noop(), Some(memory.clone()));
        let never = pool.run(pool.try_admit().unwrap(), 101, || ()).await.unwrap_err();
        assert!(matches!(never, ApiError::Refused { code: "over_memory_budget", ref message } if message.contains("budget")), "{never:?}");
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (finish_tx, finish_rx) = std::sync::mpsc::channel::<()>();
        let holding = {
            let (pool, admission) = (pool.clone(), pool.try_admit().unwrap());
            tokio::spawn(async move {
                pool.run(admission, 80, move || {
                    started_tx.send(()).unwrap();
                    finish_rx.recv().unwrap()
                })
                .await
            })
        };
        started_rx.await.unwrap();
        assert_eq!(memory.budget.reserved(), 80);
        let busy = pool.run(pool.try_admit().unwrap(), 30, || ()).await.unwrap_err();
        assert!(matches!(busy, ApiError::Overloaded { .. }), "{busy:?}");
        pool.run(pool.try_admit().unwrap(), 20, || ()).await.expect("small work fits beside the large one");
        finish_tx.send(()).unwrap();
        holding.await.unwrap().unwrap();
        assert_eq!(memory.budget.reserved(), 0);
        pool.run(pool.try_admit().unwrap(), 100, || ()).await.expect("the whole budget once it is free");
    }

    #[tokio::test]
    async fn an_upload_is_charged_as_it_is_read_and_counts_towards_its_work() {
        let memory = Memory { budget: MemoryBudget::new(100), wait: Duration::from_millis(50) };
        let pool = Pool::new(1, 1, metrics::Gauge::noop(), Some(memory.clone()));
        let charge = pool.upload_charge();
        assert!(charge.try_add(30).is_ok());
        assert!(charge.try_add(30).is_ok());
        let elsewhere = memory.budget.try_reserve(20).unwrap();
        assert_eq!((charge.bytes(), memory.budget.reserved()), (60, 80));
        let Err(Ok(waiting)) = charge.try_add(30) else { panic!("30 more do not fit beside 60 and 20 held elsewhere") };
        assert!(matches!(waiting.await, Err(UploadOverBudget::Busy)), "the wait runs out while the budget stays full");
        let Err(Err(UploadOverBudget::NeverFits(Refusal::NeverFits { budget: 100, .. }))) = charge.try_add(41) else {
            panic!("an upload larger than the whole budget never fits")
        };
        drop(elsewhere);
        // Work estimated at 90 (which includes its input) beside its upload's 60: 90 in all, not 150.
        let admission = pool.try_admit().unwrap().holding(charge.clone());
        let during = {
            let memory = memory.clone();
            pool.run(admission, 90, move || memory.budget.reserved()).await.unwrap()
        };
        assert_eq!(during, 90);
        drop(charge);
        assert_eq!(memory.budget.reserved(), 0, "given back with the work");
        let no_budget = Pool::new(1, 1, metrics::Gauge::noop(), None).upload_charge();
        assert!(no_budget.try_add(u64::MAX).is_ok(), "a pool without a budget charges nothing");
    }

    #[tokio::test]
    async fn a_panic_in_the_work_is_an_internal_error() {
        let pool = Pool::new(1, 0, metrics::Gauge::noop(), None);
        let admission = pool.try_admit().unwrap();
        let result = pool.run(admission, 0, || -> u32 { panic!("boom") }).await;
        assert!(matches!(result, Err(ApiError::Internal(ref m)) if m.contains("boom")), "{result:?}");
        assert!(!pool.saturated());
    }
}
