//! The static web app: files of one directory at `/`, `index.html` for
//! unknown paths (client-side routes), precompressed variants chosen by
//! `Accept-Encoding`, cache headers by name, and nothing outside the
//! directory.
//!
//! **Encodings.** A file `X` may have `X.br` and `X.gz` beside it (made at
//! build time by [`precompress`], feature `precompress`); tower-http's
//! `ServeDir` sends the best one the client accepts (brotli before gzip)
//! with its `Content-Encoding`, and `X` itself otherwise. Every answer
//! carries `Vary: Accept-Encoding`. Nothing is compressed while serving.
//!
//! **Caching.** A file whose name carries a content hash — `-` and 12 to
//! 16 lowercase hex digits before a `.` or `_`, as Trunk names its output
//! (`app-0123456789abcdef.js`, `app-0123456789abcdef_bg.wasm`; Trunk
//! writes its 64-bit hash without leading zeros, so one name in 16 has 15
//! digits) — changes name when it changes, so it is sent with `Cache-Control: public,
//! max-age=31536000, immutable` and a browser never asks again. Everything
//! else, `index.html` and the fallback for client-side routes included, is
//! sent with `Cache-Control: no-cache`, `Last-Modified` and a weak `ETag`
//! (from the size and modification time of the file and its variants): the
//! browser revalidates on each visit with `If-None-Match` or
//! `If-Modified-Since` and gets an empty `304` while the file is unchanged.
//!
//! **Missing files.** A path that is no file and whose last segment has an
//! extension (`/app-0123456789abcdef.js`, `/favicon.ico`) names a file, not
//! a client-side route: it is answered `404`, never with `index.html` —
//! HTML under a hashed asset's name would otherwise be kept as that asset.
//! Other paths (`/articles/42`) get `index.html`, so the app routes itself.
//!
//! **Confinement.** tower-http's `ServeDir` refuses `..` and absolute
//! components, but it follows symlinks: a link inside the directory to
//! `/etc/passwd` would be served. [`StaticApp`] resolves each request's
//! path as `ServeDir` does and, for the file and each precompressed
//! variant `ServeDir` might open instead (and for a directory, its
//! `index.html` and that file's variants), checks that what exists has
//! its real path (symlinks resolved) inside the real path of the
//! directory; if one is outside, the answer is a bare 404, with no hint of
//! what is there. Links that stay inside the directory are served.
//!
//! Limitations: the check and `ServeDir`'s open are two steps, so someone
//! who can swap links in the directory between them could still win the
//! race; the directory is meant to be the deployer's, not writable by
//! clients. A variant is trusted to hold its file's bytes: run
//! [`precompress`] again whenever the files change (a stale `X.br` would
//! be served in place of a newer `X`).

use std::{
    convert::Infallible,
    path::{Component, Path, PathBuf},
    sync::Arc,
    task::{Context, Poll},
};

use anyhow::Context as _;
use axum::response::{IntoResponse as _, Response};
use futures::future::BoxFuture;
use http::{HeaderValue, Request, StatusCode, header};
use tower::{Service, ServiceExt as _};
use tower_http::services::{ServeDir, ServeFile};

/// The extensions `ServeDir` looks for beside a file, in the runtime's
/// order of preference.
const VARIANTS: [&str; 2] = ["br", "gz"];

/// `Cache-Control` of a file whose name carries its content hash.
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
/// `Cache-Control` of everything else: revalidate before each use.
const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");

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
        let index = root.join("index.html");
        for candidate in with_variants(&index) {
            if let Ok(real) = candidate.canonicalize() {
                anyhow::ensure!(
                    real.starts_with(&root),
                    "{} is outside {}",
                    real.display(),
                    root.display()
                );
            }
        }
        let fallback = ServeFile::new(index.canonicalize()?)
            .precompressed_br()
            .precompressed_gzip();
        Ok(Self {
            files: ServeDir::new(&root)
                .precompressed_br()
                .precompressed_gzip()
                .fallback(fallback),
            root: Arc::new(root),
        })
    }
}

/// `path` and the precompressed variants `ServeDir` may open in its place.
fn with_variants(path: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    std::iter::once(path.to_path_buf())
        .chain(VARIANTS.iter().map(|extension| variant(path, extension)))
}

/// `path` with `.extension` appended to its file name.
fn variant(path: &Path, extension: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(extension);
    path.with_file_name(name)
}

/// Whether a file name carries a content hash: `-` and 12 to 16 lowercase
/// hex digits, then `.` or `_` (Trunk's `name-<hash>.ext`,
/// `name-<hash>_bg.wasm`, the hash unpadded). Fewer than 12 digits is too
/// likely to be a word (`-cafe.js`, `-deadbeef.css`).
fn has_content_hash(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.iter().enumerate().any(|(dash, &b)| {
        let digits = bytes[dash + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(*c))
            .count();
        b == b'-'
            && (12..=16).contains(&digits)
            && matches!(bytes.get(dash + 1 + digits), Some(b'.' | b'_'))
    })
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

/// What a request's path names under the root.
enum Target {
    /// It, or a variant `ServeDir` might send instead, is outside the root.
    Outside,
    /// A file (or a variant of one) inside the root.
    File,
    /// A directory: `ServeDir` sends its `index.html`.
    Directory,
    /// Nothing, or a path `ServeDir` refuses: the answer is the fallback
    /// `index.html` or, for a name with an extension, a 404.
    Missing,
}

/// Classifies `path` (see [`Target`]); for a directory, its `index.html`
/// and that file's variants must be inside the root too. With it, the
/// entity tag of what will be sent, when there is a file.
async fn classify(root: &Path, path: &Path) -> (Target, Option<HeaderValue>) {
    // For a directory, `ServeDir` sends its `index.html` (or a variant).
    let (file, directory) = match tokio::fs::canonicalize(path).await {
        Ok(real) if !real.starts_with(root) => return (Target::Outside, None),
        Ok(real) if tokio::fs::metadata(&real).await.is_ok_and(|m| m.is_dir()) => {
            (real.join("index.html"), true)
        }
        _ => (path.to_path_buf(), false),
    };
    let mut tag = EntityTag::default();
    for (index, candidate) in with_variants(&file).enumerate() {
        // Nothing there (or a dangling link): `ServeDir` finds nothing
        // either and tries the next variant or answers with `index.html`.
        let Ok(real) = tokio::fs::canonicalize(&candidate).await else {
            continue;
        };
        if !real.starts_with(root) {
            return (Target::Outside, None);
        }
        if let Ok(metadata) = tokio::fs::metadata(&real).await {
            tag.add(index, &metadata);
        }
    }
    let target = match (directory, tag.found) {
        (true, _) => Target::Directory,
        (false, true) => Target::File,
        (false, false) => Target::Missing,
    };
    (target, tag.value())
}

/// A weak entity tag over the size and modification time of a file and of
/// its variants: any of them rewritten changes it. Weak, because the
/// brotli, gzip and plain bodies share it (`Vary: Accept-Encoding` keeps
/// them apart in caches).
#[derive(Default)]
struct EntityTag {
    hash: u64,
    found: bool,
}

impl EntityTag {
    fn add(&mut self, index: usize, metadata: &std::fs::Metadata) {
        let modified = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        // FNV-1a: stable across processes and builds, unlike `DefaultHasher`.
        for byte in (index as u64)
            .to_le_bytes()
            .into_iter()
            .chain(metadata.len().to_le_bytes())
            .chain(modified.to_le_bytes())
        {
            self.hash = (self.hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.found = true;
    }

    fn value(&self) -> Option<HeaderValue> {
        self.found
            .then(|| HeaderValue::try_from(format!("W/\"{:016x}\"", self.hash)).ok())
            .flatten()
    }
}

/// Whether `If-None-Match` lists `tag` (weak comparison) or is `*`.
fn if_none_match_lists(headers: &http::HeaderMap, tag: &HeaderValue) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let ours = opaque(tag.to_str().unwrap_or_default());
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || opaque(t) == ours)
}

/// Whether the last segment of a request path has an extension
/// (`/app-0123456789abcdef.js`, `/favicon.ico`): it names a file, where a
/// client-side route (`/articles/42`, `/`) names none.
fn names_a_file(uri_path: &str) -> bool {
    let last = uri_path.rsplit('/').next().unwrap_or_default();
    Path::new(last).extension().is_some()
}

/// A bare `404` that no cache keeps.
fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, REVALIDATE)],
        "not found\n",
    )
        .into_response()
}

impl Service<Request<axum::body::Body>> for StaticApp {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<axum::body::Body>) -> Self::Future {
        let root = self.root.clone();
        let files = self.files.clone();
        Box::pin(async move {
            let path = requested_file(&root, req.uri().path());
            let (target, tag) = match &path {
                Some(path) => classify(&root, path).await,
                None => (Target::Missing, None),
            };
            let (cache_control, tag) = match target {
                Target::Outside => return Ok(not_found()),
                Target::Missing if names_a_file(req.uri().path()) => return Ok(not_found()),
                // The fallback: `index.html` at the root.
                Target::Missing => (REVALIDATE, classify(&root, &root).await.1),
                Target::File
                    if path
                        .as_deref()
                        .and_then(Path::file_name)
                        .and_then(|name| name.to_str())
                        .is_some_and(has_content_hash) =>
                {
                    (IMMUTABLE, tag)
                }
                Target::File | Target::Directory => (REVALIDATE, tag),
            };
            let mut response = match &tag {
                // `If-None-Match` decides alone when it is there (RFC 9110
                // 13.2.2): `If-Modified-Since` is not looked at.
                Some(tag)
                    if req.headers().contains_key(header::IF_NONE_MATCH)
                        && matches!(*req.method(), http::Method::GET | http::Method::HEAD) =>
                {
                    if if_none_match_lists(req.headers(), tag) {
                        StatusCode::NOT_MODIFIED.into_response()
                    } else {
                        req.headers_mut().remove(header::IF_MODIFIED_SINCE);
                        serve(files, req).await
                    }
                }
                _ => serve(files, req).await,
            };
            let status = response.status();
            if status.is_success() || status == StatusCode::NOT_MODIFIED {
                let headers = response.headers_mut();
                headers.insert(header::CACHE_CONTROL, cache_control);
                headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
                if let Some(tag) = tag {
                    headers.insert(header::ETAG, tag);
                }
            }
            Ok(response)
        })
    }
}

async fn serve(files: ServeDir<ServeFile>, req: Request<axum::body::Body>) -> Response {
    match files.oneshot(req).await {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}

/// Extensions of the files [`precompress`] compresses: text and
/// WebAssembly. Images, fonts and archives are compressed already.
#[cfg(feature = "precompress")]
const COMPRESSIBLE: [&str; 13] = [
    "html",
    "htm",
    "js",
    "mjs",
    "css",
    "wasm",
    "json",
    "map",
    "svg",
    "txt",
    "xml",
    "webmanifest",
    "ico",
];

/// One file [`precompress`] looked at: its size and those of the variants
/// it wrote (`None`: not written, because compressing did not make it
/// smaller).
#[cfg(feature = "precompress")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Precompressed {
    /// The file, as found under the directory given to [`precompress`].
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The size of `<path>.br` (brotli, quality 11).
    pub brotli: Option<u64>,
    /// The size of `<path>.gz` (gzip, level 9).
    pub gzip: Option<u64>,
}

/// Writes `X.br` (brotli, quality 11) and `X.gz` (gzip, level 9) beside
/// every compressible file `X` under `dir` (HTML, JS, CSS, WebAssembly,
/// JSON, source maps, SVG, text, XML, web manifests, icons), for the
/// static app to send to clients that accept them. A variant is written
/// only when it is smaller than `X`, and an older one is removed when it
/// is not; symlinks are not followed. Run it after each build of the app,
/// over the directory given to `RuntimeBuilder::static_dir`: stale
/// variants would be served in place of the new files.
///
/// Returns what it did, one entry per compressible file, sorted by path.
#[cfg(feature = "precompress")]
pub fn precompress(dir: &Path) -> anyhow::Result<Vec<Precompressed>> {
    let mut done = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder)
            .with_context(|| format!("cannot read {}", folder.display()))?;
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file()
                && path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| COMPRESSIBLE.contains(&e.to_ascii_lowercase().as_str()))
            {
                done.push(precompress_file(&path)?);
            }
        }
    }
    done.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(done)
}

/// Compresses one file both ways; see [`precompress`].
#[cfg(feature = "precompress")]
fn precompress_file(path: &Path) -> anyhow::Result<Precompressed> {
    use std::io::Write as _;

    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;

    let mut brotli = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut raw.as_slice(), &mut brotli, &params)?;

    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(&raw)?;
    let gzip = gzip.finish()?;

    let mut written = [None, None];
    for ((extension, bytes), size) in VARIANTS.iter().zip([brotli, gzip]).zip(&mut written) {
        let variant = variant(path, extension);
        // Removed first, so that a link in its place is replaced, never
        // written through.
        if variant.symlink_metadata().is_ok() {
            std::fs::remove_file(&variant)
                .with_context(|| format!("cannot remove {}", variant.display()))?;
        }
        if bytes.len() < raw.len() {
            std::fs::write(&variant, &bytes)
                .with_context(|| format!("cannot write {}", variant.display()))?;
            *size = Some(bytes.len() as u64);
        }
    }
    let [brotli, gzip] = written;
    Ok(Precompressed {
        path: path.to_path_buf(),
        bytes: raw.len() as u64,
        brotli,
        gzip,
    })
}
