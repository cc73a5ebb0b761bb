//! Refusals answered while the client is still sending (503 no room, 413 too large, 401, 408…)
//! must reach it. Left alone, hyper reads what has already arrived of the unwanted body, writes
//! the answer and closes; the client's bytes still on their way then make the kernel answer with
//! a reset, and a client that is still writing (hyper's and so reqwest's, most HTTP libraries)
//! reports that reset instead of the answer. So a body dropped before its end is read to its end
//! and thrown away in the background (a lingering close, as nginx does): the connection closes
//! cleanly after the client has sent everything, the answer having gone out meanwhile. Bounded:
//! at most [`LINGER_TIME`] and the largest body this server accepts, never buffered.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// Longest the rest of a refused body is read for.
pub const LINGER_TIME: Duration = Duration::from_secs(10);

/// A connection's request body that, dropped before its end, is drained in the background.
pub struct Lingering {
    /// `None` once handed to the drain.
    inner: Option<Incoming>,
    /// Most bytes to read and throw away.
    max_bytes: u64,
    /// The client waits for `100 Continue` before it sends the body: until the body is asked for,
    /// nothing is coming, and a refusal is all it needs.
    awaits_continue: bool,
    /// The body reached its end or failed: nothing left to drain.
    done: bool,
}

impl Lingering {
    pub fn new(request: axum::http::Request<Incoming>, max_bytes: u64) -> axum::http::Request<Lingering> {
        let awaits_continue =
            request.headers().get(axum::http::header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        request.map(|inner| Lingering { inner: Some(inner), max_bytes, awaits_continue, done: false })
    }
}

impl HttpBody for Lingering {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        let polled = Pin::new(inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None | Some(Err(_))) => self.done = true,
            Poll::Ready(Some(Ok(_))) | Poll::Pending => self.awaits_continue = false,
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map(HttpBody::size_hint).unwrap_or_default()
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(mut body) = self.inner.take() else { return };
        if self.done || self.awaits_continue || body.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let max_bytes = self.max_bytes;
        runtime.spawn(async move {
            let drain = async {
                let mut seen = 0u64;
                while let Some(Ok(frame)) = body.frame().await {
                    seen += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if seen > max_bytes {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(LINGER_TIME, drain).await;
        });
    }
}
