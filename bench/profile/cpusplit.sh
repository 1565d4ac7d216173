#!/usr/bin/env bash
# Server CPU per cached ListArticles call, split into user space and the
# kernel, from the server's own counters (/proc/PID/stat, utime and stime)
# over N calls of h2load (16 connections, one call in flight each): the
# kernel's share (TCP over loopback, wake-ups) is what every server pays
# alike, and what a per-core ratio cannot get around. See README.md.
#
#   bench/profile/cpusplit.sh [--bin DIR] [--peers DIR] [--data DIR] [-n CALLS]
#                             [--rounds R] [--servers "S..."]
#
# Servers and data as percall.sh takes them (default: limit-server,
# connect-rust-peer and article-server; target/release, target/peers/release,
# target/bench). Each server runs pinned to CPU 1 and h2load to CPU 0; rounds
# alternate the servers. Prints one line per server, protocol and round:
# req/s, user and kernel microseconds per call.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
root=$(cd "$here/../.." && pwd)
bin=$root/target/release
peers=$root/target/peers/release
data=$root/target/bench
calls=300000
rounds=3
servers="limit-server connect-rust-peer article-server"
while [ $# -gt 0 ]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --peers) peers=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    -n) calls=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
for f in articles.db list_request.bin limit/grpc.body; do
  [ -e "$data/$f" ] || { echo "missing $data/$f: run article-bench --only server first" >&2; exit 1; }
done
command -v h2load >/dev/null || { echo "h2load missing: apt-get install -y nghttp2-client" >&2; exit 1; }
ticks=$(getconf CLK_TCK)
scratch=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT

# cpu PID: user and system ticks of the process, all threads.
cpu() { awk '{print $14, $15}' "/proc/$1/stat"; }

for round in $(seq "$rounds"); do
  for protocol in web grpc; do
    for server in $servers; do
      run=$scratch/$server-$protocol-$round
      mkdir -p "$run"
      case $server in
        article-server)
          # The database with its log, as the benchmark left it.
          cp "$data"/articles.db* "$run/"
          args=(--listen 127.0.0.1:0 --database "sqlite://$run/articles.db" --token "bench=bench-token-0123456789")
          ;;
        *) args=(--listen 127.0.0.1:0 --responses "$data/limit") ;;
      esac
      exe=$bin/$server
      [ "$server" = connect-rust-peer ] && exe=$peers/$server
      taskset -c 1 "$exe" "${args[@]}" >"$run/stdout" 2>"$run/stderr" &
      pid=$!
      wait_url "$pid" "$run" "$server"
      h=(-c 16 -m 1 -t 1 -d "$data/list_request.bin")
      if [ "$protocol" = web ]; then
        h+=(--h1 -H "content-type: application/grpc-web+proto" -H "x-grpc-web: 1")
      else
        h+=(-H "content-type: application/grpc" -H "te: trailers")
      fi
      target=$url/article.v1.ArticleService/ListArticles
      taskset -c 0 h2load -n 20000 "${h[@]}" "$target" >/dev/null
      read -r u0 s0 < <(cpu "$pid")
      out=$(taskset -c 0 h2load -n "$calls" "${h[@]}" "$target")
      read -r u1 s1 < <(cpu "$pid")
      grep -q "succeeded, 0 failed" <<<"$out" || { echo "$out" >&2; exit 1; }
      rate=$(grep -o '[0-9.]* req/s' <<<"$out" | head -1)
      awk -v s="$server" -v p="$protocol" -v r="$round" -v rate="$rate" \
        -v u=$((u1 - u0)) -v k=$((s1 - s0)) -v n="$calls" -v t="$ticks" \
        'BEGIN { printf "%-18s %-4s round %s: %s, user %.2f us/call, kernel %.2f us/call\n", s, p, r, rate, u / t / n * 1e6, k / t / n * 1e6 }'
      kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
    done
  done
done
