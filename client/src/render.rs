//! Turning responses and errors into what the `article` tool prints.

use proto::v1::{Article, ArticleEvent, article_event::Event};
use serde_json::{Value, json};
use tonic::{Status, metadata::MetadataMap};
use tonic_types::StatusExt as _;

/// `--output` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

fn time(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

pub fn article_json(a: &Article) -> Value {
    json!({
        "id": a.id,
        "title": a.title,
        "content": a.content,
        "author": a.author,
        "tags": a.tags,
        "version": a.version,
        "create_time": time(&a.create_time),
        "update_time": time(&a.update_time),
    })
}

/// A page of articles: a table with a total line, or one JSON document.
pub fn list(articles: &[Article], total: i64, output: Output) -> String {
    match output {
        Output::Json => json!({
            "articles": articles.iter().map(article_json).collect::<Vec<_>>(),
            "total_count": total,
        })
        .to_string(),
        Output::Table => {
            let mut out = format!(
                "{:>6}  {:<40}  {:<12}  {:>3}  {}\n",
                "ID", "TITLE", "AUTHOR", "VER", "TAGS"
            );
            for a in articles {
                out.push_str(&format!(
                    "{:>6}  {:<40}  {:<12}  {:>3}  {}\n",
                    a.id,
                    clip(&a.title, 40),
                    clip(&a.author, 12),
                    a.version,
                    a.tags.join(",")
                ));
            }
            out.push_str(&format!("{} of {} articles", articles.len(), total));
            out
        }
    }
}

/// One article in full.
pub fn article(a: &Article, output: Output) -> String {
    match output {
        Output::Json => article_json(a).to_string(),
        Output::Table => format!(
            "id:      {}\ntitle:   {}\nauthor:  {}\ntags:    {}\nversion: {}\ncreated: {}\nupdated: {}\n\n{}",
            a.id,
            a.title,
            a.author,
            a.tags.join(", "),
            a.version,
            time(&a.create_time),
            time(&a.update_time),
            a.content
        ),
    }
}

/// One watch event on one line.
pub fn event(e: &ArticleEvent, output: Output) -> String {
    match output {
        Output::Json => {
            let mut v = match &e.event {
                Some(Event::Created(a)) => json!({"type": "created", "article": article_json(a)}),
                Some(Event::Updated(a)) => json!({"type": "updated", "article": article_json(a)}),
                Some(Event::DeletedId(id)) => json!({"type": "deleted", "id": id}),
                Some(Event::Heartbeat(_)) => json!({"type": "heartbeat"}),
                None => json!({"type": "unknown"}),
            };
            v["sequence"] = json!(e.sequence);
            v.to_string()
        }
        Output::Table => match &e.event {
            Some(Event::Created(a)) => format!("{:>8} created {} {:?}", e.sequence, a.id, a.title),
            Some(Event::Updated(a)) => format!(
                "{:>8} updated {} {:?} v{}",
                e.sequence, a.id, a.title, a.version
            ),
            Some(Event::DeletedId(id)) => format!("{:>8} deleted {id}", e.sequence),
            Some(Event::Heartbeat(_)) => format!("{:>8} heartbeat", e.sequence),
            None => format!("{:>8} unknown event", e.sequence),
        },
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// The canonical gRPC name of a status code.
pub fn code_name(status: &Status) -> &'static str {
    proto::code_name(status.code())
}

/// One line: status name, message, and every field violation.
pub fn error_line(status: &Status) -> String {
    let mut line = format!("{}: {}", code_name(status), status.message());
    if let Some(bad) = status.get_details_bad_request() {
        let parts: Vec<String> = bad
            .field_violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect();
        if !parts.is_empty() {
            line.push_str(&format!(" [{}]", parts.join("; ")));
        }
    }
    line
}

/// Metadata as `key: value` lines (binary values shown as base64).
pub fn metadata(title: &str, md: &MetadataMap) -> String {
    let mut out = String::new();
    for kv in md.iter() {
        match kv {
            tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                out.push_str(&format!(
                    "{title} {}: {}\n",
                    k,
                    v.to_str().unwrap_or("<not text>")
                ));
            }
            tonic::metadata::KeyAndValueRef::Binary(k, v) => {
                out.push_str(&format!("{title} {}: {:?}\n", k, v));
            }
        }
    }
    out
}
