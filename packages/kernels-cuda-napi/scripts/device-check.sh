#!/usr/bin/env bash
# The GPU check of backend "cuda", in one call of the device tool (an H200 with nvcc 13 and
# PyTorch 2.11 + cuBLAS wheels, no Node). Prepare on the build machine, then run there:
#
#   npm run build && node packages/kernels-cuda-napi/scripts/device-pack.mjs     # -> .tmp/cuda-device
#   device tool: run(command="bash packages/kernels-cuda-napi/scripts/device-check.sh",
#                    carry=[".tmp/cuda-device"], timeout_s=600)
#
# Phases, each under its own time limit and all under DEADLINE seconds (the tool allows 600
# a command): unpack Node and the built runtime; rebuild the addon with nvcc there (the
# carried prebuilt one stays if that fails); report the device and availability; conformance
# levels 2, 3, 4 on cuda; the GPT-2 124M bench, Tessera then PyTorch eager, same model and
# batch; level 1 (tfjs-core's own suite, the slowest) with what time is left. Everything lands
# in $OUT (summary.md first); a phase that fails or runs out of time is recorded and the next
# one runs.
#
# Knobs: PHASES="build status conformance bench level1"  LEVELS="2 3 4"  BATCH=8  SEQ=1024
#        STEPS=5  DEADLINE=540  TORCH_TF32=0  PEAK_TFLOPS=67 (H100/H200 SXM fp32; TF32: 495)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"
PACK="${TESSERA_DEVICE_PACK:-$ROOT/.tmp/cuda-device}"
OUT="${OUT:-$ROOT/.tmp/device-out}"
WORK="${TMPDIR:-/tmp}/tessera-device"
PHASES="${PHASES:-build status conformance bench level1}"
LEVELS="${LEVELS:-2 3 4}"
BATCH="${BATCH:-8}"
SEQ="${SEQ:-1024}"
STEPS="${STEPS:-5}"
DEADLINE="${DEADLINE:-540}"
PEAK_TFLOPS="${PEAK_TFLOPS:-67}"
START=$(date +%s)
mkdir -p "$OUT" "$WORK/bin"
SUMMARY="$OUT/summary.md"
: >"$SUMMARY"

log() { echo "[device-check +$(($(date +%s) - START))s] $*" | tee -a "$OUT/device-check.log" >&2; }
note() { echo "$*" >>"$SUMMARY"; }
left() { echo $((DEADLINE - ($(date +%s) - START))); }
want() { [[ " $PHASES " == *" $1 "* ]]; }

# Runs "$@" for at most min($1, time left - 10) seconds; records the outcome in the summary.
phase() {
  local name="$1" budget="$2"
  shift 2
  local remaining=$(($(left) - 10))
  ((remaining < budget)) && budget=$remaining
  if ((budget < 15)); then
    log "$name: skipped, out of time"
    note "- $name: **skipped** (out of time)"
    return 1
  fi
  log "$name: start (limit ${budget}s)"
  local t0=$(date +%s) rc
  timeout --kill-after=5 "$budget" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
  rc=$?
  local dt=$(($(date +%s) - t0))
  if ((rc == 124 || rc == 137)); then
    note "- $name: **timed out** after ${dt}s (limit ${budget}s); see $name.err"
  elif ((rc != 0)); then
    # The first error line says more than Node's trailing version banner.
    local why
    why=$(grep -m1 -E '^[A-Za-z.]*Error: |^tessera ' "$OUT/$name.err" || tail -n 2 "$OUT/$name.err")
    note "- $name: **failed** (exit $rc, ${dt}s): \`$(echo "$why" | tr '\n' ' ' | cut -c1-300)\`"
  else
    note "- $name: ok (${dt}s)"
  fi
  log "$name: exit $rc after ${dt}s"
  return $rc
}

# ---- unpack: Node and the runtime (no xz binary needed: python's lzma does it) ----------
note "# device check of backend \"cuda\" ($(date -u +%FT%TZ))"
note ""
if [[ ! -f "$PACK/node.xz" ]]; then
  note "- unpack: **no pack** at $PACK: run scripts/device-pack.mjs on the build machine and carry .tmp/cuda-device"
  log "no pack at $PACK"
  exit 2
fi
python3 - "$PACK" "$WORK" "$ROOT" <<'PY' || { note "- unpack: **failed**"; exit 2; }
import lzma, os, shutil, sys, tarfile
pack, work, root = sys.argv[1:4]
with lzma.open(os.path.join(pack, "node.xz")) as src, open(os.path.join(work, "bin", "node"), "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(os.path.join(work, "bin", "node"), 0o755)
with tarfile.open(os.path.join(pack, "runtime.tar.xz")) as t:
    t.extractall(root)
with tarfile.open(os.path.join(pack, "headers.tar.xz")) as t:
    t.extractall(work)
PY
export PATH="$WORK/bin:$PATH"
log "node $(node --version) unpacked"
note "- unpack: ok (node $(node --version))"

# ---- build the addon there (nvcc 13), keeping the carried one as a fallback --------------
ADDON=packages/kernels-cuda-napi/dist/native/tessera_cuda.node
if want build; then
  [[ -f "$ADDON" ]] && cp "$ADDON" "$WORK/prebuilt.node"
  if phase build 120 env npm_config_nodedir="$WORK/node-headers" TESSERA_CUDA_REQUIRED=1 \
    node packages/kernels-cuda-napi/scripts/build-native.mjs; then
    note "  - $(tail -n 1 "$OUT/build.out")"
    cp packages/kernels-cuda-napi/PTXAS.md "$OUT/PTXAS.md" 2>/dev/null
  elif [[ -f "$WORK/prebuilt.node" ]]; then
    mkdir -p "$(dirname "$ADDON")" && cp "$WORK/prebuilt.node" "$ADDON"
    rm -f packages/kernels-cuda-napi/dist/native/build-error.txt
    note "  - using the carried prebuilt addon"
  fi
fi

# ---- the device and the backend's own view of it ----------------------------------------
if want status; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv >"$OUT/nvidia-smi.csv" 2>&1
  note "- GPU: \`$(tail -n 1 "$OUT/nvidia-smi.csv")\`"
  phase status 60 node --input-type=module -e "
    const cuda = await import('@tessera/kernels-cuda-napi');
    const s = cuda.cudaBackendStatus();
    console.log(JSON.stringify(s));
    if (!s.available) process.exit(1);"
  note "  - cuda: \`$(cat "$OUT/status.out" "$OUT/status.err" 2>/dev/null | head -c 600 | tr '\n' ' ')\`"
fi

# ---- conformance (levels 2-4 here, level 1 at the end) ----------------------------------
conformance() {
  local level="$1" budget="$2"
  phase "conformance-L$level" "$budget" node apps/cli/dist/bin.js conformance --backend cuda --level "$level" \
    --report "$OUT/conformance-L$level.md" --failures-only
  [[ -f "$OUT/conformance-L$level.md" ]] && note "  - report: conformance-L$level.md; $(grep -m1 -iE 'passed|failed' "$OUT/conformance-L$level.md" | cut -c1-200)"
}
if want conformance; then
  for level in $LEVELS; do
    case "$level" in
      2) conformance 2 120 ;;
      3) conformance 3 60 ;;
      4) conformance 4 120 ;;
      *) conformance "$level" 120 ;;
    esac
  done
fi

# ---- the bench: Tessera on cuda, then PyTorch eager, same model, batch and GPU -----------
if want bench; then
  phase bench-cuda 150 node packages/kernels-cuda-napi/bench/bench.mjs --batch "$BATCH" --seq "$SEQ" \
    --steps "$STEPS" --peak-tflops "$PEAK_TFLOPS" --json
  torch_flags=()
  [[ "${TORCH_TF32:-0}" == 1 ]] && torch_flags+=(--tf32)
  phase bench-torch 90 python3 packages/kernels-cuda-napi/bench/torch_gpt.py --batch "$BATCH" --seq "$SEQ" \
    --steps "$STEPS" --peak-tflops "$PEAK_TFLOPS" "${torch_flags[@]}"
  node --input-type=module -e "
    import { readFileSync } from 'node:fs';
    const read = (f) => { try { return JSON.parse(readFileSync(f, 'utf8').trim().split('\n').pop()); } catch { return null; } };
    const t = read('$OUT/bench-cuda.out'), p = read('$OUT/bench-torch.out');
    const row = (r) => r ? \`| \${r.side} | \${r.batch} | \${r.seq} | \${r.msPerStep} | \${r.tokensPerSec} | \${(100 * r.mfu).toFixed(1)}% | \${r.loss} |\` : '| (no result) |';
    console.log('\n## GPT-2 124M training, fp32 (TF32 off), same GPU\n');
    console.log('| side | B | T | ms/step | tokens/s | MFU (of $PEAK_TFLOPS TFLOPS) | loss |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    console.log(row(t)); console.log(row(p));
    if (t && p) console.log(\`\nTessera / PyTorch eager: \${(t.tokensPerSec / p.tokensPerSec).toFixed(2)}x\`);
    if (t?.hostFallbacks) console.log(\`\nHost fallbacks per run: \${JSON.stringify(t.hostFallbacks)}\`);
  " >>"$SUMMARY" 2>>"$OUT/device-check.log"
fi

if want level1; then
  conformance 1 "$(($(left) - 15))"
fi

log "done in $(($(date +%s) - START))s"
note ""
note "total: $(($(date +%s) - START))s of a ${DEADLINE}s deadline"
cat "$SUMMARY"
