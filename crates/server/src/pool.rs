//! The bounded CPU pool. Compression runs on tokio's blocking threads, at most `workers` at once;
//! at most `workers + queue` compress requests are admitted (reading their body, waiting for a
//! worker, or running). A request that finds no admission slot is refused at once, before its
//! body is read.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Seconds a refused client is told to wait (`Retry-After`).
const RETRY_AFTER_SECS: u64 = 1;

#[derive(Clone)]
pub struct Pool {
    admission: Arc<Semaphore>,
    workers: Arc<Semaphore>,
    /// Requests waiting for a worker.
    queue_depth: metrics::Gauge,
}

/// Held from admission until the request's work is done (or the request is dropped). Moved into
/// the blocking task, so a request abandoned by a timeout keeps its slot until the CPU is free.
#[derive(Debug)]
pub struct Admission {
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    pub fn new(workers: usize, queue: usize, queue_depth: metrics::Gauge) -> Pool {
        Pool { admission: Arc::new(Semaphore::new(workers + queue)), workers: Arc::new(Semaphore::new(workers)), queue_depth }
    }

    /// A slot for one compress request, or 503 when workers and queue are all taken.
    pub fn try_admit(&self) -> Result<Admission, ApiError> {
        match self.admission.clone().try_acquire_owned() {
            Ok(permit) => Ok(Admission { _permit: permit }),
            Err(_) => Err(ApiError::Overloaded { retry_after: RETRY_AFTER_SECS }),
        }
    }

    /// True when a new compress request would be refused.
    pub fn saturated(&self) -> bool {
        self.admission.available_permits() == 0
    }

    /// Waits for a worker and runs `work` on a blocking thread. A panic in `work` becomes a 500.
    pub async fn run<T, F>(&self, admission: Admission, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
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
            let _held = (worker, admission);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn admits_workers_plus_queue_then_refuses() {
        let pool = Pool::new(1, 1, metrics::Gauge::noop());
        let a = pool.try_admit().unwrap();
        let b = pool.try_admit().unwrap();
        assert!(pool.saturated());
        assert!(matches!(pool.try_admit(), Err(ApiError::Overloaded { .. })));
        drop(b);
        assert!(!pool.saturated());
        let value = pool.run(a, || 6 * 7).await.unwrap();
        assert_eq!(value, 42);
    }

    #[tokio::test]
    async fn the_slot_is_held_until_the_blocking_work_ends() {
        let pool = Pool::new(1, 0, metrics::Gauge::noop());
        let admission = pool.try_admit().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let running = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(admission, move || rx.recv_timeout(Duration::from_secs(10)).is_ok()).await })
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
    async fn a_panic_in_the_work_is_an_internal_error() {
        let pool = Pool::new(1, 0, metrics::Gauge::noop());
        let admission = pool.try_admit().unwrap();
        let result = pool.run(admission, || -> u32 { panic!("boom") }).await;
        assert!(matches!(result, Err(ApiError::Internal(ref m)) if m.contains("boom")), "{result:?}");
        assert!(!pool.saturated());
    }
}
