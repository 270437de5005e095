#!/usr/bin/env bash
# Runs `replog bench` against a fresh 3-member replog cluster behind HAProxy on
# this machine, then stops everything. Every argument goes to `replog bench`,
# e.g.:
#   bench/replog-cluster-bench.sh --mode stream --streams 8 --window 512
#   bench/replog-cluster-bench.sh --concurrency 256
#   bench/replog-cluster-bench.sh --rate 1000 --concurrency 64
# The members' CPU per acknowledged message and their peak RSS are part of
# the report.
# Settings (environment): BASE_PORT, first of 8 ports [43000]; MEMBER_ARGS,
# extra `replog node` flags; MEMBER_NODE_FLAGS, extra `node` flags of the
# members after --single-threaded-gc, e.g. --cpu-prof or
# --no-single-threaded-gc; KEEP_WORKDIR=1 keeps data and logs.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
BASE_PORT=${BASE_PORT:-43000}
workdir=$(mktemp -d "${TMPDIR:-/tmp}/replog-bench.XXXXXX")
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${KEEP_WORKDIR:-}" = 1 ]; then echo "work directory: $workdir" >&2; else rm -rf "$workdir"; fi
}
trap cleanup EXIT

peers="n1=127.0.0.1:$((BASE_PORT + 1)),n2=127.0.0.1:$((BASE_PORT + 2)),n3=127.0.0.1:$((BASE_PORT + 3))"
members='['
for i in 1 2 3; do
  # shellcheck disable=SC2086 # both hold several flags
  node --single-threaded-gc ${MEMBER_NODE_FLAGS:-} dist/src/cli/main.js node --id "n$i" --data "$workdir/n$i" \
    --grpc "127.0.0.1:$((BASE_PORT + i))" --http "127.0.0.1:$((BASE_PORT + 4 + i))" \
    --peers "$peers" ${MEMBER_ARGS:-} >"$workdir/n$i.log" 2>&1 &
  pids+=("$!")
  members+="{\"id\":\"n$i\",\"grpc\":\"127.0.0.1:$((BASE_PORT + i))\",\"http\":\"127.0.0.1:$((BASE_PORT + 4 + i))\"},"
done
members="${members%,}]"
member_pids=$(IFS=,; echo "${pids[*]}")

node -e 'const { renderHaproxyConfig } = require("./dist/src/cli/haproxy-config");
  console.log(renderHaproxyConfig({ bindGrpc: process.argv[1], members: JSON.parse(process.argv[2]) }));' \
  "127.0.0.1:$BASE_PORT" "$members" >"$workdir/haproxy.cfg"
haproxy -f "$workdir/haproxy.cfg" -db >"$workdir/haproxy.log" 2>&1 &
pids+=("$!")

for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$((BASE_PORT + 5))/readyz" >/dev/null; then break; fi
  sleep 0.1
done

node dist/src/cli/main.js bench --target "127.0.0.1:$BASE_PORT" --pids "$member_pids" "$@"
