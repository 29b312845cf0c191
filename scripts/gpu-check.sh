#!/usr/bin/env bash
# The GPU check, run on the device tool's machine in ONE call (README "GPU check (device tool)"):
#
#   carry [".gl", ".gpu-carry"]  (made by scripts/gpu-pack.sh pack; tests/fixtures detached)
#   command "bash scripts/gpu-check.sh"   timeout_s 600
#
# It unpacks the carried Node and runtime (into .gpu-run/, node_modules/ and dist/ of this copy), brings the Vulkan
# loader (.gl, as the device README says), prints the adapter and its limits, runs the parity subset on webgpu, a tiny
# reconstruct on webgpu against wasm (same input and seed: max_abs), then the real-width bench rows on webgpu: dit.block
# (4096 tokens), one CFG step of the whole DiT, one whole 40.96 s window (20 CFG steps + VAE + vocoder), vae.decode,
# hifigan.generate, the MuQ window. Each part has a time budget (a part over it is stopped and recorded as such; a part
# that no longer fits is skipped with a note); a failing part (e.g. a tensor over the adapter's binding limit: a clear
# error) is recorded and the check goes on. Written under $OUT (default .gpu-out/): gpu-check.json (everything),
# bench-webgpu.json (the rows, bench/results format) and gpu-check.log.
#
#   --budget S   total seconds (default 480: ~8 minutes, inside the device tool's 10-minute command)
#   --quick      small shapes for the software adapter (bench --quick, window on the tiny model, fewer steps)
#   --only a,b   run only these parts (adapter parity reconstruct dit_block dit_cfg window vae vocoder muq)
# Locally: MUCODEC_WEBGPU_ADAPTER=software (no loaders are unpacked then), run in a copy made by
# `scripts/gpu-pack.sh stage DIR` (this script refuses to replace a node_modules it did not unpack).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUDGET=480 QUICK=0 ONLY=
while [ $# -gt 0 ]; do
  case "$1" in
    --budget) BUDGET=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --only) ONLY=",$2,"; shift 2 ;;
    *) echo "gpu-check: unknown argument $1" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-$ROOT/.gpu-out}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/gpu-check.XXXXXX)
LOG=$OUT/gpu-check.log
exec > >(tee "$LOG") 2>&1
TEE=$!
T0=$(date +%s)
DEADLINE=$((T0 + BUDGET))
SCALE=$(awk -v b="$BUDGET" 'BEGIN { print b / 480 }')
PARTS=$WORK/parts.tsv
: > "$PARTS"
now() { date +%s; }
note() { echo "[gpu-check +$(($(now) - T0)) s] $*"; }

# --- unpack ---------------------------------------------------------------------------------------------------------
unxz_to() { # file.xz → stdout, with xz or Python's lzma
  if command -v xz >/dev/null; then xz -dc "$1"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi
}
mkdir -p .gpu-run
NODE=$ROOT/.gpu-run/node
nodexz=$(ls .gpu-carry/node-*.xz 2>/dev/null | head -1)
if [ -z "$nodexz" ] || [ ! -f .gpu-carry/runtime.tar.xz ]; then
  echo "gpu-check: .gpu-carry/ is missing or incomplete: run scripts/gpu-pack.sh pack here and carry .gpu-carry" >&2; exit 1
fi
if [ -e node_modules ] && [ ! -f node_modules/.gpu-runtime ]; then
  echo "gpu-check: $ROOT/node_modules is not the carried runtime: run the check in a copy (scripts/gpu-pack.sh stage DIR) or on the device" >&2; exit 1
fi
unxz_to "$nodexz" > "$NODE.tmp" && chmod +x "$NODE.tmp" && mv "$NODE.tmp" "$NODE"
rm -rf node_modules dist
unxz_to .gpu-carry/runtime.tar.xz | tar -xf - && touch node_modules/.gpu-runtime
"$NODE" --version >/dev/null 2>&1 || { echo "gpu-check: the carried node does not run here" >&2; exit 1; }
note "node $("$NODE" --version) ($nodexz) and the runtime unpacked; $(uname -m), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
export PATH="$ROOT/.gpu-run:$PATH"

# --- the Vulkan loader (hardware adapter only) ----------------------------------------------------------------------
# (only where an NVIDIA driver is: never into the / of a development machine)
if [ "${MUCODEC_WEBGPU_ADAPTER:-hardware}" != software ]; then
  if ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1 && [ -d .gl ] && [ "$(id -u)" = 0 ] && { [ -e /dev/nvidiactl ] || command -v nvidia-smi >/dev/null; }; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    note "Vulkan loader unpacked from .gl ($(ls .gl | wc -l) packages)"
  fi
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader > "$WORK/nvidia-smi.txt" 2>&1
fi

# --- parts ------------------------------------------------------------------------------------------------------------
# part NAME BUDGET_S CMD... : run CMD (its own process group, killed at the budget), record status and seconds
part() {
  local name=$1 want=$2; shift 2
  if [ -n "$ONLY" ] && [[ $ONLY != *",$name,"* ]]; then return 0; fi
  local left=$((DEADLINE - $(now) - 10)) lim
  lim=$(awk -v w="$want" -v s="$SCALE" 'BEGIN { printf "%d", w * s }')
  [ "$lim" -gt "$left" ] && lim=$left
  if [ "$lim" -lt 15 ]; then
    note "$name: SKIPPED (${left} s left of the ${BUDGET} s budget)"
    printf '%s\tskipped\t0\t%s\n' "$name" "$lim" >> "$PARTS"
    return 0
  fi
  note "$name: start (budget $lim s)"
  local t=$(now) rc
  timeout -k 10 "$lim" bash -c '"$@"' _ "$@" > "$WORK/$name.log" 2>&1
  rc=$?
  sed "s/^/  $name| /" "$WORK/$name.log" | grep -v 'artificially reduced'
  local st=ok
  [ $rc = 124 ] || [ $rc = 137 ] && st=timeout
  [ $st = ok ] && [ $rc != 0 ] && st="failed (exit $rc)"
  # a bench group whose child failed still exits 0: its rows file says how many rows came back
  grep -q 'child exited with code [1-9]' "$WORK/$name.log" && st="failed (bench child: $(grep -m1 -o 'child exited with code [0-9]*' "$WORK/$name.log"))"
  printf '%s\t%s\t%s\t%s\n' "$name" "$st" "$(($(now) - t))" "$lim" >> "$PARTS"
  note "$name: $st in $(($(now) - t)) s"
}

MUCODEC="$NODE $ROOT/bin/mucodec.js"
adapter() {
  if $MUCODEC --backend webgpu backend --verbose; then return 0; fi
  # the device README: when no driver is found, name the NVIDIA ICD and EGL vendor files
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  if [ -f $icd ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
    echo "retrying with VK_DRIVER_FILES=$icd"
    VK_DRIVER_FILES=$icd __EGL_VENDOR_LIBRARY_FILENAMES=$egl $MUCODEC --backend webgpu backend --verbose &&
      echo "export VK_DRIVER_FILES=$icd __EGL_VENDOR_LIBRARY_FILENAMES=$egl" > "$WORK/env.sh"
  else
    false
  fi || {
    echo "no webgpu adapter; what the Vulkan loader can see:"
    ldconfig -p | grep -E 'libvulkan|GLX_nvidia|EGL_nvidia' | head
    ls /usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>&1 | head
    return 1
  }
}
export NODE ROOT WORK MUCODEC
export -f adapter
part adapter 40 adapter
[ -f "$WORK/env.sh" ] && . "$WORK/env.sh"
export VK_DRIVER_FILES __EGL_VENDOR_LIBRARY_FILENAMES 2>/dev/null || true

mapfile -t CASES < .gpu-carry/fixtures/CASES
part parity 80 $MUCODEC --backend webgpu parity "${CASES[@]/#/.gpu-carry/fixtures/}"

STEPS=10
[ $QUICK = 1 ] && STEPS=2
reconstruct() { # 2 s of test_wav/test.wav, tiny model, same seed on webgpu and wasm (in parallel), max_abs
  "$NODE" --input-type=module -e "
    const { readWav, writeWav } = await import('$ROOT/dist/src/audio/wav.js');
    const a = await readWav('$ROOT/test_wav/test.wav');
    const n = Math.round(a.sampleRate * 2);
    await writeWav('$WORK/short.wav', { sampleRate: a.sampleRate, channels: a.channels.map((c) => c.slice(0, n)) });" || return 1
  local t=$(now)
  $MUCODEC --backend webgpu reconstruct "$WORK/short.wav" -o "$WORK/gpu.wav" --float --seed 1 --steps $STEPS --quiet & local g=$!
  $MUCODEC --backend wasm reconstruct "$WORK/short.wav" -o "$WORK/wasm.wav" --float --seed 1 --steps $STEPS --quiet & local w=$!
  wait $g; local rg=$?; echo "webgpu reconstruct: exit $rg at $(($(now) - t)) s"
  wait $w; local rw=$?; echo "wasm reconstruct: exit $rw at $(($(now) - t)) s"
  [ $rg = 0 ] && [ $rw = 0 ] || return 1
  "$NODE" --input-type=module -e "
    const { readWav } = await import('$ROOT/dist/src/audio/wav.js');
    const [x, y] = [await readWav('$WORK/gpu.wav'), await readWav('$WORK/wasm.wav')];
    let maxAbs = 0, peak = 0, n = 0;
    for (let c = 0; c < y.channels.length; c++) for (let i = 0; i < y.channels[c].length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(x.channels[c][i] - y.channels[c][i])); peak = Math.max(peak, Math.abs(y.channels[c][i])); n++;
    }
    const same = x.channels.length === y.channels.length && x.channels[0].length === y.channels[0].length;
    const r = { steps: $STEPS, seed: 1, input_s: 2, values: n, same_shape: same, max_abs: maxAbs, peak, within_1e4: same && maxAbs <= 1e-4 };
    console.log('RECONSTRUCT ' + JSON.stringify(r));
    process.exitCode = r.within_1e4 ? 0 : 1;"
}
export STEPS
export -f reconstruct now
part reconstruct $([ $QUICK = 1 ] && echo 160 || echo 100) reconstruct  # a whole window of VAE + vocoder: minutes on llvmpipe

BENCH=("$NODE" --max-old-space-size=16384 "$ROOT/dist/bench/run.js" --backend webgpu --runs 1 --no-merge)
Q=()
[ $QUICK = 1 ] && Q=(--quick)
part dit_block 70 "${BENCH[@]}" dit --no-cfg "${Q[@]}" --out "$WORK/bench-dit_block.json"
if [ $QUICK = 1 ]; then { [ -z "$ONLY" ] || [[ $ONLY == *,dit_cfg,* ]]; } && printf 'dit_cfg\tskipped (--quick)\t0\t0\n' >> "$PARTS"
else part dit_cfg 100 "${BENCH[@]}" dit --no-block --no-ceilings --out "$WORK/bench-dit_cfg.json"; fi
if [ $QUICK = 1 ]; then part window 150 "${BENCH[@]}" window --tiny --steps $STEPS --out "$WORK/bench-window.json"
else part window 170 "${BENCH[@]}" window --steps 20 --out "$WORK/bench-window.json"; fi
part vae 45 "${BENCH[@]}" vae "${Q[@]}" --out "$WORK/bench-vae.json"
part vocoder 35 "${BENCH[@]}" vocoder "${Q[@]}" --out "$WORK/bench-vocoder.json"
part muq 50 "${BENCH[@]}" encode --no-song "${Q[@]}" --out "$WORK/bench-muq.json"

# --- results ----------------------------------------------------------------------------------------------------------
note "writing $OUT/gpu-check.json and $OUT/bench-webgpu.json"
"$NODE" --input-type=module -e "
  import { readFileSync, existsSync, writeFileSync } from 'node:fs';
  const W = '$WORK', rd = (f) => existsSync(W + '/' + f) ? readFileSync(W + '/' + f, 'utf8') : '';
  const parts = rd('parts.tsv').trim().split('\n').filter(Boolean).map((l) => {
    const [name, status, seconds, budget] = l.split('\t');
    const log = rd(name + '.log').split('\n').filter((x) => x.trim() && !/artificially reduced/.test(x));
    const errors = log.filter((x) => /error|Error|refused|FAIL|over this adapter/.test(x)).slice(-5);
    return { name, status, seconds: Number(seconds), budget_s: Number(budget), errors, log_tail: log.slice(-4) };
  });
  const rows = [];
  for (const p of parts) {
    const f = W + '/bench-' + p.name + '.json';
    if (existsSync(f)) for (const r of JSON.parse(readFileSync(f, 'utf8')).rows ?? []) rows.push({ part: p.name, ...r });
  }
  const parity = rd('parity.log').split('\n').filter((l) => /^(PASS|FAIL) /.test(l));
  const rec = rd('reconstruct.log').split('\n').find((l) => l.startsWith('RECONSTRUCT '));
  const doc = {
    date: new Date().toISOString(), budget_s: $BUDGET, quick: $QUICK === 1, wall_s: Math.round((Date.now() / 1000) - $T0),
    adapter_requested: process.env.MUCODEC_WEBGPU_ADAPTER ?? 'hardware', node: process.version,
    nvidia_smi: rd('nvidia-smi.txt').trim() || null,
    adapter: rd('adapter.log').split('\n').filter((l) => /^(backend|webgpu)/.test(l)),
    parity: { lines: parity, passed: parity.filter((l) => l.startsWith('PASS')).length, failed: parity.filter((l) => l.startsWith('FAIL')).length,
      summary: rd('parity.log').split('\n').filter((l) => /passed, \d+ failed/.test(l)).pop() ?? null },
    reconstruct: rec ? JSON.parse(rec.slice(12)) : null,
    parts, rows,
  };
  writeFileSync('$OUT/gpu-check.json', JSON.stringify(doc, null, 1) + '\n');
  writeFileSync('$OUT/bench-webgpu.json', JSON.stringify({ date: doc.date, machine: rows[0]?.machine ?? null, threads: 1, backend: 'webgpu',
    command: 'scripts/gpu-check.sh', adapter: doc.adapter, rows }, null, 1) + '\n');
  for (const p of parts) console.log(p.name.padEnd(12), p.status.padEnd(28), String(p.seconds).padStart(4) + ' s', p.errors.length ? '| ' + p.errors.at(-1).slice(0, 160) : '');
  console.log(rows.length + ' bench rows; parity ' + doc.parity.passed + ' passed, ' + doc.parity.failed + ' failed; reconstruct ' + JSON.stringify(doc.reconstruct));
" || printf '{"error": "the results could not be assembled: see gpu-check.log"}\n' > "$OUT/gpu-check.json"
note "done in $(($(now) - T0)) s"
rm -rf "$WORK"
exec >&- 2>&-
wait "$TEE" 2>/dev/null || true
