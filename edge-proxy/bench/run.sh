#!/usr/bin/env bash
# Edge proxy benchmark, one run, one command:   bash edge-proxy/bench/run.sh
#
# Measures, through each of: a direct connection (the limit), protostar-edge with splice(2)
# and with the userspace copy loop (the default), and HAProxy configured the same way (mode
# tcp, req.ssl_sni routing, send-proxy-v2), each with one thread per core and again with one
# thread (the load generator shares the two cores, so one proxy thread can be the better fit):
#   - bulk throughput of one established TLS connection (MiB/s, best of 3 x 1 GiB)
#     and the proxy's CPU time per GiB; again with the proxy alone on one core
# (each of these is the median of REPS=5 interleaved rounds)
#   - new TLS connections per second with SNI routing (8 concurrent clients, 6 s), and the
#     proxy's CPU time per such connection
#   - round-trip latency of 1-byte requests on one connection (p50/p99, µs)
#   - RSS of the proxy holding IDLE_CONNS idle TLS connections
# The load generator and the TLS upstream are bench/loadgen.rs (rustls on both ends), so
# only the middle changes. Prints a Markdown table.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
# Each proxied connection holds two descriptors; the proxy also needs a few of its own, so
# IDLE_CONNS must stay below half of `ulimit -Hn`.
HARD_NOFILE="$(ulimit -Hn)"
ulimit -n "$HARD_NOFILE"
IDLE_CONNS="${IDLE_CONNS:-10000}"
if [ "$HARD_NOFILE" != unlimited ] && [ $((IDLE_CONNS * 2 + 40)) -gt "$HARD_NOFILE" ]; then
    IDLE_CONNS=$(((HARD_NOFILE - 40) / 2))
    echo "note: hard descriptor limit $HARD_NOFILE allows $IDLE_CONNS idle proxied connections" >&2
fi

if ! command -v haproxy >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null
fi

cargo build --release -p protostar-edge --bin protostar-edge --example loadgen
EDGE_BIN="$ROOT/target/release/protostar-edge"
LG="$ROOT/target/release/examples/loadgen"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

UP_PLAIN=127.0.0.1:19443
UP_PP=127.0.0.1:19444
EDGE_USER=127.0.0.1:19445
EDGE_SPLICE=127.0.0.1:19446
HAPROXY=127.0.0.1:19447
EDGE_USER_1T=127.0.0.1:19448
HAPROXY_1T=127.0.0.1:19449
SNI=www.example.com

"$LG" serve "$UP_PLAIN" "$UP_PP" "$WORK/cert.der" >/dev/null &
PIDS+=($!)

edge_config() { # listen admin copy threads [upstream]
    cat <<CFG
copy = "$3"
threads = $4
[[listener]]
bind = "$1"
[admin]
bind = "$2"
[limits]
max_connections = 30000
max_handshakes = 30000
per_ip_max_connections = 30000
per_ip_rate = 1000000.0
per_ip_burst = 1000000.0
[[route]]
name = "admin"
sni = ["admin.example.com"]
upstream = "up"
proxy_protocol = true
reserved = 64
max_connections = 30000
[[route]]
name = "public"
sni = ["*.example.com"]
upstream = "up"
proxy_protocol = true
max_connections = 30000
[[upstream]]
name = "up"
addresses = ["${5:-$UP_PP}"]
health = { interval_ms = 0 }
CFG
}
edge_config "$EDGE_USER" 127.0.0.1:19901 userspace 0 >"$WORK/user.toml"
edge_config "$EDGE_SPLICE" 127.0.0.1:19902 splice 0 >"$WORK/splice.toml"
edge_config "$EDGE_USER_1T" 127.0.0.1:19903 userspace 1 >"$WORK/user1.toml"
haproxy_config() { # listen nbthread [upstream]
    cat <<CFG
global
    maxconn $IDLE_CONNS
    nbthread $2
defaults
    mode tcp
    timeout connect 5s
    timeout client 600s
    timeout server 600s
frontend tls
    bind $1
    tcp-request inspect-delay 5s
    tcp-request content accept if { req.ssl_hello_type 1 }
    use_backend admin if { req.ssl_sni -i admin.example.com }
    use_backend public if { req.ssl_sni -m end .example.com }
backend admin
    server up ${3:-$UP_PP} send-proxy-v2
backend public
    server up ${3:-$UP_PP} send-proxy-v2
CFG
}
haproxy_config "$HAPROXY" "$(nproc)" >"$WORK/haproxy.cfg"
haproxy_config "$HAPROXY_1T" 1 >"$WORK/haproxy1.cfg"

RUST_LOG=warn "$EDGE_BIN" --config "$WORK/user.toml" &
PID_USER=$!
PIDS+=($PID_USER)
RUST_LOG=warn "$EDGE_BIN" --config "$WORK/splice.toml" &
PID_SPLICE=$!
PIDS+=($PID_SPLICE)
haproxy -f "$WORK/haproxy.cfg" -db 2>"$WORK/haproxy.log" &
PID_HAP=$!
PIDS+=($PID_HAP)
RUST_LOG=warn "$EDGE_BIN" --config "$WORK/user1.toml" &
PID_USER_1T=$!
PIDS+=($PID_USER_1T)
haproxy -f "$WORK/haproxy1.cfg" -db 2>"$WORK/haproxy1.log" &
PID_HAP_1T=$!
PIDS+=($PID_HAP_1T)

for _ in $(seq 100); do
    [ -s "$WORK/cert.der" ] && break
    sleep 0.1
done
sleep 1
CERT="$WORK/cert.der"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

declare -A ADDR=([direct]=$UP_PLAIN [edge-userspace]=$EDGE_USER [edge-splice]=$EDGE_SPLICE [haproxy]=$HAPROXY
    [edge-userspace-1thread]=$EDGE_USER_1T [haproxy-1thread]=$HAPROXY_1T)
declare -A PID=([edge-userspace]=$PID_USER [edge-splice]=$PID_SPLICE [haproxy]=$PID_HAP
    [edge-userspace-1thread]=$PID_USER_1T [haproxy-1thread]=$PID_HAP_1T)
TARGETS=(direct edge-splice edge-userspace haproxy edge-userspace-1thread haproxy-1thread)
declare -A BULK RATE P50 P99 RSS0 RSS

for t in "${TARGETS[@]}"; do
    [ -n "${PID[$t]:-}" ] && RSS0[$t]=$(rss_kib "${PID[$t]}")
done
# Waits (at most a minute) for TIME_WAIT sockets on ephemeral ports (from the idle test,
# whose client closes first) to clear, so each measurement starts from the same state.
settle() {
    for _ in $(seq 60); do
        [ "$(ss -Htan state time-wait sport ge :32768 | wc -l)" -lt 1000 ] && return 0
        sleep 1
    done
}
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
# Interleave targets within each round so drift in machine load hits all alike; report the
# median of REPS rounds.
REPS="${REPS:-5}"
declare -A BULKS RATES P50S P99S CPUS CPU GIBS GIB
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# bulk ADDR CERT [PROXY_PID [CPU for the client]]: prints MiB/s and the proxy's CPU seconds
# per GiB moved (the client downloads 3 x 1 GiB), or "-" without a proxy.
bulk() {
    local c0=0 v run=()
    [ -n "${4:-}" ] && run=(taskset -c "$4")
    [ -n "${3:-}" ] && c0=$(cpu_ticks "$3")
    v=$("${run[@]}" "$LG" bulk "$1" "$SNI" "$2")
    if [ -n "${3:-}" ]; then
        echo "$v $(awk -v t=$(($(cpu_ticks "$3") - c0)) -v k="$(getconf CLK_TCK)" \
            'BEGIN { printf "%.2f", t / k / 3 }')"
    else
        echo "$v -"
    fi
}
for r in $(seq "$REPS"); do
    for t in "${TARGETS[@]}"; do
        read -r v g < <(bulk "${ADDR[$t]}" "$CERT" "${PID[$t]:-}")
        BULKS[$t]+="$v "
        [ "$g" != - ] && GIBS[$t]+="$g "
        echo "round $r bulk $t $v MiB/s proxy cpu $g s/GiB" >&2
    done
    for t in "${TARGETS[@]}"; do
        settle
        u=""
        [ -n "${PID[$t]:-}" ] && c0=$(cpu_ticks "${PID[$t]}")
        v=$("$LG" rate "${ADDR[$t]}" "$SNI" "$CERT" --secs 6)
        RATES[$t]+="$v "
        if [ -n "${PID[$t]:-}" ]; then
            # The proxy's own CPU (user + system) per routed connection, in µs: a figure the
            # shared machine's noise affects far less than the rate itself.
            u=$(awk -v t=$(($(cpu_ticks "${PID[$t]}") - c0)) -v n="$v" -v k="$(getconf CLK_TCK)" \
                'BEGIN { if (n > 0) printf "%.0f", t / k * 1e6 / (n * 6); else print 0 }')
            CPUS[$t]+="$u "
        fi
        echo "round $r rate $t $v/s proxy cpu ${u:-n/a} µs/conn" >&2
    done
    for t in "${TARGETS[@]}"; do
        read -r a b < <("$LG" latency "${ADDR[$t]}" "$SNI" "$CERT")
        P50S[$t]+="$a "
        P99S[$t]+="$b "
        echo "round $r latency $t p50 $a p99 $b µs" >&2
    done
done
for t in "${TARGETS[@]}"; do
    BULK[$t]=$(echo "${BULKS[$t]}" | median)
    GIB[$t]=$(echo "${GIBS[$t]:-}" | median)
    RATE[$t]=$(echo "${RATES[$t]}" | median)
    CPU[$t]=$(echo "${CPUS[$t]:-}" | median)
    P50[$t]=$(echo "${P50S[$t]}" | median)
    P99[$t]=$(echo "${P99S[$t]}" | median)
done
# Bulk again with the proxy on a core of its own, as on the VM (where the endpoints are other
# machines): the load generator and a second upstream pinned to CPU 0, each proxy with one
# thread pinned to CPU 1. Above, client, upstream and proxy share both cores, so any proxy
# takes CPU from the TLS endpoints and the ratio to direct measures that sharing.
declare -A PBULKS PGIBS PBULK PGIB
PINNED_TARGETS=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    UP_PIN=127.0.0.1:19453
    UP_PIN_PP=127.0.0.1:19454
    declare -A PADDR=([direct]=$UP_PIN [edge-userspace]=127.0.0.1:19455
        [edge-splice]=127.0.0.1:19456 [haproxy]=127.0.0.1:19457)
    taskset -c 0 "$LG" serve "$UP_PIN" "$UP_PIN_PP" "$WORK/cert-pin.der" >/dev/null &
    PIDS+=($!)
    edge_config "${PADDR[edge-userspace]}" 127.0.0.1:19904 userspace 1 "$UP_PIN_PP" >"$WORK/pin-user.toml"
    edge_config "${PADDR[edge-splice]}" 127.0.0.1:19905 splice 1 "$UP_PIN_PP" >"$WORK/pin-splice.toml"
    haproxy_config "${PADDR[haproxy]}" 1 "$UP_PIN_PP" >"$WORK/pin-haproxy.cfg"
    RUST_LOG=warn taskset -c 1 "$EDGE_BIN" --config "$WORK/pin-user.toml" &
    declare -A PINNED_PID=([edge-userspace]=$!)
    PIDS+=($!)
    RUST_LOG=warn taskset -c 1 "$EDGE_BIN" --config "$WORK/pin-splice.toml" &
    PINNED_PID[edge-splice]=$!
    PIDS+=($!)
    taskset -c 1 haproxy -f "$WORK/pin-haproxy.cfg" -db 2>"$WORK/pin-haproxy.log" &
    PINNED_PID[haproxy]=$!
    PIDS+=($!)
    for _ in $(seq 100); do
        [ -s "$WORK/cert-pin.der" ] && break
        sleep 0.1
    done
    sleep 1
    PINNED_TARGETS=(direct edge-userspace edge-splice haproxy)
    for r in $(seq "$REPS"); do
        for t in "${PINNED_TARGETS[@]}"; do
            read -r v g < <(bulk "${PADDR[$t]}" "$WORK/cert-pin.der" "${PINNED_PID[$t]:-}" 0)
            PBULKS[$t]+="$v "
            [ "$g" != - ] && PGIBS[$t]+="$g "
            echo "round $r pinned bulk $t $v MiB/s proxy cpu $g s/GiB" >&2
        done
    done
    for t in "${PINNED_TARGETS[@]}"; do
        PBULK[$t]=$(echo "${PBULKS[$t]}" | median)
        PGIB[$t]=$(echo "${PGIBS[$t]:-}" | median)
    done
    for p in "${PINNED_PID[@]}"; do kill "$p" 2>/dev/null || true; done
fi

for t in edge-splice edge-userspace haproxy edge-userspace-1thread haproxy-1thread; do
    settle
    "$LG" idle "${ADDR[$t]}" "$SNI" "$CERT" --count "$IDLE_CONNS" --hold-secs 600 >"$WORK/idle.out" &
    IDLE=$!
    for _ in $(seq 1200); do
        grep -q ready "$WORK/idle.out" 2>/dev/null && break
        kill -0 "$IDLE" 2>/dev/null || break
        sleep 0.1
    done
    sleep 2
    RSS[$t]=$(rss_kib "${PID[$t]}")
    echo "idle $t $(cat "$WORK/idle.out") rss ${RSS[$t]} KiB" >&2
    kill "$IDLE" 2>/dev/null || true
    wait "$IDLE" 2>/dev/null || true
    sleep 3
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo
echo "| target | bulk MiB/s (× direct) | proxy CPU s per GiB | new conn/s (× direct) | proxy CPU µs per new conn | RTT p50 / p99 µs (added p50 / p99) | RSS idle start → $IDLE_CONNS idle conns |"
echo "|---|---|---|---|---|---|---|"
for t in "${TARGETS[@]}"; do
    if [ "$t" = direct ]; then
        rss="—"
        add="—"
    else
        rss="$(mib "${RSS0[$t]}") MiB → $(mib "${RSS[$t]}") MiB"
        add="$(added "${P50[$t]}" "${P50[direct]}") / $(added "${P99[$t]}" "${P99[direct]}")"
    fi
    echo "| $t | ${BULK[$t]} ($(ratio "${BULK[$t]}" "${BULK[direct]}")) | ${GIB[$t]:-—} | ${RATE[$t]} ($(ratio "${RATE[$t]}" "${RATE[direct]}")) | ${CPU[$t]:-—} | ${P50[$t]} / ${P99[$t]} ($add) | $rss |"
done
if [ "${#PINNED_TARGETS[@]}" -gt 0 ]; then
    echo
    echo "Bulk with the proxy alone on CPU 1 (one thread), client and upstream on CPU 0:"
    echo
    echo "| target | bulk MiB/s (× direct) | proxy CPU s per GiB |"
    echo "|---|---|---|"
    for t in "${PINNED_TARGETS[@]}"; do
        echo "| $t | ${PBULK[$t]} ($(ratio "${PBULK[$t]}" "${PBULK[direct]}")) | ${PGIB[$t]:-—} |"
    done
fi
echo
echo "machine: $(nproc) cores, $(uname -r), $(haproxy -v | head -1 | cut -d' ' -f1-3), rustc $(rustc --version | cut -d' ' -f2); load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)"
