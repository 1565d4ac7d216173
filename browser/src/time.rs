//! Timers on the JavaScript event loop: `setTimeout` behind a future.
//!
//! Uses the global `setTimeout`, so it works in windows and in workers.
//! Dropping a [`Sleep`] clears its timeout.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use wasm_bindgen::{JsCast as _, JsValue, prelude::wasm_bindgen};
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    pub(crate) fn set_timeout(handler: &js_sys::Function, ms: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    pub(crate) fn clear_timeout(id: &JsValue);
}

/// Resolves after `duration` (rounded down to whole milliseconds, at most
/// about 24 days).
pub fn sleep(duration: Duration) -> Sleep {
    let ms = i32::try_from(duration.as_millis()).unwrap_or(i32::MAX);
    let mut id = JsValue::UNDEFINED;
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        id = set_timeout(resolve.unchecked_ref(), ms);
    });
    Sleep {
        promise: JsFuture::from(promise),
        id,
    }
}

/// The future of [`sleep`].
#[must_use = "a Sleep does nothing unless awaited"]
pub struct Sleep {
    promise: JsFuture,
    id: JsValue,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.promise).poll(cx).map(|_| ())
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}

/// Milliseconds since the epoch, from the JavaScript clock.
pub(crate) fn now_ms() -> f64 {
    js_sys::Date::now()
}
