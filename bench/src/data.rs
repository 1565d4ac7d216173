//! The seed articles: deterministic, blog-like (a title of 4–8 words,
//! 200–1,200 bytes of prose, 1–3 tags), so every run loads the same data.

use proto::v1::CreateArticleRequest;

const WORDS: &[&str] = &[
    "server",
    "browser",
    "stream",
    "message",
    "protobuf",
    "latency",
    "gateway",
    "request",
    "response",
    "header",
    "trailer",
    "frame",
    "connection",
    "client",
    "schema",
    "version",
    "change",
    "watch",
    "index",
    "query",
    "page",
    "storage",
    "commit",
    "sequence",
    "token",
    "error",
    "status",
    "field",
    "tag",
    "article",
    "title",
    "content",
    "author",
    "runtime",
    "tonic",
    "hyper",
    "sqlite",
    "memory",
    "thread",
    "task",
    "future",
    "buffer",
    "bytes",
    "decode",
    "encode",
    "wasm",
    "bundle",
    "render",
    "list",
    "detail",
    "update",
    "delete",
    "import",
    "export",
    "cache",
    "metric",
    "health",
    "drain",
    "signal",
    "port",
    "origin",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "with",
    "for",
    "on",
    "without",
    "before",
    "after",
];

const TAGS: &[&str] = &[
    "grpc-web",
    "architecture",
    "wasm",
    "protobuf",
    "streaming",
    "cli",
    "api-design",
    "errors",
    "sqlite",
    "operations",
    "security",
    "performance",
];

/// A small xorshift generator: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn word(&mut self) -> &'static str {
        WORDS[self.below(WORDS.len())]
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `n` articles, the same for the same `n`.
pub fn articles(n: usize) -> Vec<CreateArticleRequest> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|_| {
            let title_words = 4 + rng.below(5);
            let title = (0..title_words)
                .map(|i| {
                    let w = rng.word();
                    if i == 0 { capitalized(w) } else { w.to_owned() }
                })
                .collect::<Vec<_>>()
                .join(" ");
            let target = 200 + rng.below(1000);
            let mut content = String::with_capacity(target + 80);
            while content.len() < target {
                let sentence_words = 6 + rng.below(10);
                for i in 0..sentence_words {
                    let w = rng.word();
                    if i == 0 {
                        content.push_str(&capitalized(w));
                    } else {
                        content.push(' ');
                        content.push_str(w);
                    }
                }
                content.push_str(if rng.below(5) == 0 { ".\n\n" } else { ". " });
            }
            let mut tags: Vec<String> = (0..1 + rng.below(3))
                .map(|_| TAGS[rng.below(TAGS.len())].to_owned())
                .collect();
            tags.sort();
            tags.dedup();
            CreateArticleRequest {
                title,
                content: content.trim_end().to_owned(),
                tags,
            }
        })
        .collect()
}
