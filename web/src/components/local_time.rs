//! A protobuf timestamp shown in the reader's locale and time zone, with
//! the exact instant in the `datetime` attribute.
//!
//! One `Intl.DateTimeFormat` serves every timestamp of the page: making one
//! costs about 0.1 ms, but the first one of a page load loads the browser's
//! locale data, 10–60 ms in headless Chromium. `index.html` makes that first
//! one while the wasm is still downloading, so a first list does not wait
//! for it.

use leptos::prelude::*;
use prost_types::Timestamp;
use wasm_bindgen::JsValue;

#[component]
pub fn LocalTime(
    time: Option<Timestamp>,
    #[prop(optional)] testid: Option<&'static str>,
) -> impl IntoView {
    time.map(|t| {
        let millis = t.seconds as f64 * 1000.0 + f64::from(t.nanos) / 1_000_000.0;
        let date = js_sys::Date::new(&JsValue::from_f64(millis));
        let iso = String::from(date.to_iso_string());
        let shown = format_local(&date);
        view! { <time datetime=iso data-testid=testid>{shown}</time> }
    })
}

thread_local! {
    /// `format` of an `Intl.DateTimeFormat` for the reader's locale (an
    /// empty locale list), medium date and short time.
    static FORMAT: js_sys::Function = {
        let options = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&options, &"dateStyle".into(), &"medium".into());
        let _ = js_sys::Reflect::set(&options, &"timeStyle".into(), &"short".into());
        js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &options).format()
    };
}

/// E.g. "Mar 5, 2026, 2:07 PM" in en-US, "5 mars 2026, 14:07" in fr-FR.
fn format_local(date: &js_sys::Date) -> String {
    FORMAT
        .with(|format| format.call1(&JsValue::UNDEFINED, date).ok())
        .and_then(|s| s.as_string())
        .unwrap_or_else(|| String::from(date.to_string()))
}
