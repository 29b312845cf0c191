#!/usr/bin/env bash
# Exports the upstream PyTorch sources that `npm run bench -- --torch` imports into bench/.upstream/ (git-ignored;
# no upstream code is ever committed), each at the revision the project's parity fixtures were made with:
#   xuyaoxun/MuCodec 128f91be · huggingface/diffusers v0.27.2 · arogozhnikov/einops v0.7.0 · librosa/librosa 0.9.2
#
#   bench/torch/fetch_upstream.sh [MIRROR_DIR]
#
# MIRROR_DIR (default $MUCODEC_UPSTREAM_MIRRORS, else /work/.mirror) holds bare git dirs named <owner>+<name>/repo
# (or <owner>+<name>.git / <owner>+<name>); where a repository is not found there it is cloned from GitHub
# (network needed). Only source files are exported (*.py, *.json, *.txt, *.cfg, *.toml, *.yaml). Idempotent: a source already exported at its revision is kept.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/../.upstream"
mirrors="${1:-${MUCODEC_UPSTREAM_MIRRORS:-/work/.mirror}}"
mkdir -p "$dest"

fetch() { # owner name rev
  local owner="$1" name="$2" rev="$3" out="$dest/$2" gd=""
  if [ -f "$out/.rev" ] && [ "$(cat "$out/.rev")" = "$rev" ]; then echo "$name: already at $rev"; return; fi
  for c in "$mirrors/$owner+$name/repo" "$mirrors/$owner+$name.git" "$mirrors/$owner+$name"; do
    if [ -d "$c" ] && git --git-dir="$c" rev-parse -q --verify "$rev^{commit}" >/dev/null 2>&1; then gd="$c"; break; fi
  done
  if [ -z "$gd" ]; then
    gd="$dest/.git-$name"
    if [ ! -d "$gd" ]; then
      echo "$name: cloning https://github.com/$owner/$name (no mirror in $mirrors)"
      git clone --bare --filter=blob:none "https://github.com/$owner/$name" "$gd"
    fi
    git --git-dir="$gd" fetch -q origin "$rev" 2>/dev/null || true
  fi
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  # sources only (a mirror may lack the large binary blobs: audio examples, images)
  git --git-dir="$gd" ls-tree -r --name-only "$rev" | grep -E '\.(py|json|txt|cfg|toml|yaml)$' | grep -v -E '^(tests?|docs|examples)/' \
    | tr '\n' '\0' | xargs -0 git --git-dir="$gd" archive "$rev" -- | tar -x -C "$out.tmp"
  echo "$rev" > "$out.tmp/.rev"
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "$name: exported $rev from $gd"
}

fetch xuyaoxun MuCodec 128f91be
fetch huggingface diffusers v0.27.2
fetch arogozhnikov einops v0.7.0
fetch librosa librosa 0.9.2
