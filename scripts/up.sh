#!/usr/bin/env bash
# `make up`: the whole platform on this machine. Installs PostgreSQL+pgvector if missing, builds
# the binary, starts PostgreSQL (durable, under $UP_DIR, default /var/tmp/protostar-up) and `protostar serve --target
# all` in the background, waits until it is ready and prints where it answers.
# `make down` (this script with `stop`) stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
HOME_DIR=${UP_DIR:-/var/tmp/protostar-up}
PROFILE=${PROFILE:-release}
PUBLIC=${PROTOSTAR_PUBLIC_ADDR:-127.0.0.1:8080}
ADMIN=${PROTOSTAR_ADMIN_ADDR:-127.0.0.1:8081}
step() { printf '==> %s\n' "$*"; }

stop() {
  if [ -s "$HOME_DIR/protostar.pid" ] && kill -0 "$(cat "$HOME_DIR/protostar.pid")" 2>/dev/null; then
    step "stopping protostar"
    kill -TERM "$(cat "$HOME_DIR/protostar.pid")"
    for _ in $(seq 1 100); do kill -0 "$(cat "$HOME_DIR/protostar.pid")" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$HOME_DIR/protostar.pid"
  [ -d "$HOME_DIR" ] && scripts/stack.sh stop --dir "$HOME_DIR" postgres
  step "stopped (data kept in $HOME_DIR)"
}

if [ "${1:-}" = stop ]; then stop; exit 0; fi

step "installing PostgreSQL 18 + pgvector if missing"
scripts/stack.sh install postgres

if [ "$PROFILE" = release ]; then
  step "building protostar (release; the first build takes several minutes)"
  cargo build --release --locked -p protostar
  BIN=target/release/protostar
else
  step "building protostar (dev profile)"
  cargo build --locked -p protostar
  BIN=target/debug/protostar
fi

step "provisioning the offline embedding models (the ai target's default)"
scripts/models.sh

if [ -s "$HOME_DIR/protostar.pid" ] && kill -0 "$(cat "$HOME_DIR/protostar.pid")" 2>/dev/null; then
  step "protostar is already running; restarting it with the new build"
  kill -TERM "$(cat "$HOME_DIR/protostar.pid")"; sleep 1
fi

step "starting PostgreSQL in $HOME_DIR"
STACK_DURABLE=1 scripts/stack.sh start --dir "$HOME_DIR" postgres
# shellcheck disable=SC1091
. "$HOME_DIR/env"
PG_PORT=$(cat "$HOME_DIR/ports/postgres")
"$PROTOSTAR_TEST_PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAtc \
  "SELECT 1 FROM pg_database WHERE datname = 'protostar'" postgres | grep -q 1 \
  || "$PROTOSTAR_TEST_PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres protostar

step "starting protostar serve --target all"
mkdir -p "$HOME_DIR/data"
PROTOSTAR_DATABASE__URL="postgres://postgres@127.0.0.1:$PG_PORT/protostar" \
PROTOSTAR_DATA_DIR="$HOME_DIR/data" \
PROTOSTAR_PUBLIC_ADDR="$PUBLIC" PROTOSTAR_ADMIN_ADDR="$ADMIN" \
  setsid "$BIN" serve --target all >> "$HOME_DIR/protostar.log" 2>&1 < /dev/null &
echo $! > "$HOME_DIR/protostar.pid"

for _ in $(seq 1 150); do
  if ! kill -0 "$(cat "$HOME_DIR/protostar.pid")" 2>/dev/null; then
    echo "protostar exited; the end of its log ($HOME_DIR/protostar.log):" >&2
    tail -n 20 "$HOME_DIR/protostar.log" >&2; exit 1
  fi
  if curl -fsS "http://$PUBLIC/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
curl -fsS "http://$PUBLIC/readyz" >/dev/null || { echo "protostar did not become ready; see $HOME_DIR/protostar.log" >&2; exit 1; }

step "loading the demo chatbot (Emily Carter: a résumé and a cover letter, indexed by the local model)"
scripts/demo.sh "$BIN" "$HOME_DIR" "$PUBLIC" "$ADMIN" "postgres://postgres@127.0.0.1:$PG_PORT/protostar"
SLUG=$(cat "$HOME_DIR/demo/slug")

cat <<MSG

Protostar is running.
  the demo chatbot answers at:      http://$PUBLIC/c/$SLUG
  ask it from a shell:              curl -s -X POST http://$PUBLIC/api/chatbots/$SLUG/ask \\
                                      -H "authorization: Bearer \$(curl -s -X POST http://$PUBLIC/api/auth/guest | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')" \\
                                      -H 'content-type: application/json' -d '{"question":"Which database did she migrate to?"}'
  embed it on a page:               <script src="http://$PUBLIC/widget.js" data-chatbot="$SLUG" async></script>
  dashboard (the demo protostar):   http://$PUBLIC/dashboard
  admin:                            http://$ADMIN/admin/
  demo credentials:                 $HOME_DIR/demo/credentials
  readiness:                        http://$PUBLIC/readyz
  targets:                          $("$BIN" targets | awk 'NR>1 && NF==0{exit} NR>1{print $1}' | paste -sd, -)
  logs:                             $HOME_DIR/protostar.log
Stop it with: make down
MSG
