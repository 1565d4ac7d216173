# Sourced by the bench/profile scripts.

# wait_url PID RUN NAME [SECONDS]: waits until the server PID has printed
# its `listening on http://…` line to RUN/stdout and sets `url` to it;
# exits with the server's stderr if it dies, or after SECONDS (30).
wait_url() {
  local pid=$1 run=$2 name=$3 seconds=${4:-30}
  url=
  for _ in $(seq $((seconds * 10))); do
    url=$(sed -n 's/^listening on \(http:[^ ]*\).*/\1/p' "$run/stdout" | head -1)
    [ -n "$url" ] && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$run/stderr" >&2; exit 1; }
    sleep 0.1
  done
  echo "$name did not start" >&2
  exit 1
}
