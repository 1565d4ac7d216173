//! Async plumbing for the browser: tasks owned by the component that
//! starts them, and the timer ([`sleep`], `grpc_browser`'s `setTimeout`).
//!
//! A task started with [`Latest::run`] is aborted when the next one starts
//! (only the newest answer matters) and when the component is cleaned up
//! (navigating away). Aborting drops the future, and dropping a gRPC-web
//! call aborts its `fetch`, so the request really stops.

use std::future::Future;

use futures::future::{AbortHandle, Abortable};
pub use grpc_browser::sleep;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// A slot for one running task of a component: starting a task aborts
/// the previous one, and the component's cleanup aborts the last.
#[derive(Clone, Copy)]
pub struct Latest {
    handle: StoredValue<Option<AbortHandle>>,
}

impl Default for Latest {
    fn default() -> Self {
        Self::new()
    }
}

impl Latest {
    /// Must be created inside the component that owns the task.
    pub fn new() -> Self {
        let handle = StoredValue::new(None::<AbortHandle>);
        on_cleanup(move || {
            if let Some(h) = handle.try_update_value(Option::take).flatten() {
                h.abort();
            }
        });
        Self { handle }
    }

    /// Aborts the running task, if any, and starts `future`.
    pub fn run(&self, future: impl Future<Output = ()> + 'static) {
        let (abort, registration) = AbortHandle::new_pair();
        if let Some(previous) = self.handle.try_update_value(|h| h.replace(abort)).flatten() {
            previous.abort();
        }
        spawn_local(async move {
            let _ = Abortable::new(future, registration).await;
        });
    }

    /// Aborts the running task, if any.
    pub fn cancel(&self) {
        if let Some(h) = self.handle.try_update_value(Option::take).flatten() {
            h.abort();
        }
    }
}
