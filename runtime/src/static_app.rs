//! The static web app: files of one directory at `/`, `index.html` for
//! unknown paths (client-side routes), and nothing outside the directory.
//!
//! tower-http's `ServeDir` refuses `..` and absolute components, but it
//! follows symlinks: a link inside the directory to `/etc/passwd` would be
//! served. [`StaticApp`] resolves each request's path as `ServeDir` does,
//! and when it names something that exists, checks that its real path
//! (symlinks resolved) is inside the real path of the directory; anything
//! outside is a bare 404, with no hint of what is there. Links that stay
//! inside the directory are served.
//!
//! Limitation: the check and `ServeDir`'s open are two steps, so someone
//! who can swap links in the directory between them could still win the
//! race; the directory is meant to be the deployer's, not writable by
//! clients.

use std::{
    convert::Infallible,
    path::{Component, Path, PathBuf},
    sync::Arc,
    task::{Context, Poll},
};

use anyhow::Context as _;
use axum::response::{IntoResponse as _, Response};
use futures::future::BoxFuture;
use http::{Request, StatusCode};
use tower::{Service, ServiceExt as _};
use tower_http::services::{ServeDir, ServeFile};

/// Serves the files under one directory whose real paths are inside it.
#[derive(Clone)]
pub(crate) struct StaticApp {
    root: Arc<PathBuf>,
    files: ServeDir<ServeFile>,
}

impl StaticApp {
    /// The app in `dir`, which must hold an `index.html` inside it.
    pub(crate) fn new(dir: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(
            dir.join("index.html").is_file(),
            "{} has no index.html",
            dir.display()
        );
        let root = dir
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", dir.display()))?;
        let index = root.join("index.html").canonicalize()?;
        anyhow::ensure!(
            index.starts_with(&root),
            "{} is outside {}",
            index.display(),
            root.display()
        );
        Ok(Self {
            files: ServeDir::new(&root).fallback(ServeFile::new(index)),
            root: Arc::new(root),
        })
    }
}

/// The file `ServeDir` would open for `uri_path` under `root` (same
/// decoding, same refusals), or `None` when it refuses the path.
fn requested_file(root: &Path, uri_path: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(uri_path.trim_start_matches('/'))
        .decode_utf8()
        .ok()?;
    let mut path = root.to_path_buf();
    for component in Path::new(&*decoded).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(path)
}

/// Whether what `path` names exists with its real path outside `root`
/// (for a directory, the `index.html` `ServeDir` would serve from it).
async fn escapes(root: &Path, path: &Path) -> bool {
    let Ok(real) = tokio::fs::canonicalize(path).await else {
        // Nothing there (or a dangling link): `ServeDir` finds nothing
        // either and answers with `index.html`.
        return false;
    };
    if !real.starts_with(root) {
        return true;
    }
    if tokio::fs::metadata(&real).await.is_ok_and(|m| m.is_dir())
        && let Ok(index) = tokio::fs::canonicalize(real.join("index.html")).await
    {
        return !index.starts_with(root);
    }
    false
}

impl Service<Request<axum::body::Body>> for StaticApp {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<axum::body::Body>) -> Self::Future {
        let root = self.root.clone();
        let files = self.files.clone();
        Box::pin(async move {
            if let Some(path) = requested_file(&root, req.uri().path())
                && escapes(&root, &path).await
            {
                return Ok((StatusCode::NOT_FOUND, "not found\n").into_response());
            }
            match files.oneshot(req).await {
                Ok(response) => Ok(response.into_response()),
                Err(never) => match never {},
            }
        })
    }
}
