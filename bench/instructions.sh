#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind: far steadier than
# time on this shared machine (about ±6% between runs of the same code), for
# comparing two versions of the fast path (run it in each). See
# docs/performance.md for what it over- and under-states.
#
#   bash bench/instructions.sh [seconds]        needs valgrind, wrk and nginx
#
# One listener (bench/targets/solo-listener.ts) runs under callgrind on core 0;
# an nginx upstream and wrk -t1 -c64 run on core 1. After a warm-up of
# WARM seconds (default 30: the JIT must settle, at valgrind's pace) the
# counters are zeroed, wrk runs for `seconds` (default 20), and the main
# thread's instructions are divided by the requests wrk completed.
set -euo pipefail
source "$(dirname "$0")/../.ci/node.sh"
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-20}"
warm="${WARM:-30}"
for tool in valgrind callgrind_control wrk nginx; do
  command -v "$tool" >/dev/null || { echo "$tool is needed: apt-get install valgrind wrk nginx-light" >&2; exit 1; }
done
work="$(mktemp -d)"
upstream_port=$((20000 + RANDOM % 10000))
listen_port=$((upstream_port + 1))
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $work/nginx/nginx.pid; error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy; fastcgi_temp_path $work/nginx/fcgi; uwsgi_temp_path $work/nginx/uwsgi; scgi_temp_path $work/nginx/scgi;
  server { listen 127.0.0.1:$upstream_port; location / { return 200 "hello from the upstream\n"; } } }
EOF
taskset -c 1 nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" & pids+=($!)

taskset -c 0 valgrind --tool=callgrind --separate-threads=yes --smc-check=all-non-file \
  --callgrind-out-file="$work/callgrind.%p" node "$root/bench/targets/solo-listener.ts" "$listen_port" "$upstream_port" \
  >"$work/listener.log" 2>&1 & listener=$!; pids+=($listener)

for _ in $(seq 1 600); do curl -s -o /dev/null -m 2 "http://127.0.0.1:$listen_port/" && break; sleep 0.5; done
taskset -c 1 wrk -t1 -c64 -d"${warm}s" "http://127.0.0.1:$listen_port/" >/dev/null
callgrind_control -z "$listener" >/dev/null 2>&1
requests=$(taskset -c 1 wrk -t1 -c64 -d"${seconds}s" "http://127.0.0.1:$listen_port/" | awk '/requests in/ {print $1}')
callgrind_control -d "$listener" >/dev/null 2>&1
sleep 2
# The dump after zeroing, main thread (the listener's event loop): callgrind.PID.1-01.
instructions=$(awk '/^summary:/ {print $2}' "$work/callgrind.$listener.1-01")
echo "requests: $requests"
echo "instructions (main thread): $instructions"
echo "instructions per request: $((instructions / requests))"
echo "profile: $work/callgrind.$listener.1-01 (callgrind_annotate; JIT frames are unnamed unless run with --perf-basic-prof)"
