//! The `article` CLI's import reader: JSON Lines and Markdown (with YAML
//! front matter) from files a user points it at. Any text must give
//! records or an error naming file and line — never a panic.
#![no_main]

use article_client::input::{parse_json_lines, parse_markdown};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(err) = parse_json_lines("fuzz.jsonl", text) {
        assert!(
            err.to_string().starts_with("fuzz.jsonl"),
            "an error names the file: {err:#}"
        );
    }
    if let Err(err) = parse_markdown("fuzz.md", text) {
        assert!(
            err.to_string().starts_with("fuzz.md"),
            "an error names the file: {err:#}"
        );
    }
});
