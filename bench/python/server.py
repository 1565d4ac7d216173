"""The seeds' stack: ArticleService.ListArticles in Python grpc.aio.

The same articles as the Rust server, held in memory (loaded from an encoded
ListArticlesResponse that article-bench exports from the seeded database),
the same semantics for page, page_size, query and tag, native gRPC over
h2c. Prints `listening on http://HOST:PORT` once it accepts calls.

Usage: server.py --data articles.pb --stubs DIR [--listen 127.0.0.1:0]
(DIR holds the modules grpc_tools.protoc generated from
proto/article/v1/article.proto.)
"""

import argparse
import asyncio
import sys

import grpc
from grpc import aio


def load(stubs):
    sys.path.insert(0, stubs)
    from article.v1 import article_pb2, article_pb2_grpc  # noqa: E402

    return article_pb2, article_pb2_grpc


async def serve(args):
    pb, pb_grpc = load(args.stubs)

    with open(args.data, "rb") as f:
        everything = pb.ListArticlesResponse.FromString(f.read())
    # Newest first, as the Rust store orders them.
    articles = sorted(
        everything.articles,
        key=lambda a: (a.create_time.seconds, a.create_time.nanos, a.id),
        reverse=True,
    )
    # Lower-cased "title \x1f content", as the Rust store keeps it.
    search = [(a.title + "\x1f" + a.content).lower() for a in articles]

    class ArticleService(pb_grpc.ArticleServiceServicer):
        async def ListArticles(self, request, context):
            page = max(request.page, 1)
            size = request.page_size or 20
            if size < 0:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "page_size must not be negative"
                )
            size = min(size, 100)
            needle = request.query.lower()
            tag = request.tag
            if not needle and not tag:
                matches = articles
            else:
                matches = [
                    a
                    for a, text in zip(articles, search)
                    if (not needle or needle in text) and (not tag or tag in a.tags)
                ]
            start = (page - 1) * size
            return pb.ListArticlesResponse(
                articles=matches[start : start + size], total_count=len(matches)
            )

    server = aio.server()
    pb_grpc.add_ArticleServiceServicer_to_server(ArticleService(), server)
    port = server.add_insecure_port(args.listen)
    await server.start()
    host = args.listen.rsplit(":", 1)[0]
    print(f"listening on http://{host}:{port}", flush=True)
    await server.wait_for_termination()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--listen", default="127.0.0.1:0")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
