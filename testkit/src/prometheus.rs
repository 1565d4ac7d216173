//! Reading the Prometheus text format of `/metrics`, so tests can assert
//! exact counts (each runtime owns its registry: nothing else writes to
//! the one a test server renders).

use std::collections::BTreeMap;

/// One sample line: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The label pairs.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// A label's value.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// Every sample of the metric `name` (exactly that name: for a histogram
/// ask for `NAME_count`, `NAME_sum` or `NAME_bucket`). Panics on a line it
/// cannot read.
pub fn samples(text: &str, name: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                return None; // a longer name sharing the prefix
            }
            Some(parse_sample(rest).unwrap_or_else(|| panic!("unreadable sample line {line:?}")))
        })
        .collect()
}

/// The sum of the samples of `name` whose labels include all of `labels`.
pub fn total(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text, name)
        .iter()
        .filter(|s| labels.iter().all(|(k, v)| s.label(k) == Some(v)))
        .map(|s| s.value)
        .sum()
}

fn parse_sample(rest: &str) -> Option<Sample> {
    let mut labels = BTreeMap::new();
    let mut rest = rest;
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut name = String::new();
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => {
                    rest = &inner[i + 1..];
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    let (_, quote) = chars.next()?;
                    if quote != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        let (_, c) = chars.next()?;
                        match c {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            other => value.push(other),
                        }
                    }
                    labels.insert(std::mem::take(&mut name), value);
                }
                other => name.push(other),
            }
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample { labels, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE calls_total counter
calls_total{method="Get",code="NOT_FOUND"} 2
calls_total{method="List",code="OK"} 3
calls_total_extra 9
latency_seconds_count{method="Get"} 2
odd{v="a \"quoted\", comma"} 1.5
plain 7
"#;

    #[test]
    fn samples_are_read_with_their_labels() {
        let calls = samples(TEXT, "calls_total");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].label("method"), Some("Get"));
        assert_eq!(calls[0].label("code"), Some("NOT_FOUND"));
        assert_eq!(calls[0].value, 2.0);
        assert_eq!(total(TEXT, "calls_total", &[]), 5.0);
        assert_eq!(total(TEXT, "calls_total", &[("code", "OK")]), 3.0);
        assert_eq!(
            total(TEXT, "latency_seconds_count", &[("method", "Get")]),
            2.0
        );
        assert_eq!(
            samples(TEXT, "odd")[0].label("v"),
            Some("a \"quoted\", comma")
        );
        assert_eq!(samples(TEXT, "plain")[0].value, 7.0);
        assert!(samples(TEXT, "missing").is_empty());
    }
}
