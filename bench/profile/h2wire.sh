#!/usr/bin/env bash
# What a server sends on the wire for the benchmark's ListArticles call over
# h2c: nghttp's frame log (`nghttp -nv`) of one connection carrying 3 calls,
# so the connection's first call (SETTINGS, WINDOW_UPDATE, headers not yet
# in the HPACK table) and the steady ones can be told apart.
#
#   bench/profile/h2wire.sh SERVER EXE [--data DIR] > frames.txt
#
# SERVER is article-server (EXE gets a copy of DIR/articles.db) or any of
# the reference servers answering DIR/limit (connect-rust-peer,
# limit-server, tonic-floor). DIR defaults to target/bench, as percall.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
data=$here/../../target/bench
server=$1 exe=$2
shift 2
while [ $# -gt 0 ]; do
  case $1 in
    --data) data=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v nghttp >/dev/null || { echo "nghttp missing: apt-get install -y nghttp2-client" >&2; exit 1; }
run=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$run"
}
trap cleanup EXIT
if [ "$server" = article-server ]; then
  cp "$data/articles.db" "$run/"
  args=(--listen 127.0.0.1:0 --database "sqlite://$run/articles.db" --token bench=bench-token-0123456789)
else
  args=(--listen 127.0.0.1:0 --responses "$data/limit")
fi
"$exe" "${args[@]}" >"$run/stdout" 2>"$run/stderr" &
pid=$!
wait_url "$pid" "$run" "$server"
nghttp -nv -m 3 -H 'content-type: application/grpc' -H 'te: trailers' \
  -d "$data/list_request.bin" "$url/article.v1.ArticleService/ListArticles"
