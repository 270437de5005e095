#!/usr/bin/env bash
# Client latency and errors while a follower catches up by snapshot under load. Three
# members run on 127.0.0.1 with `--snapshot-threshold 200`. One follower is
# killed with kill -9, and PRELOAD_S seconds of AppendStream with VALUE_BYTES
# values grow the store. Then the follower is restarted while `replog bench`
# offers 1,000 unary appends/s to all three members for 20 s. The bench
# reports acknowledged appends, errors by code and latency. Needs `npm run build`.
# Settings (environment): BASE_PORT, first of 8 ports [43300]; PRELOAD_S [15];
# VALUE_BYTES [5000].
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
BASE_PORT=${BASE_PORT:-43300}
PRELOAD_S=${PRELOAD_S:-15}
VALUE_BYTES=${VALUE_BYTES:-5000}
cli="$repo/dist/src/cli/main.js"
dir=$(mktemp -d "${TMPDIR:-/tmp}/replog-catch-up.XXXXXX")
peers="n1=127.0.0.1:$((BASE_PORT + 1)),n2=127.0.0.1:$((BASE_PORT + 2)),n3=127.0.0.1:$((BASE_PORT + 3))"
targets="127.0.0.1:$((BASE_PORT + 1)),127.0.0.1:$((BASE_PORT + 2)),127.0.0.1:$((BASE_PORT + 3))"

start_member() {
  node --single-threaded-gc "$cli" node --id "n$1" --data "$dir/n$1" --grpc "127.0.0.1:$((BASE_PORT + $1))" \
    --http "127.0.0.1:$((BASE_PORT + 4 + $1))" --peers "$peers" --snapshot-threshold 200 >>"$dir/n$1.log" 2>&1 &
  echo "$!" >"$dir/n$1.pid"
}

cleanup() {
  local i
  for i in 1 2 3; do kill -TERM "$(cat "$dir/n$i.pid" 2>/dev/null)" 2>/dev/null || true; done
  sleep 2
  rm -rf "$dir"
}
trap cleanup EXIT

for i in 1 2 3; do start_member "$i"; done
leader=0
for _ in $(seq 1 100); do
  for i in 1 2 3; do
    if curl -s "127.0.0.1:$((BASE_PORT + 4 + i))/status" | grep -q '"role":"leader"'; then leader=$i; fi
  done
  [ "$leader" != 0 ] && break
  sleep 0.2
done
[ "$leader" = 0 ] && { echo "no leader within 20 s" >&2; exit 1; }
follower=$((leader % 3 + 1))
echo "leader n$leader; n$follower is killed and restarted"
kill -9 "$(cat "$dir/n$follower.pid")"
node "$cli" bench --target "$targets" --mode stream --streams 4 --window 128 --value-bytes "$VALUE_BYTES" \
  --warmup-s 0 --duration-s "$PRELOAD_S" | grep acknowledged
echo "state database of the leader: $(du -sh "$dir/n$leader/state" | cut -f1)"
(sleep 2 && start_member "$follower") &
restart=$!
node "$cli" bench --target "$targets" --rate 1000 --concurrency 64 --warmup-s 0 --duration-s 20 | grep -E "acknowledged|errors|latency"
wait "$restart"
