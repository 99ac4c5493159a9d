#!/usr/bin/env bash
# The ask's heaviest statements alone under pgbench, on a fresh PostgreSQL of the stack (one
# command: `bash services/chat/bench/statements.sh`; SECS to change each run's length):
#   1. the hybrid retrieval over 4,000 chunks of 20 owners (one owner of 40 asked), one client:
#      as the text query it used to be (settings and vector inlined, simple protocol) against
#      the prepared call of `hybrid_retrieve` (ai's migration), which keeps its plan;
#   2. chat's `take_quota` at 16 clients, fresh counters against counters every call shares
#      (one address, one chatbot), beside `SELECT 1`, one counter upsert and `quota_day`;
#   3. a small insert with and without a foreign key to one parent row every insert shares.
# Prints pgbench's latency (1) and rate (2, 3). The migrations are applied from the tree.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$ROOT"
if [ -z "${PROTOSTAR_TEST_DATABASE_URL:-}" ]; then
    exec scripts/stack.sh run postgres -- bash "$0" "$@"
fi
SECS="${SECS:-6}"
BIN="$PROTOSTAR_TEST_PG_BIN"
WORK="$(mktemp -d /var/tmp/protostar-statements.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
URL="$PROTOSTAR_TEST_DATABASE_URL"
PSQL=("$BIN/psql" -q -v ON_ERROR_STOP=1 "$URL")
bench() { # mode clients file -> pgbench's summary lines
    "$BIN/pgbench" -n -T "$SECS" -c "$2" -j 2 -M "$1" -f "$3" "$URL" 2>&1 |
        grep -E '^tps|latency average' | tr '\n' ' '
    echo
}

cat services/ai/migrations/*.sql | "${PSQL[@]}"
python3 - "$WORK" <<'PY'
import math, random, sys, uuid
work = sys.argv[1]
random.seed(7)
words = [f"w{i}" for i in range(3000)]
def unit():
    v = [random.gauss(0, 1) for _ in range(384)]
    s = math.sqrt(sum(x * x for x in v))
    return "[" + ",".join(f"{x / s:.6f}" for x in v) + "]"
owners = [uuid.UUID(int=random.getrandbits(128)) for _ in range(20)]
with open(f"{work}/data.sql", "w") as f:
    f.write("BEGIN;\n")
    for o in owners:
        for d in range(4):
            doc = uuid.UUID(int=random.getrandbits(128))
            f.write(f"INSERT INTO documents (document_id, owner_id, version, title, status) "
                    f"VALUES ('{doc}', '{o}', 1, 'doc {d}', 'ready');\n")
            # The asked owner has 10 chunks a document, the others 50.
            for n in range(10 if o == owners[0] else 50):
                kws = random.sample(words, 30)
                arr = "ARRAY[" + ",".join(f"'{w}'" for w in kws) + "]"
                f.write(f"INSERT INTO chunks (id, document_id, owner_id, version, ordinal, location, "
                        f"text, keywords, embedding) VALUES ('{uuid.UUID(int=random.getrandbits(128))}', "
                        f"'{doc}', '{o}', 1, {n}, 'p{n}', '{' '.join(kws)}', "
                        f"array_to_tsvector({arr}), '{unit()}');\n")
    f.write("COMMIT;\nANALYZE;\n")
vec = unit()
owner = f"'{{{owners[0]}}}'::uuid[]"
words_q = "'''w1'' | ''w17'' | ''w200'' | ''w5'''"
# The text query as ai sent it before hybrid_retrieve (retrieval.rs at a8243a8).
text = (
    "SET LOCAL hnsw.iterative_scan = relaxed_order\\; SET LOCAL hnsw.ef_search = 300\\; "
    f"WITH vec AS ( SELECT id, d, row_number() OVER (ORDER BY d, id) AS r FROM ( SELECT id, "
    f"embedding <=> '{vec}'::vector AS d FROM chunks WHERE owner_id = ANY({owner}) ORDER BY "
    f"embedding <=> '{vec}'::vector LIMIT 40) v), kw AS (SELECT id, row_number() OVER (ORDER BY "
    f"rank DESC, id) AS r FROM ( SELECT id, ts_rank(keywords, {words_q}::tsquery) AS rank FROM "
    f"chunks WHERE owner_id = ANY({owner}) AND keywords @@ {words_q}::tsquery ORDER BY rank "
    "DESC, id LIMIT 40) k), fused AS ( SELECT coalesce(vec.id, kw.id) AS id, vec.d, "
    "coalesce(1.0::float8 / (60 + vec.r), 0) + coalesce(1.0::float8 / (60 + kw.r), 0) AS score "
    "FROM vec FULL OUTER JOIN kw ON vec.id = kw.id ORDER BY score DESC, id LIMIT 8) SELECT c.id, "
    "c.document_id, c.owner_id, d.title, c.location, c.text, f.score::float8 AS score, "
    "(1 - f.d)::float8 AS similarity, c.pinned FROM fused f JOIN chunks c ON c.id = f.id JOIN "
    "documents d USING (document_id) ORDER BY f.score DESC, c.id;\n")
open(f"{work}/text.sql", "w").write(text)
open(f"{work}/function.sql", "w").write(
    f"SELECT * FROM hybrid_retrieve('{vec}'::vector, {owner}, {words_q}::tsquery, 40, 8, 300, false);\n")
PY
"${PSQL[@]}" -f "$WORK/data.sql"
echo "1. hybrid retrieval, one owner of 40 chunks among 4,000, one client ($SECS s each):"
for round in 1 2; do
    echo "   text query (before):        $(bench simple 1 "$WORK/text.sql")"
    echo "   hybrid_retrieve (prepared): $(bench prepared 1 "$WORK/function.sql")"
done

"${PSQL[@]}" -c "CREATE SCHEMA chat" -c "SET search_path TO chat, public" \
    -f services/chat/migrations/20261207000001_chatbots.sql \
    -f services/chat/migrations/20261207000002_take_quota.sql \
    -f services/chat/migrations/20261207000003_take_quota_without_subtransaction.sql \
    -f services/chat/migrations/20261207000004_take_quota_leaves_no_empty_counter.sql
"${PSQL[@]}" -c "ALTER DATABASE postgres SET search_path TO chat, public"
quota() { # scopes of the address and chatbot counters
    cat <<SQL
\set g random(1, 1000000000)
SELECT * FROM take_quota(now(), 'Asia/Seoul', ARRAY['subject:g' || :g::text, $1],
    ARRAY[false, true, true], ARRAY[1000000000, 1000000000, 1000000000]::bigint[]);
SQL
}
quota "'ip:' || :g::text, 'chatbot:' || :g::text" >"$WORK/cold.sql"
quota "'ip:127.0.0.1', 'chatbot:demo'" >"$WORK/hot.sql"
echo "SELECT 1;" >"$WORK/one.sql"
printf '%s\n' '\set g random(1, 1000000000)' \
    "INSERT INTO quota_counters AS q (scope, period, used) VALUES ('x:' || :g, 'total', 1) ON CONFLICT (scope, period) DO UPDATE SET used = q.used + 1;" \
    >"$WORK/upsert.sql"
echo "SELECT * FROM quota_day(now(), 'Asia/Seoul');" >"$WORK/day.sql"
echo "2. quota statements, 16 clients ($SECS s each):"
for f in one upsert day cold hot; do
    echo "   $f: $(bench simple 16 "$WORK/$f.sql")"
done

"${PSQL[@]}" <<'SQL'
CREATE TABLE parent (id uuid PRIMARY KEY);
INSERT INTO parent VALUES ('00000000-0000-0000-0000-000000000001');
CREATE TABLE kid_fk (id uuid PRIMARY KEY, parent_id uuid NOT NULL REFERENCES parent, t text);
CREATE TABLE kid_plain (id uuid PRIMARY KEY, parent_id uuid NOT NULL, t text);
SQL
for t in kid_fk kid_plain; do
    echo "INSERT INTO $t VALUES (gen_random_uuid(), '00000000-0000-0000-0000-000000000001', 'hello');" >"$WORK/$t.sql"
done
echo "3. inserts referencing one parent row, 16 clients ($SECS s each):"
for round in 1 2; do
    for t in kid_fk kid_plain; do echo "   $t: $(bench prepared 16 "$WORK/$t.sql")"; done
done
