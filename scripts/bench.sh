# Shared by the benchmark scripts (sourced, not run): which protostar binary to measure, and the
# trivial upstream the gateway benchmarks proxy to.

# Sets BIN: $PROTOSTAR_BIN when given (to compare two builds in one sitting), else a release
# build of this tree. PROTOSTAR_BIN is then unset: protostar reads every PROTOSTAR_* variable
# as a setting and would refuse it.
protostar_bin() {
    if [ -n "${PROTOSTAR_BIN:-}" ]; then
        BIN="$PROTOSTAR_BIN"
    else
        cargo build --release --locked -p protostar --bin protostar
        BIN="$ROOT/target/release/protostar"
    fi
    unset PROTOSTAR_BIN
}

# nginx_ok_upstream DIR ADDR: starts an nginx (one worker, no log) answering "ok" to anything on
# ADDR, its files in DIR, and sets UPSTREAM_PID.
nginx_ok_upstream() {
    local dir=$1 addr=$2
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<CFG
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen $addr; location / { default_type text/plain; return 200 "ok\n"; } }
}
CFG
    nginx -p "$dir" -c "$dir/nginx.conf" &
    UPSTREAM_PID=$!
}
