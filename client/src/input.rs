//! Reading articles to import: JSON Lines (`.jsonl`, `.ndjson`, `.json`:
//! one `{"title", "content", "tags"}` object per line) and Markdown (`.md`,
//! `.markdown`: optional YAML front matter with `title` and `tags`, the rest
//! is the content; without a title, the first `# heading` is used).

use std::{fmt, path::Path};

use anyhow::{Context as _, bail};
use proto::v1::CreateArticleRequest;
use serde::Deserialize;

/// One article read from a file, with where it came from.
#[derive(Clone, Debug)]
pub struct Record {
    pub source: Source,
    pub request: CreateArticleRequest,
}

/// A file and line, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonArticle {
    title: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize, Default)]
struct FrontMatter {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

/// Reads every record of `path`; a malformed record is an error naming its line.
pub fn read_file(path: &Path) -> anyhow::Result<Vec<Record>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.display().to_string();
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("jsonl" | "ndjson" | "json") => parse_json_lines(&name, &text),
        Some("md" | "markdown") => Ok(vec![parse_markdown(&name, &text)?]),
        _ => bail!(
            "{name}: unknown file type; use .jsonl/.ndjson for JSON Lines or .md for Markdown"
        ),
    }
}

pub fn parse_json_lines(file: &str, text: &str) -> anyhow::Result<Vec<Record>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let source = Source {
            file: file.into(),
            line: i + 1,
        };
        let a: JsonArticle = serde_json::from_str(line)
            .with_context(|| format!("{source}: not a valid article object"))?;
        out.push(Record {
            source,
            request: CreateArticleRequest {
                title: a.title,
                content: a.content,
                tags: a.tags,
            },
        });
    }
    Ok(out)
}

pub fn parse_markdown(file: &str, text: &str) -> anyhow::Result<Record> {
    let source = Source {
        file: file.into(),
        line: 1,
    };
    let (front, body) = match text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    {
        Some(rest) => {
            let end = rest
                .find("\n---")
                .with_context(|| format!("{source}: front matter is not closed with ---"))?;
            let front: FrontMatter = if rest[..end].trim().is_empty() {
                FrontMatter::default()
            } else {
                serde_yaml_ng::from_str(&rest[..end])
                    .with_context(|| format!("{source}: invalid front matter"))?
            };
            let after = &rest[end + 4..];
            (
                front,
                after
                    .strip_prefix("\r\n")
                    .or_else(|| after.strip_prefix('\n'))
                    .unwrap_or(after),
            )
        }
        None => (FrontMatter::default(), text),
    };
    let (title, content) = match front.title {
        Some(t) => (t, body.trim().to_owned()),
        None => {
            let mut lines = body.trim_start().lines();
            let first = lines.next().unwrap_or_default();
            match first.strip_prefix("# ") {
                Some(heading) => (
                    heading.trim().to_owned(),
                    lines.collect::<Vec<_>>().join("\n").trim().to_owned(),
                ),
                None => (String::new(), body.trim().to_owned()),
            }
        }
    };
    Ok(Record {
        source,
        request: CreateArticleRequest {
            title,
            content,
            tags: front.tags,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_name_the_bad_line() {
        let text = "{\"title\":\"a\"}\n\n{\"title\":\"b\",\"tags\":[\"x\"]}\n{oops\n";
        let err = parse_json_lines("f.jsonl", text).unwrap_err();
        assert!(format!("{err:#}").contains("f.jsonl:4"), "{err:#}");
        let ok = parse_json_lines("f.jsonl", &text[..text.len() - 6]).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].source.line, 3);
        assert_eq!(ok[1].request.tags, ["x"]);
    }

    #[test]
    fn markdown_front_matter_and_heading() {
        let r = parse_markdown(
            "a.md",
            "---\ntitle: Hello\ntags: [rust, web]\n---\n\nBody text.\n",
        )
        .unwrap();
        assert_eq!(
            (r.request.title.as_str(), r.request.content.as_str()),
            ("Hello", "Body text.")
        );
        assert_eq!(r.request.tags, ["rust", "web"]);
        let r = parse_markdown("b.md", "# From heading\n\nPara one.\n\nPara two.\n").unwrap();
        assert_eq!(r.request.title, "From heading");
        assert_eq!(r.request.content, "Para one.\n\nPara two.");
    }
}
