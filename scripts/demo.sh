#!/usr/bin/env bash
# Loads the demo chatbot into a running `make up` platform: an admin, an invite, a protostar
# ("Emily Carter") with a résumé and a cover letter, her chatbot's greeting. Idempotent: a second
# run finds the account and only waits for the documents. Credentials go to $HOME_DIR/demo.
#   scripts/demo.sh BIN HOME_DIR PUBLIC ADMIN DATABASE_URL
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$1 HOME_DIR=$2 PUBLIC=$3 ADMIN=$4 DATABASE_URL=$5
DEMO_DIR="$HOME_DIR/demo"
mkdir -p "$DEMO_DIR"
EMAIL=emily@demo.protostar.local
ADMIN_EMAIL=admin@demo.protostar.local

json() { python3 -c "import json,sys; v=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
post() { # path token body
  curl -fsS -X POST "http://$PUBLIC$1" -H 'content-type: application/json' \
    ${2:+-H "authorization: Bearer $2"} -d "$3"
}

if [ ! -s "$DEMO_DIR/password" ]; then
  python3 -c "import secrets; print(secrets.token_urlsafe(18))" > "$DEMO_DIR/password"
fi
PASSWORD=$(cat "$DEMO_DIR/password")

# The first admin, made by the binary itself against the database (safe to repeat: an existing
# admin is kept and the command says so).
PROTOSTAR_DATABASE__URL="$DATABASE_URL" PROTOSTAR_DATA_DIR="$HOME_DIR/data" \
  "$BIN" admin create-admin --email "$ADMIN_EMAIL" --password-file "$DEMO_DIR/password" \
  >> "$DEMO_DIR/setup.log" 2>&1 || true

login() { post /api/auth/login "" "{\"email\":\"$1\",\"password\":\"$PASSWORD\"}"; }

if ! TOKENS=$(login "$EMAIL" 2>/dev/null); then
  ADMIN_TOKEN=$(login "$ADMIN_EMAIL" | json 'v["accessToken"]')
  CODE=$(curl -fsS -X POST "http://$ADMIN/admin/api/invites" -H 'content-type: application/json' \
    -H "authorization: Bearer $ADMIN_TOKEN" -d '{"count":1,"uses":1}' | json 'v["invites"][0]["code"]')
  TOKENS=$(post /api/auth/signup "" \
    "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\",\"displayName\":\"Emily Carter\"}")
  ACCESS=$(echo "$TOKENS" | json 'v["accessToken"]')
  for _ in $(seq 1 50); do
    curl -fsS "http://$PUBLIC/api/users/me" -H "authorization: Bearer $ACCESS" >/dev/null 2>&1 && break
    sleep 0.2
  done
  post /api/invites/redeem "$ACCESS" "{\"code\":\"$CODE\"}" >/dev/null
  NEW=1
fi
# The protostar role shows in the token after a refresh.
REFRESH=$(echo "$TOKENS" | json 'v["refreshToken"]')
for _ in $(seq 1 50); do
  TOKENS=$(post /api/auth/refresh "" "{\"refreshToken\":\"$REFRESH\"}")
  REFRESH=$(echo "$TOKENS" | json 'v["refreshToken"]')
  [ "$(echo "$TOKENS" | json 'v["role"]')" = protostar ] && break
  sleep 0.2
done
ACCESS=$(echo "$TOKENS" | json 'v["accessToken"]')
auth=(-H "authorization: Bearer $ACCESS")

SLUG=$(curl -fsS "http://$PUBLIC/api/chatbots/mine" "${auth[@]}" | json 'v["slug"]')
# A first run that stopped before its uploads is finished by the next.
COUNT=$(curl -fsS "http://$PUBLIC/api/documents" "${auth[@]}" | json 'len(v["documents"])')
if [ "${NEW:-}" = 1 ] || [ "$COUNT" = 0 ]; then
  for f in scripts/demo/resume.md scripts/demo/cover-letter.txt; do
    curl -fsS -X POST "http://$PUBLIC/api/documents" "${auth[@]}" -F "file=@$f" >/dev/null
  done
  curl -fsS -X PATCH "http://$PUBLIC/api/chatbots/mine" "${auth[@]}" -H 'content-type: application/json' \
    -d '{"greeting":"Hi! I answer questions about Emily Carter'"'"'s career, citing her résumé and cover letter.","talentSearch":true}' >/dev/null
fi

# Ingestion runs the local embedding model; wait until both documents are searchable.
for _ in $(seq 1 600); do
  STATES=$(curl -fsS "http://$PUBLIC/api/documents" "${auth[@]}" | json '",".join(d["status"] for d in v["documents"])')
  case ",$STATES," in *,failed,*) echo "a demo document failed to index: see the dashboard" >&2; break;; esac
  [ -n "$STATES" ] && ! echo "$STATES" | grep -qv '^ready\(,ready\)*$' && break
  sleep 0.5
done
echo "$SLUG" > "$DEMO_DIR/slug"
printf 'admin: %s\nprotostar: %s\npassword: %s\n' "$ADMIN_EMAIL" "$EMAIL" "$PASSWORD" > "$DEMO_DIR/credentials"
chmod 600 "$DEMO_DIR/credentials" "$DEMO_DIR/password"
