//! A switch a caller sets when it no longer wants a result (an HTTP client that went away, a
//! timeout, Ctrl-C). The engine looks at it between stages (decode, quantize, each encode
//! candidate, each search step) and inside libimagequant, and stops with [`Error::Cancelled`].
//! Clones share one switch; the video crate uses the same type.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Error;

#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// `Err(Cancelled)` once the switch is set: for `?` at a stage boundary.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.is_cancelled() { Err(Error::Cancelled) } else { Ok(()) }
    }
}

/// Sets its switch when dropped: held by work whose caller may go away (a request's future, a
/// batch run), so that dropping the caller stops the work.
#[derive(Debug)]
pub struct CancelOnDrop(pub Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Two switches are equal when they are the same switch.
impl PartialEq for Cancel {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Cancel {}
