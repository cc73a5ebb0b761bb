//! Slow clients: a connection that trickles its upload holds a connection, a task and what it has
//! sent, so uploads must keep up a minimum rate ([`MIN_UPLOAD_RATE`] after a [`UPLOAD_GRACE`]) or
//! get 408 `slow_upload`. (An upload being read holds no place in the work queue.)
//! (Slow request headers are cut off by hyper's header read timeout, set where connections are
//! served.)

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Bytes per second an upload must average once its grace is over: 128 kbit/s, a poor mobile link.
pub const MIN_UPLOAD_RATE: u64 = 16 * 1024;
/// How long any upload may take before the rate counts.
pub const UPLOAD_GRACE: Duration = Duration::from_secs(10);
/// How long a client may take to send its request line and headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The upload fell below the minimum rate.
#[derive(Debug, thiserror::Error)]
#[error("the upload was slower than {} KiB/s after {} s", MIN_UPLOAD_RATE / 1024, UPLOAD_GRACE.as_secs())]
pub struct SlowUpload;

/// Middleware for upload routes: the body fails with [`SlowUpload`] when it falls behind.
pub async fn enforce_min_rate(request: Request, next: Next) -> Response {
    next.run(request.map(|body| Body::new(MinRate::new(body)))).await
}

struct MinRate {
    inner: Body,
    started: Instant,
    received: u64,
    deadline: Pin<Box<Sleep>>,
}

impl MinRate {
    fn new(inner: Body) -> MinRate {
        let started = Instant::now();
        MinRate { inner, started, received: 0, deadline: Box::pin(tokio::time::sleep_until(started + UPLOAD_GRACE)) }
    }

    /// When the bytes received so far stop being enough.
    fn next_deadline(&self) -> Instant {
        self.started + UPLOAD_GRACE + Duration::from_secs_f64(self.received as f64 / MIN_UPLOAD_RATE as f64)
    }
}

impl HttpBody for MinRate {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.received += frame.data_ref().map_or(0, |d| d.len() as u64);
                let next = self.next_deadline();
                self.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(SlowUpload)))),
                Poll::Pending => Poll::Pending,
            },
            done => done,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
