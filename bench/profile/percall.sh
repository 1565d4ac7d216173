#!/usr/bin/env bash
# Per-call cost of a cached ListArticles call, split by layer, in
# instructions (callgrind): instruction counts hold on a loaded machine
# where wall times do not. See bench/profile/README.md.
#
#   bench/profile/percall.sh [--bin DIR] [--data DIR] [--out DIR] [-n CALLS]
#
# DIR of --bin holds article-server, tonic-floor and limit-server (default
# target/release); connect-rust-peer (`--servers connect-rust-peer`) is
# taken from --peers DIR (default target/peers/release, where
# `cargo xtask bench` builds it); --data is an article-bench work dir with articles.db,
# list_request.bin and limit/ (default target/bench, left by
# `article-bench --only server`). For each server and protocol (gRPC-web
# over HTTP/1.1, gRPC over h2c) it starts the server under callgrind,
# warms it up, zeroes the counters, makes CALLS identical calls with h2load
# (16 connections), dumps, and splits the dump with split.py into
# $out/<server>-<protocol>.txt; a summary table goes to $out/summary.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
root=$(cd "$here/../.." && pwd)
bin=$root/target/release
peers=$root/target/peers/release
data=$root/target/bench
out=$root/target/profile
calls=2000
warmup=300
servers="article-server tonic-floor limit-server"
while [ $# -gt 0 ]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --peers) peers=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -n) calls=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
for f in articles.db list_request.bin limit/grpc.body; do
  [ -e "$data/$f" ] || { echo "missing $data/$f: run article-bench --only server first" >&2; exit 1; }
done
command -v valgrind >/dev/null || { echo "valgrind missing: apt-get install -y valgrind" >&2; exit 1; }
command -v h2load >/dev/null || { echo "h2load missing: apt-get install -y nghttp2-client" >&2; exit 1; }
mkdir -p "$out"
scratch=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT

# load URL PROTOCOL N: N calls on 16 connections (fewer when N is small).
load() {
  local url=$1 protocol=$2 n=$3 c=16
  [ "$n" -lt "$c" ] && c=$n
  local args=(-n "$n" -c "$c" -m 1 -t 1 -d "$data/list_request.bin")
  if [ "$protocol" = web ]; then
    args+=(--h1 -H "content-type: application/grpc-web+proto" -H "x-grpc-web: 1")
  else
    args+=(-H "content-type: application/grpc" -H "te: trailers")
  fi
  local summary
  summary=$(h2load "${args[@]}" "$url/article.v1.ArticleService/ListArticles")
  if ! grep -q "succeeded, 0 failed" <<<"$summary" || ! grep -q "status codes: $n 2xx" <<<"$summary"; then
    echo "$summary" >&2
    echo "load failed" >&2
    return 1
  fi
}

summary=$out/summary.md
{
  echo "| server | protocol | instructions per call |"
  echo "|---|---|---:|"
} >"$summary"

for server in $servers; do
  for protocol in web grpc; do
    run=$scratch/$server-$protocol
    mkdir -p "$run"
    args=()
    case $server in
      article-server)
        cp "$data/articles.db" "$run/articles.db"
        args=(--listen 127.0.0.1:0 --database "sqlite://$run/articles.db" --token "bench=bench-token-0123456789")
        ;;
      *) args=(--listen 127.0.0.1:0 --responses "$data/limit") ;;
    esac
    exe=$bin/$server
    [ "$server" = connect-rust-peer ] && exe=$peers/$server
    : >"$run/stdout"
    valgrind --tool=callgrind --callgrind-out-file="$run/callgrind.out" \
      "$exe" "${args[@]}" >"$run/stdout" 2>"$run/stderr" &
    pid=$!
    # Valgrind starts slowly.
    wait_url "$pid" "$run" "$server" 60
    load "$url" "$protocol" "$warmup"
    callgrind_control -z "$pid" >/dev/null 2>&1
    # The request is acted on at the next basic block: the server is idle
    # in epoll_wait until a call wakes it, so one call carries it.
    load "$url" "$protocol" 1
    load "$url" "$protocol" "$calls"
    callgrind_control -d "$pid" >/dev/null 2>&1 &
    control=$!
    sleep 0.5
    load "$url" "$protocol" 1
    wait "$control"
    kill -TERM "$pid"
    wait "$pid" || true
    pid=
    dump=$out/$server-$protocol.callgrind
    cp "$(ls "$run"/callgrind.out.* | sort | head -1)" "$dump"
    # The dump holds the CALLS calls plus parts of the two single calls
    # that carried the zero and the dump requests.
    python3 "$here/split.py" "$dump" "$calls" >"$out/$server-$protocol.txt"
    total=$(sed -n 's/^total per call: //p' "$out/$server-$protocol.txt")
    echo "| $server | $protocol | $total |" >>"$summary"
    echo "$server $protocol: $total instructions per call" >&2
  done
done
cat "$summary"
