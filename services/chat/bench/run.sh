#!/usr/bin/env bash
# The ask benchmark, one command:   bash services/chat/bench/run.sh
#
# `protostar serve --target all` (release build) over the stack's PostgreSQL, with the demo
# chatbot of `make up` (a résumé and a cover letter indexed by the local multilingual-e5-small
# model) and the offline extractive model. wrk keeps CONNS (50) guests asking at once, each
# request with one of CONNS guest tokens and one of eight questions (Korean and English, one
# that nothing supports), for DURATION after a warm-up; every ask goes through the gateway, the
# token check, the quota transaction, ai (embedding, hybrid retrieval, the model) and the
# answer's transaction with its outbox event. Quotas are raised so none refuses (they are still
# counted). Twice: every question a new text (a serial number appended: each embedding is
# computed), then the eight questions again and again (their embeddings come from the cache). In the same run, the baseline: GET /api/chatbots/{slug} with the same tokens (same
# gateway and checks, one row). Where an ask's time goes comes from the ai service's
# protostar_answer_stage_seconds{stage} (embed, retrieve, generate), read before and after;
# which process a path is bound by, from the CPU time of protostar and of PostgreSQL per
# request, and the statements PostgreSQL ran per repeated ask (pg_stat_statements). Prints
# Markdown tables.
#
# Knobs: CONNS, THREADS, DURATION, WARMUP; PROTOSTAR_BIN (measure that build); LOG_FILTER (the
# server's log filter, `warn` by default); KEEP_WORK=1 keeps the work folder (the server's log).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$ROOT"
CONNS="${CONNS:-50}"
THREADS="${THREADS:-2}"
DURATION="${DURATION:-20s}"
WARMUP="${WARMUP:-5s}"
PUBLIC=127.0.0.1:19701
ADMIN=127.0.0.1:19702

scripts/stack.sh apt wrk
# shellcheck source=scripts/bench.sh
. scripts/bench.sh
# PROTOSTAR_BIN: measure that build instead (to compare two commits in one sitting).
protostar_bin
scripts/models.sh >/dev/null

WORK="$(mktemp -d /var/tmp/protostar-ask-bench.XXXXXX)"
chmod 755 "$WORK"
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    wait 2>/dev/null || true
    scripts/stack.sh stop --dir "$WORK/stack" >/dev/null 2>&1 || true
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# With pg_stat_statements: the statements an ask makes are counted below.
STACK_PG_STATEMENTS=1 scripts/stack.sh start --dir "$WORK/stack" postgres >/dev/null
# shellcheck disable=SC1091
. "$WORK/stack/env"
PG_PORT=$(cat "$WORK/stack/ports/postgres")
"$PROTOSTAR_TEST_PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres protostar
DB="postgres://postgres@127.0.0.1:$PG_PORT/protostar"
PSQL=("$PROTOSTAR_TEST_PG_BIN/psql" -X -q -At -h 127.0.0.1 -p "$PG_PORT" -U postgres protostar)
"${PSQL[@]}" -c "CREATE EXTENSION pg_stat_statements"
mkdir -p "$WORK/data"
PROTOSTAR_DATABASE__URL="$DB" PROTOSTAR_DATA_DIR="$WORK/data" \
PROTOSTAR_PUBLIC_ADDR=$PUBLIC PROTOSTAR_ADMIN_ADDR=$ADMIN PROTOSTAR_LOG__FILTER=${LOG_FILTER:-warn} \
PROTOSTAR_CHAT__QUOTAS__GUEST_TOTAL=1000000 PROTOSTAR_CHAT__QUOTAS__GUEST_IP_PER_DAY=1000000 \
PROTOSTAR_CHAT__QUOTAS__CHATBOT_PER_DAY=1000000 \
PROTOSTAR_GATEWAY__RATE_LIMIT__IP__PER_MINUTE=10000000 PROTOSTAR_GATEWAY__RATE_LIMIT__IP__BURST=1000000 \
PROTOSTAR_GATEWAY__RATE_LIMIT__SUBJECT__PER_MINUTE=10000000 PROTOSTAR_GATEWAY__RATE_LIMIT__SUBJECT__BURST=1000000 \
    "$BIN" serve --target all > "$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do curl -fsS "http://$PUBLIC/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
scripts/demo.sh "$BIN" "$WORK" "$PUBLIC" "$ADMIN" "$DB" >/dev/null
SLUG=$(cat "$WORK/demo/slug")

{
    echo "return {"
    for _ in $(seq 1 "$CONNS"); do
        curl -fsS -X POST "http://$PUBLIC/api/auth/guest" \
            | python3 -c 'import json,sys; print("  \"%s\"," % json.load(sys.stdin)["accessToken"])'
    done
    echo "}"
} > "$WORK/tokens.lua"
export ASK_TOKENS="$WORK/tokens.lua" ASK_SLUG="$SLUG"

stages() {
    curl -fsS "http://$ADMIN/metrics" | python3 -c '
import re, sys
sums, counts = {}, {}
for line in sys.stdin:
    m = re.match(r"protostar_answer_stage_seconds_(sum|count)\{stage=\"(\w+)\"\} ([0-9.e+-]+)", line)
    if m:
        (sums if m.group(1) == "sum" else counts)[m.group(2)] = float(m.group(3))
for s in ("embed", "retrieve", "generate"):
    print(s, sums.get(s, 0.0), counts.get(s, 0.0))
'
}

# CPU time (user + system, clock ticks) of protostar and of PostgreSQL (the postmaster and
# its backends): which of the two a path is bound by.
PG_PID=$(cat "$WORK/stack/postgres/pid")
cpu() {
    local app pg
    app=$(awk '{ print $14 + $15 }' "/proc/$PID/stat")
    # shellcheck disable=SC2046
    pg=$(cat $(printf '/proc/%s/stat ' "$PG_PID" $(pgrep -P "$PG_PID")) 2>/dev/null | awk '{ t += $14 + $15 } END { print t }')
    echo "$app $pg"
}

wrk -t"$THREADS" -c"$CONNS" -d"$WARMUP" --timeout 60s -s services/chat/bench/ask.lua "http://$PUBLIC" >/dev/null
BEFORE="$(stages)"
CPU0=$(cpu)
ASK=$(ASK_UNIQUE=1 wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 60s --latency -s services/chat/bench/ask.lua "http://$PUBLIC" | grep '^RESULT')
CPU1=$(cpu)
AFTER="$(stages)"
"${PSQL[@]}" -c "SELECT pg_stat_statements_reset()" >/dev/null
REPEAT=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 60s --latency -s services/chat/bench/ask.lua "http://$PUBLIC" | grep '^RESULT')
CPU2=$(cpu)
# What PostgreSQL was asked during the repeated run, per ask (answered within the run or not:
# the few in flight at its end make this a slight overestimate).
# With each statement's mean execution time in µs (planning is not tracked: track_planning is
# off, and sqlx's prepared statements are planned far less often than executed).
STATEMENTS=$("${PSQL[@]}" -F ' ' -c "SELECT calls, round(1000 * total_exec_time / calls),
    regexp_replace(left(query, 90), '\s+', ' ', 'g')
    FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY calls DESC")
BASE=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 60s --latency -s services/chat/bench/public.lua "http://$PUBLIC" | grep '^RESULT')
CPU3=$(cpu)
RSS=$(ps -o rss= -p "$PID" | awk '{printf "%.1f", $1/1024}')

field() { echo "$1" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2; }
# per_request "before" "after" rps: "protostar ms | PostgreSQL ms" of CPU per request
per_request() {
    awk -v b="$1" -v a="$2" -v r="$3" -v s="${DURATION%s}" -v k="$(getconf CLK_TCK)" 'BEGIN {
        split(b, x, " "); split(a, y, " "); n = r * s
        printf "%.2f | %.2f", (y[1] - x[1]) / k * 1000 / n, (y[2] - x[2]) / k * 1000 / n }'
}
ASK_MEAN=$(field "$ASK" mean_ms)
echo
echo "| path ($CONNS concurrent, $DURATION) | req/s | p50 ms | p99 ms | non-200 |"
echo "|---|---|---|---|---|"
echo "| POST /ask (guest, extractive), every question new | $(field "$ASK" rps) | $(field "$ASK" p50_ms) | $(field "$ASK" p99_ms) | $(field "$ASK" non200) |"
echo "| POST /ask, eight questions asked again and again | $(field "$REPEAT" rps) | $(field "$REPEAT" p50_ms) | $(field "$REPEAT" p99_ms) | $(field "$REPEAT" non200) |"
echo "| GET /api/chatbots/{slug} (baseline) | $(field "$BASE" rps) | $(field "$BASE" p50_ms) | $(field "$BASE" p99_ms) | $(field "$BASE" non200) |"
echo
echo "| stage of an ask (every question new) | mean ms | share of the mean ask ($ASK_MEAN ms) |"
echo "|---|---|---|"
paste <(echo "$BEFORE") <(echo "$AFTER") | while read -r s b_sum b_count _ a_sum a_count; do
    python3 -c "
s, d_sum, d_count, mean = '$s', $a_sum - $b_sum, $a_count - $b_count, $ASK_MEAN
per = 1000 * d_sum / d_count if d_count else 0
print(f'| {s} | {per:.2f} | {100 * per / mean:.0f}% |')"
done
echo
echo "| path | protostar CPU ms per request | PostgreSQL CPU ms per request |"
echo "|---|---|---|"
echo "| POST /ask, every question new | $(per_request "$CPU0" "$CPU1" "$(field "$ASK" rps)") |"
echo "| POST /ask, the eight questions again and again | $(per_request "$CPU1" "$CPU2" "$(field "$REPEAT" rps)") |"
echo "| GET /api/chatbots/{slug} | $(per_request "$CPU2" "$CPU3" "$(field "$BASE" rps)") |"
echo
ASKS=$(field "$REPEAT" requests)
echo "Statements per ask, the eight questions again and again ($ASKS asks; pg_stat_statements):"
echo
echo "| per ask | mean µs executing | statement |"
echo "|---|---|---|"
echo "$STATEMENTS" | awk -v n="$ASKS" '{ c = $1; us = $2; $1 = ""; $2 = ""; t += c; e += c * us
    printf "| %.2f | %d |%s |\n", c / n, us, $0 }
    END { printf "| **%.1f** | **%.0f per ask** | all |\n", t / n, e / n }'
echo
echo "protostar RSS after the run: $RSS MiB; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
