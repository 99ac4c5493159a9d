#!/usr/bin/env bash
# Instructions per proxied request in the gateway's own process, one command:
#   bash services/gateway/bench/instructions.sh [path/to/protostar]   (or PROTOSTAR_BIN=…)
#
# The gateway (`serve --target gateway`, limits in process, no token) runs under
# `valgrind --tool=callgrind` in front of a trivial upstream (an nginx answering "ok"); after
# a warm-up the counters are zeroed, wrk sends requests for 10 s, and the count of user-space
# instructions is divided by the requests answered. Unlike a rate on two shared cores, the
# count is the same from run to run within about a per cent, so it shows what a change to
# the request path saves. Prints the count and leaves callgrind's file for
# `callgrind_annotate --inclusive=yes <file>`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$ROOT"
scripts/stack.sh apt nginx wrk valgrind
# shellcheck source=scripts/bench.sh
. scripts/bench.sh
# A build given as the argument or as PROTOSTAR_BIN is measured instead of this tree's.
PROTOSTAR_BIN="${1:-${PROTOSTAR_BIN:-}}" protostar_bin

WORK="$(mktemp -d /var/tmp/protostar-gateway-instr.XXXXXX)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

UPSTREAM=127.0.0.1:19801
GATEWAY=127.0.0.1:19805
mkdir -p "$WORK/data"
nginx_ok_upstream "$WORK/up" "$UPSTREAM"
PIDS+=("$UPSTREAM_PID")
env -i PATH="$PATH" PROTOSTAR_DATA_DIR="$WORK/data" \
    PROTOSTAR_PUBLIC_ADDR=$GATEWAY PROTOSTAR_ADMIN_ADDR=127.0.0.1:19806 \
    PROTOSTAR_AUTH__JWKS_URL=http://127.0.0.1:1/jwks.json \
    PROTOSTAR_UPSTREAMS__USER="http://$UPSTREAM" \
    PROTOSTAR_GATEWAY__RATE_LIMIT__IP__PER_MINUTE=100000000 \
    PROTOSTAR_GATEWAY__RATE_LIMIT__IP__BURST=1000000 \
    valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
    "$BIN" serve --target gateway >"$WORK/gateway.out" 2>"$WORK/valgrind.err" &
GW=$!
PIDS+=($GW)
for _ in $(seq 200); do
    curl -fs -o /dev/null "http://$GATEWAY/api/users/me" && break
    sleep 0.5
done
URL="http://$GATEWAY/api/users/me"
wrk -t1 -c4 -d3s "$URL" >/dev/null
callgrind_control -z "$GW" >/dev/null
REQUESTS=$(wrk -t1 -c4 -d10s "$URL" | awk '/requests in/ { print $1 }')
callgrind_control -d "$GW" >/dev/null
TOTAL=$(callgrind_annotate "$WORK/callgrind.out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
echo "requests $REQUESTS, instructions per request $((TOTAL / REQUESTS)) (callgrind file: $WORK/callgrind.out.1)"
