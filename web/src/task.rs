//! Async plumbing for the browser: a timer future and tasks owned by the
//! component that starts them.
//!
//! A task started with [`Latest::run`] is aborted when the next one starts
//! (only the newest answer matters) and when the component is cleaned up
//! (navigating away). Aborting drops the future, and dropping a gRPC-web
//! call aborts its `fetch`, so the request really stops.

use std::{future::Future, time::Duration};

use futures::future::{AbortHandle, Abortable};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast as _;
use wasm_bindgen_futures::JsFuture;

/// Resolves after `duration` (uses `setTimeout`).
pub async fn sleep(duration: Duration) {
    let ms = i32::try_from(duration.as_millis()).unwrap_or(i32::MAX);
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        if let Some(window) = web_sys::window() {
            let _ = window
                .set_timeout_with_callback_and_timeout_and_arguments_0(resolve.unchecked_ref(), ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}

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
