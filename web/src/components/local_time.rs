//! A protobuf timestamp shown in the reader's time zone, with the exact
//! instant in the `datetime` attribute.
//!
//! Written with the `Date` getters instead of `Intl.DateTimeFormat`: the
//! first `Intl.DateTimeFormat` of a page load loads the browser's locale
//! data, 13–117 ms of main thread measured in cold headless Chromium
//! (0.1 ms for the getters), and wherever it ran (rendering the first list,
//! or warming up while the page was parsed) it delayed the first list. The
//! format is the page's language (English month names) with a 24-hour
//! clock: "5 Mar 2026, 14:07".

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
        let shown = local_date_time(&date);
        view! { <time datetime=iso data-testid=testid>{shown}</time> }
    })
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `date` in the reader's time zone: "5 Mar 2026, 14:07".
fn local_date_time(date: &js_sys::Date) -> String {
    format!(
        "{} {} {}, {:02}:{:02}",
        date.get_date(),
        MONTHS[date.get_month() as usize % 12],
        date.get_full_year(),
        date.get_hours(),
        date.get_minutes()
    )
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::local_date_time;

    #[wasm_bindgen_test]
    fn a_local_date_time_reads_day_month_year_and_a_24_hour_clock() {
        // Months count from 0; the `Date` is built from local fields, so
        // the text must give them back whatever the time zone.
        let date = js_sys::Date::new_with_year_month_day_hr_min(2026, 2, 5, 14, 7);
        assert_eq!(local_date_time(&date), "5 Mar 2026, 14:07");
        let date = js_sys::Date::new_with_year_month_day_hr_min(1999, 11, 31, 0, 0);
        assert_eq!(local_date_time(&date), "31 Dec 1999, 00:00");
    }
}
