//! Bearer-token authentication for writes.
//!
//! Tokens come from configuration (`--token NAME=TOKEN`); the NAME becomes
//! the author of what the token writes. Comparison is constant-time, and
//! tokens never appear in `Debug` output or logs.

use std::fmt;

use subtle::ConstantTimeEq;
use tonic::metadata::MetadataMap;

use crate::{article::ArticleError, config::TokenSpec};

/// The set of accepted write tokens.
#[derive(Clone)]
pub struct Tokens {
    tokens: Vec<TokenSpec>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.tokens.iter().map(|t| &t.name))
            .finish()
    }
}

impl Tokens {
    pub fn new(tokens: Vec<TokenSpec>) -> Self {
        Self { tokens }
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
        // Check every token so the time taken does not tell which one matched.
        let mut found = None;
        for spec in &self.tokens {
            if bool::from(spec.token.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(spec.name.clone());
            }
        }
        found.ok_or(ArticleError::Unauthenticated(
            "the bearer token is not valid",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
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
}
