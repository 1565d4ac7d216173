//! How the static app sends its files: the precompressed variant the
//! client accepts (brotli, then gzip, then the file itself), cache headers
//! by name (content-hashed names immutable, the rest revalidated with
//! `ETag` or `Last-Modified` and answered `304`), a missing file a 404 while
//! client-side routes get `index.html`, and variants that lead outside the
//! folder never served. With feature `precompress`: the build-time tool
//! that writes the variants.

use std::path::Path;

use bytes::Bytes;
use grpc_runtime::RuntimeBuilder;
use http::{StatusCode, header};
use http_body_util::Full;
use testkit::raw::{RawReply, RawRequest, get};

use crate::common::{app, send, text};

const WASM: &str = "app-0123456789abcdef_bg.wasm";
const JS: &str = "app-0123456789abcdef.js";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A GET of `path` with these request headers.
fn get_with(path: &str, headers: &[(header::HeaderName, &str)]) -> RawRequest {
    let mut request = http::Request::builder().uri(path);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    request
        .body(Full::new(Bytes::new()))
        .expect("valid request")
}

/// A Trunk-like build: `index.html`, a hashed wasm and JS, each with
/// distinguishable `.br` and `.gz` beside it, and an unhashed file.
fn write_app(root: &Path) {
    let write = |name: &str, body: &str| std::fs::write(root.join(name), body).unwrap();
    write("index.html", "<p>index</p>");
    write("index.html.br", "INDEX AS BROTLI");
    write("index.html.gz", "INDEX AS GZIP");
    write(WASM, "\0asm WASM ITSELF");
    write(&format!("{WASM}.br"), "WASM AS BROTLI");
    write(&format!("{WASM}.gz"), "WASM AS GZIP");
    write(JS, "JS ITSELF");
    write(&format!("{JS}.gz"), "JS AS GZIP");
    write("robots.txt", "User-agent: *");
}

fn assert_vary(reply: &RawReply, what: &str) {
    assert!(
        reply.headers.get_all(header::VARY).iter().any(|v| v
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("accept-encoding")),
        "{what}: vary {:?}",
        reply.headers
    );
}

#[tokio::test]
async fn the_precompressed_variant_the_client_accepts_is_sent() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_app(dir.path());
    let app = app(RuntimeBuilder::new().static_dir(Some(dir.path().into()))).await;
    let path = format!("/{WASM}");

    for (accept, encoding, body) in [
        (
            Some("gzip, deflate, br, zstd"),
            Some("br"),
            "WASM AS BROTLI",
        ),
        (Some("br"), Some("br"), "WASM AS BROTLI"),
        (Some("gzip"), Some("gzip"), "WASM AS GZIP"),
        (Some("br;q=0, gzip"), Some("gzip"), "WASM AS GZIP"),
        (Some("deflate"), None, "\0asm WASM ITSELF"),
        (None, None, "\0asm WASM ITSELF"),
    ] {
        let headers: Vec<_> = accept
            .map(|a| (header::ACCEPT_ENCODING, a))
            .into_iter()
            .collect();
        let reply = send(&app, get_with(&path, &headers)).await;
        assert_eq!(reply.status, StatusCode::OK, "{accept:?}");
        assert_eq!(text(&reply), body, "{accept:?}");
        assert_eq!(reply.header("content-encoding"), encoding, "{accept:?}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/wasm"),
            "the type of the file, not of its variant: {accept:?}"
        );
        assert_vary(&reply, &format!("{accept:?}"));
        assert_eq!(reply.header("cache-control"), Some(IMMUTABLE), "{accept:?}");
    }

    // Only a gzip variant beside the JS: a brotli client gets gzip.
    let reply = send(
        &app,
        get_with(&format!("/{JS}"), &[(header::ACCEPT_ENCODING, "gzip, br")]),
    )
    .await;
    assert_eq!(text(&reply), "JS AS GZIP");
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    assert!(
        reply
            .header("content-type")
            .is_some_and(|ct| ct.contains("javascript")),
        "{:?}",
        reply.header("content-type")
    );

    // index.html and the fallback for client-side routes have variants too.
    for path in ["/", "/index.html", "/articles/42"] {
        let reply = send(
            &app,
            get_with(path, &[(header::ACCEPT_ENCODING, "gzip, br")]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(text(&reply), "INDEX AS BROTLI", "{path}");
        assert_eq!(reply.header("content-encoding"), Some("br"), "{path}");
        assert!(
            reply
                .header("content-type")
                .is_some_and(|ct| ct.starts_with("text/html")),
            "{path}: {:?}",
            reply.header("content-type")
        );
        assert_vary(&reply, path);
    }
}

#[tokio::test]
async fn hashed_names_are_immutable_and_everything_else_is_revalidated() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_app(dir.path());
    let app = app(RuntimeBuilder::new().static_dir(Some(dir.path().into()))).await;

    for path in [format!("/{WASM}"), format!("/{JS}")] {
        let reply = send(&app, get(&path)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.header("cache-control"), Some(IMMUTABLE), "{path}");
    }

    // Unhashed files, index.html and client-side routes are revalidated.
    for (path, body) in [
        ("/robots.txt", "User-agent: *"),
        ("/", "<p>index</p>"),
        ("/index.html", "<p>index</p>"),
        ("/articles/42", "<p>index</p>"),
    ] {
        let reply = send(&app, get(path)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(text(&reply), body, "{path}");
        assert_eq!(reply.header("cache-control"), Some("no-cache"), "{path}");
        assert!(
            reply.header("last-modified").is_some(),
            "a validator: {path}"
        );
        assert!(
            reply.header("etag").is_some_and(|t| t.starts_with("W/\"")),
            "a weak entity tag: {path} {:?}",
            reply.header("etag")
        );
        assert_vary(&reply, path);
    }

    // Trunk writes its hash unpadded: 15 digits (and 12) are a hash too.
    for name in ["app-8c14fad3264aea6_bg.wasm", "app-8c14fad3264a.js"] {
        std::fs::write(dir.path().join(name), "x").unwrap();
        let reply = send(&app, get(&format!("/{name}"))).await;
        assert_eq!(text(&reply), "x", "{name}");
        assert_eq!(reply.header("cache-control"), Some(IMMUTABLE), "{name}");
    }

    // Not a content hash: 11 or 17 digits, upper case, no separator after,
    // a hex word.
    for name in [
        "app-0123456789a.js",
        "app-0123456789abcdef0.js",
        "app-0123456789ABCDEF.js",
        "app-0123456789abcdefjs",
        "app-deadbeef.css",
    ] {
        std::fs::write(dir.path().join(name), "x").unwrap();
        let reply = send(&app, get(&format!("/{name}"))).await;
        assert_eq!(text(&reply), "x", "{name}");
        assert_eq!(reply.header("cache-control"), Some("no-cache"), "{name}");
    }
}

#[tokio::test]
async fn index_html_and_client_side_routes_revalidate_with_a_304() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_app(dir.path());
    let app = app(RuntimeBuilder::new().static_dir(Some(dir.path().into()))).await;

    for path in ["/", "/index.html", "/articles/42"] {
        for accept in ["gzip, br", "identity"] {
            let first = send(&app, get_with(path, &[(header::ACCEPT_ENCODING, accept)])).await;
            let last_modified = first
                .header("last-modified")
                .expect("Last-Modified on index.html")
                .to_owned();
            let again = send(
                &app,
                get_with(
                    path,
                    &[
                        (header::ACCEPT_ENCODING, accept),
                        (header::IF_MODIFIED_SINCE, &last_modified),
                    ],
                ),
            )
            .await;
            assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path} {accept}");
            assert!(again.body.is_empty(), "{path} {accept}");
            assert_eq!(again.header("cache-control"), Some("no-cache"), "{path}");
            assert_vary(&again, path);

            // A copy older than the file is sent again.
            let stale = send(
                &app,
                get_with(
                    path,
                    &[
                        (header::ACCEPT_ENCODING, accept),
                        (header::IF_MODIFIED_SINCE, "Fri, 09 Aug 1996 14:21:40 GMT"),
                    ],
                ),
            )
            .await;
            assert_eq!(stale.status, StatusCode::OK, "{path} {accept}");
            assert!(!stale.body.is_empty(), "{path} {accept}");
        }
    }
}

#[tokio::test]
async fn a_missing_file_is_a_404_while_client_side_routes_get_index_html() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_app(dir.path());
    let app = app(RuntimeBuilder::new().static_dir(Some(dir.path().into()))).await;

    // A name with an extension names a file: index.html under a hashed
    // asset's name would be cached as that asset for a year.
    for path in [
        "/app-fedcba9876543210.js",
        "/app-fedcba9876543210_bg.wasm",
        "/foo.wasm",
        "/favicon.ico",
        "/assets/app.css",
        "/articles/app-0123456789abcdef.js",
    ] {
        for accept in ["gzip, br", "identity"] {
            let reply = send(&app, get_with(path, &[(header::ACCEPT_ENCODING, accept)])).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path} {accept}");
            assert_eq!(text(&reply), "not found\n", "{path} {accept}");
            assert_eq!(reply.header("cache-control"), Some("no-cache"), "{path}");
            assert_eq!(reply.header("content-encoding"), None, "{path}");
        }
    }

    // Client-side routes (no extension in the last segment) get index.html.
    for path in [
        "/articles/12",
        "/articles/12/edit",
        "/new",
        "/v1.2/articles",
        "/?q=a.js",
    ] {
        let reply = send(&app, get(path)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(text(&reply), "<p>index</p>", "{path}");
        assert_eq!(reply.header("cache-control"), Some("no-cache"), "{path}");
    }
}

#[tokio::test]
async fn index_html_revalidates_with_its_etag() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_app(dir.path());
    let app = app(RuntimeBuilder::new().static_dir(Some(dir.path().into()))).await;

    let first = send(
        &app,
        get_with("/", &[(header::ACCEPT_ENCODING, "gzip, br")]),
    )
    .await;
    let tag = first.header("etag").expect("an ETag on /").to_owned();
    for path in ["/", "/index.html", "/articles/42"] {
        for accept in ["gzip, br", "identity"] {
            let reply = send(&app, get_with(path, &[(header::ACCEPT_ENCODING, accept)])).await;
            assert_eq!(reply.header("etag"), Some(tag.as_str()), "{path} {accept}");

            // As Firefox asks: the tag (weak comparison) and the date.
            let last_modified = reply.header("last-modified").unwrap().to_owned();
            for if_none_match in [tag.clone(), tag.replace("W/", ""), format!("\"x\", {tag}")] {
                let again = send(
                    &app,
                    get_with(
                        path,
                        &[
                            (header::ACCEPT_ENCODING, accept),
                            (header::IF_NONE_MATCH, &if_none_match),
                            (header::IF_MODIFIED_SINCE, &last_modified),
                        ],
                    ),
                )
                .await;
                assert_eq!(
                    again.status,
                    StatusCode::NOT_MODIFIED,
                    "{path} {accept} {if_none_match}"
                );
                assert!(again.body.is_empty(), "{path} {accept}");
                assert_eq!(again.header("etag"), Some(tag.as_str()), "{path}");
                assert_eq!(again.header("cache-control"), Some("no-cache"), "{path}");
                assert_vary(&again, path);
            }

            // Another tag: sent again, even with a current If-Modified-Since
            // (If-None-Match decides alone).
            let other = send(
                &app,
                get_with(
                    path,
                    &[
                        (header::ACCEPT_ENCODING, accept),
                        (header::IF_NONE_MATCH, "W/\"0000000000000000\""),
                        (header::IF_MODIFIED_SINCE, &last_modified),
                    ],
                ),
            )
            .await;
            assert_eq!(other.status, StatusCode::OK, "{path} {accept}");
            assert!(!other.body.is_empty(), "{path} {accept}");
        }
    }

    // A new build of index.html (or of one of its variants) changes the tag.
    std::fs::write(dir.path().join("index.html.br"), "NEW INDEX AS BROTLI").unwrap();
    let reply = send(
        &app,
        get_with(
            "/",
            &[
                (header::ACCEPT_ENCODING, "gzip, br"),
                (header::IF_NONE_MATCH, &tag),
            ],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(text(&reply), "NEW INDEX AS BROTLI");
    assert_ne!(reply.header("etag"), Some(tag.as_str()));
}

#[tokio::test]
async fn a_precompressed_variant_leading_outside_the_folder_is_never_served() {
    let outside = tempfile::tempdir().expect("temp dir");
    std::fs::write(outside.path().join("secret"), "SECRET").unwrap();
    let secret = outside.path().join("secret");

    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    write_app(root);
    std::fs::write(root.join("page.js"), "PAGE").unwrap();
    std::os::unix::fs::symlink(&secret, root.join("page.js.gz")).unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/index.html"), "SUB").unwrap();
    std::os::unix::fs::symlink(&secret, root.join("sub/index.html.br")).unwrap();
    // A variant with no file beside it is what ServeDir opens, too.
    std::os::unix::fs::symlink(&secret, root.join("ghost.css.br")).unwrap();
    // Links inside the folder are served.
    std::fs::write(root.join("inside.js"), "INSIDE").unwrap();
    std::fs::write(root.join("inside.js.gz.real"), "INSIDE AS GZIP").unwrap();
    std::os::unix::fs::symlink(root.join("inside.js.gz.real"), root.join("inside.js.gz")).unwrap();
    let app = app(RuntimeBuilder::new().static_dir(Some(root.into()))).await;

    for path in ["/page.js", "/sub/", "/sub/index.html", "/ghost.css"] {
        for accept in ["gzip, br", "identity"] {
            let reply = send(&app, get_with(path, &[(header::ACCEPT_ENCODING, accept)])).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path} {accept}");
            assert_eq!(text(&reply), "not found\n", "{path} {accept}");
        }
    }
    let reply = send(
        &app,
        get_with("/inside.js", &[(header::ACCEPT_ENCODING, "gzip")]),
    )
    .await;
    assert_eq!(text(&reply), "INSIDE AS GZIP");

    // An index.html variant outside the folder stops the app at startup.
    let dir = tempfile::tempdir().expect("temp dir");
    write_app(dir.path());
    std::fs::remove_file(dir.path().join("index.html.gz")).unwrap();
    std::os::unix::fs::symlink(&secret, dir.path().join("index.html.gz")).unwrap();
    let err = crate::common::with_echo(RuntimeBuilder::new().static_dir(Some(dir.path().into())))
        .into_service()
        .await
        .expect_err("index.html.gz leads outside");
    assert!(err.to_string().contains("outside"), "{err:#}");
}

#[cfg(feature = "precompress")]
#[test]
fn precompress_writes_smaller_brotli_and_gzip_variants_of_compressible_files() {
    use std::io::Read as _;

    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let text = "export function hello() { return 'hello, world'; }\n".repeat(200);
    let wasm: Vec<u8> = b"\0asm\x01\0\0\0"
        .iter()
        .copied()
        .chain((0..20_000u32).map(|i| (i % 7) as u8))
        .collect();
    std::fs::create_dir(root.join("snippets")).unwrap();
    std::fs::write(
        root.join("index.html"),
        "<!doctype html><p>hi</p>".repeat(40),
    )
    .unwrap();
    std::fs::write(root.join(JS), &text).unwrap();
    std::fs::write(root.join("snippets/inline.js"), &text).unwrap();
    std::fs::write(root.join(WASM), &wasm).unwrap();
    // Already compressed: not compressible by extension.
    std::fs::write(root.join("logo.png"), &wasm).unwrap();
    // Too small to gain: no variants, and stale ones removed.
    std::fs::write(root.join("tiny.txt"), "a").unwrap();
    std::fs::write(root.join("tiny.txt.br"), "stale").unwrap();
    std::fs::write(root.join("tiny.txt.gz"), "stale").unwrap();

    let done = grpc_runtime::precompress(root).expect("precompress");
    let names: Vec<_> = done
        .iter()
        .map(|f| {
            f.path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [JS, WASM, "index.html", "snippets/inline.js", "tiny.txt"],
        "{done:?}"
    );

    for file in &done[..4] {
        let raw = std::fs::read(&file.path).unwrap();
        assert_eq!(file.bytes, raw.len() as u64);
        let br_path = format!("{}.br", file.path.display());
        let gz_path = format!("{}.gz", file.path.display());
        let br = std::fs::read(&br_path).unwrap();
        let gz = std::fs::read(&gz_path).unwrap();
        assert_eq!(file.brotli, Some(br.len() as u64));
        assert_eq!(file.gzip, Some(gz.len() as u64));
        assert!(br.len() < raw.len() && gz.len() < raw.len(), "{file:?}");

        let mut unbrotli = Vec::new();
        brotli::BrotliDecompress(&mut br.as_slice(), &mut unbrotli).expect("valid brotli");
        assert_eq!(unbrotli, raw, "{br_path}");
        let mut ungzip = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut ungzip)
            .expect("valid gzip");
        assert_eq!(ungzip, raw, "{gz_path}");
    }
    assert_eq!(done[4].brotli, None);
    assert_eq!(done[4].gzip, None);
    for absent in ["tiny.txt.br", "tiny.txt.gz", "logo.png.br", "logo.png.gz"] {
        assert!(!root.join(absent).exists(), "{absent}");
    }

    // Run again: same result, nothing compressed twice.
    assert_eq!(grpc_runtime::precompress(root).expect("again"), done);
    assert!(!root.join(format!("{WASM}.br.br")).exists());
}
