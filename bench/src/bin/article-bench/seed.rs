//! Seeding: a fresh SQLite database filled through the server's own
//! ImportArticles (a native tonic client), the whole data set exported for
//! the Python server, and the reference ListArticles answers captured for
//! the physical-limit server.

use std::path::Path;

use anyhow::{Context as _, bail};
use article_bench::{
    data,
    grpc::{self, RawResponse, Wire},
    process::Server,
};
use http::HeaderMap;
use prost::Message;
use proto::v1::{self as pb, article_service_client::ArticleServiceClient};

/// What the seeding step leaves behind for the runs.
pub struct Seeded {
    /// The encoded ListArticlesResponse every system must answer.
    pub reference: Vec<u8>,
    /// Articles in the answer (the page size).
    pub page_len: usize,
}

pub async fn seed(
    server: &Server,
    token: &str,
    articles: usize,
    dir: &Path,
) -> anyhow::Result<Seeded> {
    let url = format!("http://{}", server.addr);
    let mut client = ArticleServiceClient::connect(url).await?;
    let drafts = data::articles(articles);
    let mut request = tonic::Request::new(futures::stream::iter(drafts));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let imported = client.import_articles(request).await?.into_inner();
    if imported.created_count as usize != articles {
        bail!("imported {} of {articles} articles", imported.created_count);
    }

    // Everything, newest first, for the Python server's memory.
    let mut all = pb::ListArticlesResponse::default();
    let pages = articles.div_ceil(100) as i32;
    for page in 1..=pages {
        let response = client
            .list_articles(pb::ListArticlesRequest {
                page,
                page_size: 100,
                ..Default::default()
            })
            .await?
            .into_inner();
        all.total_count = response.total_count;
        all.articles.extend(response.articles);
    }
    if all.articles.len() != articles {
        bail!("exported {} of {articles} articles", all.articles.len());
    }
    std::fs::write(dir.join("articles.pb"), all.encode_to_vec())?;
    std::fs::write(dir.join("list_request.bin"), grpc::list_request_body())?;

    // The reference answers, byte for byte, for the limit server.
    let web = grpc::call(
        server.addr,
        Wire::GrpcWeb,
        grpc::LIST_PATH,
        grpc::list_request_body(),
    )
    .await?;
    let native = grpc::call(
        server.addr,
        Wire::Grpc,
        grpc::LIST_PATH,
        grpc::list_request_body(),
    )
    .await?;
    let (Some(0), Some(0)) = (web.grpc_status(), native.grpc_status()) else {
        bail!("the seeded server did not answer ListArticles with OK");
    };
    let messages = native.messages();
    let reference = messages
        .first()
        .context("no message in the answer")?
        .to_vec();
    if web.messages().first().map(|m| &m[..]) != Some(&reference[..]) {
        bail!("gRPC-web and gRPC answers differ");
    }
    let canned = dir.join("limit");
    std::fs::create_dir_all(&canned)?;
    write_headers(&canned.join("web.headers"), &web)?;
    std::fs::write(canned.join("web.body"), &web.body)?;
    write_headers(&canned.join("grpc.headers"), &native)?;
    std::fs::write(canned.join("grpc.body"), &native.body)?;
    std::fs::write(
        canned.join("grpc.trailers"),
        header_lines(native.trailers.as_ref().context("no gRPC trailers")?),
    )?;
    let page_len = pb::ListArticlesResponse::decode(&reference[..])?
        .articles
        .len();
    Ok(Seeded {
        reference,
        page_len,
    })
}

/// Headers to replay: all but those hyper computes per response.
fn write_headers(path: &Path, response: &RawResponse) -> anyhow::Result<()> {
    std::fs::write(path, header_lines(&response.headers))
        .with_context(|| format!("writing {}", path.display()))
}

fn header_lines(map: &HeaderMap) -> String {
    map.iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "date" | "content-length" | "transfer-encoding" | "connection"
            )
        })
        .map(|(k, v)| format!("{}: {}\n", k, v.to_str().unwrap_or_default()))
        .collect()
}
