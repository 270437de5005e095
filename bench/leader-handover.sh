#!/usr/bin/env bash
# Measures how long a 3-member cluster is without a leader after its leader
# gets SIGTERM: from the signal to the first /status of another member that
# reports role leader. Members run with the default timings on 127.0.0.1,
# with 2,000 messages stored first. Needs `npm run build`.
# Settings (environment): BASE_PORT, first of 8 ports [43000]; ROUNDS [3].
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
BASE_PORT=${BASE_PORT:-43000}
ROUNDS=${ROUNDS:-3}
cli="$repo/dist/src/cli/main.js"

now_ms() { date +%s%3N; }

# Prints the number (1-3) of the member whose /status reports role leader, skipping $1.
leader_other_than() {
  local i
  for i in 1 2 3; do
    [ "$i" = "$1" ] && continue
    if curl -s --max-time 0.5 "127.0.0.1:$((BASE_PORT + 4 + i))/status" | grep -q '"role":"leader"'; then
      echo "$i"
      return
    fi
  done
}

run_round() {
  local dir pids=() leader="" new="" started i
  dir=$(mktemp -d "${TMPDIR:-/tmp}/replog-handover.XXXXXX")
  local peers="n1=127.0.0.1:$((BASE_PORT + 1)),n2=127.0.0.1:$((BASE_PORT + 2)),n3=127.0.0.1:$((BASE_PORT + 3))"
  for i in 1 2 3; do
    node --single-threaded-gc "$cli" node --id "n$i" --data "$dir/n$i" --grpc "127.0.0.1:$((BASE_PORT + i))" \
      --http "127.0.0.1:$((BASE_PORT + 4 + i))" --peers "$peers" >"$dir/n$i.log" 2>&1 &
    pids+=("$!")
  done

  for _ in $(seq 1 300); do
    leader=$(leader_other_than 0)
    [ -n "$leader" ] && break
    sleep 0.1
  done
  if [ -z "$leader" ]; then
    echo "no leader within 30 s; logs in $dir" >&2
    kill -TERM "${pids[@]}" 2>/dev/null || true
    return 1
  fi

  node "$cli" send --target "127.0.0.1:$((BASE_PORT + 1)),127.0.0.1:$((BASE_PORT + 2)),127.0.0.1:$((BASE_PORT + 3))" \
    --count 2000 >/dev/null

  started=$(now_ms)
  kill -TERM "${pids[$((leader - 1))]}"
  while [ -z "$new" ] && [ $(($(now_ms) - started)) -lt 10000 ]; do
    new=$(leader_other_than "$leader")
    [ -z "$new" ] && sleep 0.01
  done

  local elapsed=$(($(now_ms) - started))
  if [ -n "$new" ]; then echo "leader n$leader got SIGTERM; n$new leads $elapsed ms later"
  else echo "leader n$leader got SIGTERM; no new leader within $elapsed ms"; fi

  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  rm -rf "$dir"
}

for _ in $(seq 1 "$ROUNDS"); do run_round; done
