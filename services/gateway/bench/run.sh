#!/usr/bin/env bash
# Gateway benchmark, one command:   bash services/gateway/bench/run.sh
#
# The same trivial upstream (an nginx answering "ok") is reached three ways, in the same run:
#   direct   wrk → upstream                                   (the floor)
#   nginx    wrk → nginx proxy_pass (keepalive pool) → upstream, no auth, no limits
#   gateway  wrk → `protostar serve --target gateway` → upstream, with a real access token
#            checked on every request (EdDSA, keys from the auth target's JWKS) and both
#            rate limits (address and subject) checked on every request, set high enough
#            that none refuses; once with Redis holding the counters, once in process.
# The token comes from a real `--target auth` (POST /api/auth/guest) over the stack's
# PostgreSQL. Each row is the median of ROUNDS interleaved rounds of wrk (THREADS threads,
# CONNS connections, DURATION each, after a warm-up). Also: the gateway's RSS idle and the
# highest RSS seen under load, and the CPU time each proxy (and the Redis server) spent per
# request, which the shared machine's noise moves far less than the rates. Prints a Markdown
# table.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$ROOT"
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-32}"
DURATION="${DURATION:-8s}"
WARMUP="${WARMUP:-3s}"

scripts/stack.sh apt nginx wrk

# shellcheck source=scripts/bench.sh
. scripts/bench.sh
# PROTOSTAR_BIN: measure that build instead (to compare two commits in one sitting).
protostar_bin

# The stack runs PostgreSQL as `nobody`, which cannot enter a private /tmp folder.
WORK="$(mktemp -d /var/tmp/protostar-gateway-bench.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    scripts/stack.sh stop --dir "$WORK/stack" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

scripts/stack.sh start --dir "$WORK/stack" postgres redis >/dev/null
# shellcheck disable=SC1091
. "$WORK/stack/env"

UPSTREAM=127.0.0.1:19601
NGINX=127.0.0.1:19602
AUTH=127.0.0.1:19603
AUTH_ADMIN=127.0.0.1:19604
GW_REDIS=127.0.0.1:19605
GW_LOCAL=127.0.0.1:19607

mkdir -p "$WORK/nginx-proxy"
cat >"$WORK/nginx-proxy/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $WORK/nginx-proxy/nginx.pid;
error_log $WORK/nginx-proxy/error.log warn;
events { worker_connections 4096; }
http {
    # Logged like the gateway logs: one line per request.
    access_log $WORK/nginx-proxy/access.log;
    keepalive_requests 1000000;
    upstream app { server $UPSTREAM; keepalive 64; }
    server {
        listen $NGINX;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
EOF
nginx_ok_upstream "$WORK/nginx-up" "$UPSTREAM"
PIDS+=("$UPSTREAM_PID")
nginx -p "$WORK/nginx-proxy" -c "$WORK/nginx-proxy/nginx.conf" &
NGINX_PROXY_PID=$!
PIDS+=($!)

# `exec`: the process that answers is the one whose pid we keep (for its RSS).
common_env() {
    exec env -i PATH="$PATH" \
        PROTOSTAR_DATA_DIR="$WORK/data" \
        PROTOSTAR_DATABASE__URL="$PROTOSTAR_TEST_DATABASE_URL" \
        "$@"
}

common_env PROTOSTAR_PUBLIC_ADDR=$AUTH PROTOSTAR_ADMIN_ADDR=$AUTH_ADMIN \
    "$BIN" serve --target auth >"$WORK/auth.log" 2>&1 &
PIDS+=($!)

gateway() { # public-addr admin-addr [extra env...]
    local public=$1 admin=$2
    shift 2
    common_env PROTOSTAR_PUBLIC_ADDR="$public" PROTOSTAR_ADMIN_ADDR="$admin" \
        PROTOSTAR_AUTH__JWKS_URL="http://$AUTH/.well-known/jwks.json" \
        PROTOSTAR_UPSTREAMS__USER="http://$UPSTREAM" \
        PROTOSTAR_GATEWAY__RATE_LIMIT__IP__PER_MINUTE=100000000 \
        PROTOSTAR_GATEWAY__RATE_LIMIT__IP__BURST=1000000 \
        PROTOSTAR_GATEWAY__RATE_LIMIT__SUBJECT__PER_MINUTE=100000000 \
        PROTOSTAR_GATEWAY__RATE_LIMIT__SUBJECT__BURST=1000000 \
        "$@" "$BIN" serve --target gateway >/dev/null 2>"$WORK/gateway-$public.err" &
    PIDS+=($!)
    echo $!
}
GW_REDIS_PID=$(gateway $GW_REDIS 127.0.0.1:19606 PROTOSTAR_REDIS__URL="$PROTOSTAR_TEST_REDIS_URL")
GW_LOCAL_PID=$(gateway $GW_LOCAL 127.0.0.1:19608)
PIDS+=("$GW_REDIS_PID" "$GW_LOCAL_PID")

wait_for() { # url
    for _ in $(seq 1 200); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "never answered: $1" >&2
    exit 1
}
wait_for "http://$UPSTREAM/"
wait_for "http://$NGINX/"
wait_for "http://$AUTH/readyz"
wait_for "http://$GW_REDIS/healthz"
wait_for "http://$GW_LOCAL/healthz"

TOKEN="$(curl -fsS -X POST "http://$AUTH/api/auth/guest" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')"
# Each gateway must accept the token and reach the upstream before we measure.
for gw in $GW_REDIS $GW_LOCAL; do
    body="$(curl -fsS -H "Authorization: Bearer $TOKEN" "http://$gw/api/users/me")"
    [ "$body" = "ok" ] || { echo "gateway $gw answered: $body" >&2; exit 1; }
done
# The Redis gateway must be using Redis, not its fallback.
for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:19606/metrics" | grep -q "^protostar_gateway_rate_limit_redis_connected 1" && break
    sleep 0.1
done

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
IDLE_RSS_REDIS=$(rss_kb "$GW_REDIS_PID")
IDLE_RSS_LOCAL=$(rss_kb "$GW_LOCAL_PID")
PEAK_RSS_REDIS=$IDLE_RSS_REDIS
PEAK_RSS_LOCAL=$IDLE_RSS_LOCAL

# wrk's summary → "req/s p50_ms p99_ms"
measure() { # url [header]
    local out
    if [ $# -gt 1 ]; then
        out="$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -H "$2" "$1")"
    else
        out="$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$1")"
    fi
    if echo "$out" | grep -q "Non-2xx"; then
        echo "non-2xx answers from $1:" >&2
        echo "$out" >&2
        exit 1
    fi
    echo "$out" | python3 -c '
import re, sys
text = sys.stdin.read()
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", text).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", text).group(1))
print(f"{rps:.0f} {p50:.3f} {p99:.3f}")
'
}

sample_rss() { # pid var-name, while wrk runs
    local pid=$1 peak=0 r
    for _ in $(seq 1 40); do
        r=$(rss_kb "$pid" 2>/dev/null || echo 0)
        [ "$r" -gt "$peak" ] && peak=$r
        sleep 0.2
    done
    echo "$peak"
}

AUTH_H="Authorization: Bearer $TOKEN"
URL_PATH=/api/users/me
for url in "http://$UPSTREAM$URL_PATH" "http://$NGINX$URL_PATH"; do
    wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" "$url" >/dev/null
done
for gw in $GW_REDIS $GW_LOCAL; do
    wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" -H "$AUTH_H" "http://$gw$URL_PATH" >/dev/null
done

# CPU time (user + system, clock ticks) of the given processes; the shared machine's noise moves
# a proxy's CPU per request far less than its rate.
ticks() { for p in "$@"; do awk '{ print $14 + $15 }' "/proc/$p/stat"; done | awk '{ t += $1 } END { print t }'; }
NGINX_WORKERS=$(pgrep -P "$NGINX_PROXY_PID" | tr '\n' ' ')
REDIS_PID=$(cat "$WORK/stack/redis/pid")
SECS=${DURATION%s}
# measure_cpu key url header pids...: one measurement, plus the CPU µs per request of pids
measure_cpu() {
    local key=$1 url=$2 header=$3 c0 c1 out
    shift 3
    c0=$(ticks "$@")
    if [ -n "$header" ]; then out=$(measure "$url" "$header"); else out=$(measure "$url"); fi
    c1=$(ticks "$@")
    RESULTS[$key]+="$out"$'\n'
    cpu=$(awk -v t=$((c1 - c0)) -v k="$(getconf CLK_TCK)" -v r="${out%% *}" -v s="$SECS" \
        'BEGIN { printf "%.1f", t / k * 1e6 / (r * s) }')
    CPU[$key]+="$cpu "
    echo "$key: $out (req/s p50 p99), $cpu µs CPU a request" >&2
}

declare -A RESULTS CPU
for round in $(seq 1 "$ROUNDS"); do
    RESULTS[direct]+="$(measure "http://$UPSTREAM$URL_PATH")"$'\n'
    # shellcheck disable=SC2086
    measure_cpu nginx "http://$NGINX$URL_PATH" "" $NGINX_WORKERS
    sample_rss "$GW_REDIS_PID" >"$WORK/peak-redis-$round" &
    RSS_SAMPLER=$!
    r0=$(ticks "$REDIS_PID")
    measure_cpu redis "http://$GW_REDIS$URL_PATH" "$AUTH_H" "$GW_REDIS_PID"
    r1=$(ticks "$REDIS_PID")
    # Redis's own CPU per request of that measurement: the shared limiter's cost.
    rps=$(echo -n "${RESULTS[redis]}" | tail -1 | cut -d' ' -f1)
    CPU[redis-server]+="$(awk -v t=$((r1 - r0)) -v k="$(getconf CLK_TCK)" -v r="$rps" -v s="$SECS" \
        'BEGIN { printf "%.1f", t / k * 1e6 / (r * s) }') "
    wait $RSS_SAMPLER || true
    sample_rss "$GW_LOCAL_PID" >"$WORK/peak-local-$round" &
    RSS_SAMPLER=$!
    measure_cpu local "http://$GW_LOCAL$URL_PATH" "$AUTH_H" "$GW_LOCAL_PID"
    wait $RSS_SAMPLER || true
    echo "round $round of $ROUNDS done" >&2
done
for f in "$WORK"/peak-redis-*; do [ "$(cat "$f")" -gt "$PEAK_RSS_REDIS" ] && PEAK_RSS_REDIS=$(cat "$f"); done
for f in "$WORK"/peak-local-*; do [ "$(cat "$f")" -gt "$PEAK_RSS_LOCAL" ] && PEAK_RSS_LOCAL=$(cat "$f"); done

median() { # column (1 rps, 2 p50, 3 p99) of the rows given on stdin
    awk -v c="$1" '{print $c}' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
row() { # label key
    local rows="${RESULTS[$2]}"
    local rps p50 p99
    rps=$(echo -n "$rows" | median 1)
    p50=$(echo -n "$rows" | median 2)
    p99=$(echo -n "$rows" | median 3)
    local nginx_rps
    nginx_rps=$(echo -n "${RESULTS[nginx]}" | median 1)
    local direct_p99
    direct_p99=$(echo -n "${RESULTS[direct]}" | median 3)
    python3 -c "print(f'| $1 | {float($rps):,.0f} | {float($rps)/float($nginx_rps):.2f}x | $p50 | $p99 | {float($p99)-float($direct_p99):+.3f} |')"
}

echo
echo "wrk -t$THREADS -c$CONNS -d$DURATION, median of $ROUNDS interleaved rounds; $(nproc) cores shared by wrk, proxies and upstream"
echo
echo "| path | req/s | vs nginx | p50 ms | p99 ms | p99 added over direct, ms |"
echo "|---|---|---|---|---|---|"
row "direct to the upstream" direct
row "nginx proxy_pass (no auth, no limits)" nginx
row "gateway: token + limits in Redis" redis
row "gateway: token + limits in process" local
cpu_median() { echo "${CPU[$1]:-}" | tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "n/a" }'; }
echo
echo "CPU per request, µs (user + system, median of the rounds): nginx workers $(cpu_median nginx);" \
    "gateway with Redis $(cpu_median redis) (+ Redis server $(cpu_median redis-server));" \
    "gateway in process $(cpu_median local)"
echo
echo "gateway RSS (KiB): idle $IDLE_RSS_REDIS (Redis) / $IDLE_RSS_LOCAL (in process); highest under load $PEAK_RSS_REDIS / $PEAK_RSS_LOCAL"
echo
echo "Redis fallbacks during the run (must be 0): $(curl -fsS http://127.0.0.1:19606/metrics | awk '/^protostar_gateway_rate_limit_fallbacks_total/ {print $2}')"
