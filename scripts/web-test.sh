#!/usr/bin/env bash
# The browser tests (web/tests): Debian's Chromium driven by npm's playwright-core, against the
# real binary (target/debug/protostar serve --target all) on a fresh database of the running
# stack. No browser is downloaded: Playwright's own downloads cannot work offline.
#
#   scripts/web-test.sh install   chromium and Node.js (apt), web/node_modules (npm ci), where missing
#   scripts/web-test.sh run       node --test web/tests/ (needs a stack's env: PROTOSTAR_TEST_*)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[web] %s\n' "$*" >&2; }

install() {
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  # Korean text in screenshots needs a CJK font.
  dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} from Debian"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if ! (cd web && npm ls --depth=0 >/dev/null 2>&1); then
    say "installing web/node_modules (npm ci)"
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

case "${1:-run}" in
  install) install ;;
  run)
    install
    [ -x target/debug/protostar ] || cargo build --locked -p protostar
    # One file at a time: each starts its own server and browser, and the machine has 2 cores.
    cd web && exec node --test --test-concurrency=1 tests/
    ;;
  *) echo "usage: $0 install|run" >&2; exit 2 ;;
esac
