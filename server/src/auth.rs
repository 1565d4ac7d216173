//! Bearer-token authentication for writes.
//!
//! Tokens come from configuration: `--token NAME=TOKEN` (fixed for the
//! life of the process, but visible in `/proc/<pid>/cmdline`) and
//! `--tokens-file PATH` (re-read by [`Tokens::reload`], which the binary
//! calls on SIGHUP). The NAME becomes the author of what the token writes.
//!
//! Only SHA-256 digests are kept: a presented token is hashed and compared
//! with every digest in constant time, so neither the time taken nor a
//! memory dump tells which token matched or what it is. The tokens file may
//! hold the digest instead of the token (`NAME=sha256:<64 hex digits>`), so
//! it need not hold the secret at all.
//!
//! Limits: a reload replaces the file's tokens at once for every call
//! after it (calls already authenticated go on); a bad file on reload
//! keeps the previous tokens.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use anyhow::{Context as _, bail};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;

use crate::{article::ArticleError, config::TokenSpec};

/// Shortest accepted token, in characters.
pub const MIN_TOKEN_CHARS: usize = 8;

/// One accepted token: the author it names and the token's SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenEntry {
    pub name: String,
    digest: [u8; 32],
}

impl fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=<redacted>", self.name)
    }
}

impl TokenEntry {
    fn from_token(name: &str, token: &str) -> Self {
        Self {
            name: name.to_owned(),
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }
}

/// The set of accepted write tokens.
pub struct Tokens {
    /// From `--token`.
    fixed: Vec<TokenEntry>,
    /// `--tokens-file`, and the entries last read from it.
    file: Option<PathBuf>,
    from_file: RwLock<Arc<Vec<TokenEntry>>>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("fixed", &self.fixed)
            .field("file", &self.file)
            .field("from_file", &self.file_entries())
            .finish()
    }
}

impl Tokens {
    /// Fixed tokens only.
    pub fn new(tokens: Vec<TokenSpec>) -> Self {
        Self {
            fixed: tokens
                .iter()
                .map(|t| TokenEntry::from_token(&t.name, &t.token))
                .collect(),
            file: None,
            from_file: RwLock::default(),
        }
    }

    /// Fixed tokens plus those in `file`; an error names the file and the
    /// line (never the token).
    pub async fn with_file(tokens: Vec<TokenSpec>, file: PathBuf) -> anyhow::Result<Self> {
        let entries = read_tokens_file(&file).await?;
        let mut this = Self::new(tokens);
        this.from_file = RwLock::new(Arc::new(entries));
        this.file = Some(file);
        Ok(this)
    }

    /// The `--tokens-file`, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Whether any token is accepted.
    pub fn is_empty(&self) -> bool {
        self.fixed.is_empty() && self.file_entries().is_empty()
    }

    /// Re-reads the tokens file: its tokens replace the previous file's
    /// for every later call. On an error the previous tokens stay. The
    /// number of tokens now read from the file.
    pub async fn reload(&self) -> anyhow::Result<usize> {
        let Some(file) = &self.file else {
            bail!("no --tokens-file to reload");
        };
        let entries = read_tokens_file(file).await?;
        let n = entries.len();
        *self.from_file.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(entries);
        Ok(n)
    }

    fn file_entries(&self) -> Arc<Vec<TokenEntry>> {
        self.from_file
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A fresh random token for `name` (32 bytes of OS randomness, hex).
    pub fn generate(name: &str) -> TokenSpec {
        let bytes: [u8; 32] = rand::random();
        let token = bytes.iter().map(|b| format!("{b:02x}")).collect();
        TokenSpec {
            name: name.into(),
            token,
        }
    }

    /// The author bound to the request's `authorization: Bearer` token.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<String, ArticleError> {
        let value = metadata
            .get("authorization")
            .ok_or(ArticleError::Unauthenticated(
                "writes need an `authorization: Bearer <token>` header",
            ))?;
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(ArticleError::Unauthenticated(
                "the authorization header must be `Bearer <token>`",
            ))?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Check every token so the time taken does not tell which one matched.
        let from_file = self.file_entries();
        let mut found = None;
        for entry in self.fixed.iter().chain(from_file.iter()) {
            if bool::from(entry.digest.ct_eq(&digest)) {
                found = Some(entry.name.clone());
            }
        }
        found.ok_or(ArticleError::Unauthenticated(
            "the bearer token is not valid",
        ))
    }
}

async fn read_tokens_file(path: &Path) -> anyhow::Result<Vec<TokenEntry>> {
    let text = tokio::fs::read_to_string(path)
        .await
        .with_context(|| format!("reading tokens file {}", path.display()))?;
    parse_tokens_file(&text).with_context(|| format!("tokens file {}", path.display()))
}

/// The tokens of a tokens file: one `NAME=TOKEN` or
/// `NAME=sha256:<64 hex digits>` per line; blank lines and lines starting
/// with `#` are skipped. An error names the line, never its token.
pub fn parse_tokens_file(text: &str) -> anyhow::Result<Vec<TokenEntry>> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let number = i + 1;
        let Some((name, value)) = line.split_once('=') else {
            bail!("line {number}: expected NAME=TOKEN or NAME=sha256:<64 hex digits>");
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            bail!("line {number}: the NAME before `=` is empty");
        }
        let entry = match value.strip_prefix("sha256:") {
            Some(hex) => TokenEntry {
                name: name.to_owned(),
                digest: parse_digest(hex.trim()).with_context(|| {
                    format!("line {number}: the sha256 of {name}'s token must be 64 hex digits")
                })?,
            },
            None if value.chars().count() < MIN_TOKEN_CHARS => {
                bail!(
                    "line {number}: the token for {name} is shorter than {MIN_TOKEN_CHARS} characters"
                )
            }
            None => TokenEntry::from_token(name, value),
        };
        entries.push(entry);
    }
    Ok(entries)
}

fn parse_digest(hex: &str) -> anyhow::Result<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        bail!("{} characters", hex.chars().count());
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).context("not hex")?;
        *byte = u8::from_str_radix(pair, 16).context("not hex")?;
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
    }

    fn sha256_hex(token: &str) -> String {
        Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn known_token_names_its_author() {
        let tokens = Tokens::new(vec!["alice=alice-secret-1".parse().unwrap()]);
        assert_eq!(
            tokens.authenticate(&md("Bearer alice-secret-1")).unwrap(),
            "alice"
        );
        assert!(tokens.authenticate(&md("Bearer nope-nope-nope")).is_err());
        assert!(tokens.authenticate(&md("Basic alice-secret-1")).is_err());
        assert!(tokens.authenticate(&MetadataMap::new()).is_err());
    }

    #[test]
    fn generated_tokens_are_long_and_distinct() {
        let (a, b) = (Tokens::generate("admin"), Tokens::generate("admin"));
        assert_eq!(a.token.len(), 64);
        assert_ne!(a.token, b.token);
    }

    #[test]
    fn tokens_file_takes_tokens_digests_comments_and_blank_lines() {
        let text = format!(
            "# writers\n\nalice = alice-plain-token\n  bob=sha256:{}\n#carol=carol-token-0\n",
            sha256_hex("bob-hashed-token").to_uppercase()
        );
        let entries = parse_tokens_file(&text).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(
            entries[0],
            TokenEntry::from_token("alice", "alice-plain-token")
        );
        assert_eq!(
            entries[1],
            TokenEntry::from_token("bob", "bob-hashed-token")
        );
        assert!(!format!("{entries:?}").contains("alice-plain-token"));
        assert!(
            parse_tokens_file("# only a comment\n\n")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_bad_line_is_named_by_number_without_its_secret() {
        let cases = [
            (
                "ok=long-enough-token\njust-a-secret-value\n",
                "line 2",
                "just-a-secret-value",
            ),
            ("=secret-without-name\n", "line 1", "secret-without-name"),
            ("\n\nbob=shorty\n", "line 3", "shorty"),
            ("bob=sha256:abc123secret\n", "line 1", "abc123secret"),
            (
                &format!("bob=sha256:{}zz\n", "0".repeat(62)),
                "line 1",
                "zz",
            ),
        ];
        for (text, line, secret) in cases {
            let err = format!("{:#}", parse_tokens_file(text).unwrap_err());
            assert!(err.contains(line), "{err:?} names {line}");
            assert!(!err.contains(secret), "{err:?} does not echo the secret");
        }
    }

    #[tokio::test]
    async fn a_file_token_is_accepted_and_a_reload_replaces_it_unless_the_file_is_bad() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "alice=first-file-token\n").unwrap();
        let tokens = Tokens::with_file(vec!["root=fixed-cli-token".parse().unwrap()], path.clone())
            .await
            .unwrap();
        let author = |t: &str| tokens.authenticate(&md(&format!("Bearer {t}"))).ok();
        assert_eq!(author("first-file-token").as_deref(), Some("alice"));
        assert_eq!(author("fixed-cli-token").as_deref(), Some("root"));

        std::fs::write(
            &path,
            format!("alice=sha256:{}\n", sha256_hex("second-file-token")),
        )
        .unwrap();
        assert_eq!(tokens.reload().await.unwrap(), 1);
        assert_eq!(author("first-file-token"), None, "the old token is gone");
        assert_eq!(author("second-file-token").as_deref(), Some("alice"));

        std::fs::write(&path, "alice=x\n").unwrap();
        let err = format!("{:#}", tokens.reload().await.unwrap_err());
        assert!(err.contains("line 1") && err.contains(&path.display().to_string()));
        assert_eq!(
            author("second-file-token").as_deref(),
            Some("alice"),
            "a bad file keeps the previous tokens"
        );
        assert_eq!(author("fixed-cli-token").as_deref(), Some("root"));
    }
}
