//! A protobuf timestamp shown in the reader's locale and time zone, with
//! the exact instant in the `datetime` attribute.

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

/// E.g. "Mar 5, 2026, 2:07 PM" in en-US, "5 mars 2026, 14:07" in fr-FR.
fn format_local(date: &js_sys::Date) -> String {
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"dateStyle".into(), &"medium".into());
    let _ = js_sys::Reflect::set(&options, &"timeStyle".into(), &"short".into());
    // An empty locale list means "the reader's locale".
    let format = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &options).format();
    format
        .call1(&JsValue::UNDEFINED, date)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_else(|| String::from(date.to_string()))
}
