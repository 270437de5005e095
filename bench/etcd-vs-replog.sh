#!/usr/bin/env bash
# Side-by-side write benchmark of etcd 3.4 and replog on this machine.
#
# Each system runs as 3 members on 127.0.0.1 behind HAProxy, with its data in a
# temporary directory, one system at a time. Both get the same load: the same
# load generator (src/client/load), concurrency, rate, value size and
# durations. etcd gets KV/Put of unique keys through HAProxy in TCP mode. That
# mode picks a member per connection, so the etcd client opens CONNECTIONS
# connections. replog gets Ingest.Append of unique valuesets through HAProxy in
# HTTP mode, which picks a member per call. The report includes the members'
# CPU per acknowledged write.
#
# Needs: `npm run build`, haproxy, and etcd (installed with apt-get if missing).
# Settings (environment, defaults in brackets): CONCURRENCY [64], RATE in
# writes/s, 0 = as fast as replies allow [0], WARMUP_S [20], DURATION_S [10],
# VALUE_BYTES [100], VALUE_ORDER, sequential or random [sequential], CONNECTIONS [3], BASE_PORT, first of 40 ports [42000],
# KEEP_WORKDIR=1 keeps data, logs and JSON reports, SYSTEMS=etcd or
# SYSTEMS=replog runs one system only ["etcd replog"], MEMBER_NODE_FLAGS, extra
# node flags for each replog member after --single-threaded-gc, such as
# "--cpu-prof --cpu-prof-dir=DIR" or "--no-single-threaded-gc" [],
# ROUNDS, runs of each system, alternating which goes first [1]. With more than
# one round, the report ends with the median of each figure and of the ratios
# within each round. A ratio within a round cancels a drift of the machine's speed.
#
# The warm-up is long because V8 compiles replog's hot code during the first
# seconds of load: 7 to 15 s into a run at 256 in flight, its compilers still
# had 8.5% of the members' CPU samples. A short warm-up measures start-up as
# well, and WARMUP_S=2 shows it (BENCHMARKS.md has both).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

CONCURRENCY=${CONCURRENCY:-64}
RATE=${RATE:-0}
WARMUP_S=${WARMUP_S:-20}
DURATION_S=${DURATION_S:-10}
VALUE_BYTES=${VALUE_BYTES:-100}
VALUE_ORDER=${VALUE_ORDER:-sequential}
CONNECTIONS=${CONNECTIONS:-3}
BASE_PORT=${BASE_PORT:-42000}
SYSTEMS=${SYSTEMS:-etcd replog}
MEMBER_NODE_FLAGS=${MEMBER_NODE_FLAGS:-}
ROUNDS=${ROUNDS:-1}
# Time a cluster gets to elect a leader and serve, and a process to exit on SIGTERM.
READY_TIMEOUT_S=30
STOP_TIMEOUT_S=15

workdir=$(mktemp -d "${TMPDIR:-/tmp}/replog-vs-etcd.XXXXXX")
started_pids=()

log() { printf '%s\n' "$*" >&2; }

# Stop every process this script started: SIGTERM, then SIGKILL after STOP_TIMEOUT_S.
stop_started() {
  local pid waited
  for pid in "${started_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${started_pids[@]}"; do
    waited=0
    while kill -0 "$pid" 2>/dev/null && ((waited < STOP_TIMEOUT_S * 10)); do
      sleep 0.1
      waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "process $pid did not exit within ${STOP_TIMEOUT_S} s of SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  started_pids=()
}

cleanup() {
  local status=$?
  stop_started
  if [[ "${KEEP_WORKDIR:-0}" == 1 ]]; then
    log "kept data, logs and reports in $workdir"
  else
    rm -rf "$workdir"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Start "$@" in the background with output to log file $1; its pid goes to started_pids.
start_logged() {
  local logfile=$1
  shift
  "$@" >"$logfile" 2>&1 &
  started_pids+=("$!")
}

require_free_port() {
  if (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    log "port $1 on 127.0.0.1 is in use; choose another BASE_PORT"
    exit 1
  fi
}

# Poll command "$@" every 0.2 s until it succeeds or READY_TIMEOUT_S passes.
wait_until() {
  local what=$1 deadline=$((SECONDS + READY_TIMEOUT_S))
  shift
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "$what not ready within ${READY_TIMEOUT_S} s; logs are in $workdir (set KEEP_WORKDIR=1 to keep them)"
      exit 1
    fi
    sleep 0.2
  done
}

http_ok() {
  node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$1"
}

ensure_tools() {
  if [[ ! -f dist/src/cli/main.js || ! -f dist/bench/etcd-load.js ]]; then
    log "dist/ is missing or incomplete: run npm run build first"
    exit 1
  fi
  command -v haproxy >/dev/null || { log "haproxy not found: apt-get install -y haproxy"; exit 1; }
  if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    log "etcd not found; installing etcd-server and etcd-client with apt-get"
    apt-get install -y etcd-server etcd-client >&2
  fi
}

# Removes a finished run's data unless KEEP_WORKDIR=1, because the rounds of a long run add up.
remove_data() {
  if [[ "${KEEP_WORKDIR:-0}" != 1 ]]; then rm -rf "$1"; fi
}

comma_join() {
  local IFS=,
  printf '%s' "$*"
}

# Load settings shared by both runs.
load_flags=(--concurrency "$CONCURRENCY" --rate "$RATE" --warmup-s "$WARMUP_S"
  --duration-s "$DURATION_S" --value-bytes "$VALUE_BYTES" --value-order "$VALUE_ORDER" --json)

run_etcd() {
  local lb=$BASE_PORT i cluster="" endpoints="" pids=()
  for i in 1 2 3; do
    cluster+="${cluster:+,}e$i=http://127.0.0.1:$((BASE_PORT + 10 + i))"
    endpoints+="${endpoints:+,}127.0.0.1:$((BASE_PORT + i))"
  done
  for i in 1 2 3; do
    local client_url=http://127.0.0.1:$((BASE_PORT + i)) peer_url=http://127.0.0.1:$((BASE_PORT + 10 + i))
    start_logged "$workdir/etcd-$round-e$i.log" etcd --name "e$i" --data-dir "$workdir/etcd-$round/e$i" \
      --listen-client-urls "$client_url" --advertise-client-urls "$client_url" \
      --listen-peer-urls "$peer_url" --initial-advertise-peer-urls "$peer_url" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token replog-bench \
      --logger zap --log-outputs stderr --log-level warn
    pids+=("$!")
  done
  {
    printf 'global\n    maxconn 4096\n\ndefaults\n    mode tcp\n    timeout connect 2s\n'
    printf '    timeout client 1h\n    timeout server 1h\n\nfrontend etcd_grpc\n'
    printf '    bind 127.0.0.1:%s\n    default_backend etcd_members\n\n' "$lb"
    printf 'backend etcd_members\n    balance roundrobin\n'
    for i in 1 2 3; do printf '    server e%s 127.0.0.1:%s check inter 1s\n' "$i" $((BASE_PORT + i)); done
  } >"$workdir/haproxy-etcd.cfg"
  start_logged "$workdir/haproxy-etcd-$round.log" haproxy -f "$workdir/haproxy-etcd.cfg"
  wait_until "etcd cluster" env ETCDCTL_API=3 etcdctl --endpoints "$endpoints" endpoint health
  log "etcd: 3 members ready (pids ${pids[*]}); measuring for ${DURATION_S} s after ${WARMUP_S} s warm-up"
  node dist/bench/etcd-load.js --target "127.0.0.1:$lb" --connections "$CONNECTIONS" \
    "${load_flags[@]}" --pids "$(comma_join "${pids[@]}")" >"$workdir/etcd-$round.json"
  stop_started
  remove_data "$workdir/etcd-$round"
}

run_replog() {
  local lb=$((BASE_PORT + 20)) i peers="" members_json="" pids=()
  for i in 1 2 3; do
    peers+="${peers:+,}n$i=127.0.0.1:$((BASE_PORT + 20 + i))"
    members_json+="${members_json:+,}{\"id\":\"n$i\",\"grpc\":\"127.0.0.1:$((BASE_PORT + 20 + i))\",\"http\":\"127.0.0.1:$((BASE_PORT + 30 + i))\"}"
  done
  for i in 1 2 3; do
    # shellcheck disable=SC2086 # MEMBER_NODE_FLAGS holds several flags
    start_logged "$workdir/replog-$round-n$i.log" node --single-threaded-gc $MEMBER_NODE_FLAGS dist/src/cli/main.js node --id "n$i" \
      --data "$workdir/replog-$round/n$i" --grpc "127.0.0.1:$((BASE_PORT + 20 + i))" \
      --http "127.0.0.1:$((BASE_PORT + 30 + i))" --peers "$peers"
    pids+=("$!")
  done
  node -e 'const { renderHaproxyConfig } = require("./dist/src/cli/haproxy-config.js");
    const [bindGrpc, members] = process.argv.slice(1);
    process.stdout.write(renderHaproxyConfig({ bindGrpc, members: JSON.parse(members) }));' \
    "127.0.0.1:$lb" "[$members_json]" >"$workdir/haproxy-replog.cfg"
  start_logged "$workdir/haproxy-replog-$round.log" haproxy -f "$workdir/haproxy-replog.cfg"
  for i in 1 2 3; do
    wait_until "replog member n$i" http_ok "http://127.0.0.1:$((BASE_PORT + 30 + i))/readyz"
  done
  log "replog: 3 members ready (pids ${pids[*]}); measuring for ${DURATION_S} s after ${WARMUP_S} s warm-up"
  node dist/src/cli/main.js bench --target "127.0.0.1:$lb" --mode unary \
    "${load_flags[@]}" --pids "$(comma_join "${pids[@]}")" >"$workdir/replog-$round.json"
  stop_started
  remove_data "$workdir/replog-$round"
}

main() {
  if ! [[ "$ROUNDS" =~ ^[1-9][0-9]{0,2}$ ]]; then
    log "invalid ROUNDS \"$ROUNDS\": expected an integer from 1 to 999"
    exit 2
  fi
  ensure_tools
  local port
  for port in $(seq "$BASE_PORT" $((BASE_PORT + 39))); do require_free_port "$port"; done
  log "work directory: $workdir"
  local system systems round
  for system in $SYSTEMS; do
    case "$system" in
      etcd | replog) ;;
      *) log "unknown system \"$system\" in SYSTEMS: expected etcd and/or replog"; exit 2 ;;
    esac
  done
  # Even rounds run the systems in reverse order, so neither always goes first.
  for round in $(seq 1 "$ROUNDS"); do
    systems=$SYSTEMS
    if ((round % 2 == 0)); then systems=$(printf '%s\n' $SYSTEMS | tac | tr '\n' ' '); fi
    for system in $systems; do
      if ((ROUNDS > 1)); then log "round $round of $ROUNDS: $system"; fi
      "run_$system"
    done
  done
  printf 'machine: %s, %s CPUs; node %s; %s\n' \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" "$(nproc)" \
    "$(node --version)" "$(etcd --version | head -n1)"
  local reports=()
  for round in $(seq 1 "$ROUNDS"); do
    for system in replog etcd; do
      [[ -f "$workdir/$system-$round.json" ]] && reports+=("$workdir/$system-$round.json")
    done
  done
  if [[ -f "$workdir/replog-1.json" && -f "$workdir/etcd-1.json" ]]; then
    node dist/bench/compare-reports.js "${reports[@]}"
  else
    node -e 'const { formatLoadReport } = require("./dist/src/client/load/load-report.js");
      for (const file of process.argv.slice(1)) {
        process.stdout.write(formatLoadReport(JSON.parse(require("fs").readFileSync(file, "utf8"))));
      }' "${reports[@]}"
  fi
}

main "$@"
