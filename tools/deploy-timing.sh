#!/usr/bin/env bash
# The README's deploy timing table, rerunnable: a policy bundle of the demo's student and head at SIZE×SIZE,
# timed in Chromium by `rlpkd bench deploy` (wasm, 1 thread).
#
#   tools/deploy-timing.sh [SIZE=640] [OUT=runs/deploy-timing-SIZE] [ROUNDS=3]
#
# Timing does not depend on the weights, only on the graphs' shapes, so the bundle is built from seeded graphs
# of the demo's architectures at SIZE (teacher ResNet-50-FPN ×0.125, student ResNet-18-FPN ×0.125, FPN 64,
# FCOS head with 2 tower convs over P2..P5, 3 classes) and a run cut to one short epoch per phase, trained with
# the deploy-time policy state so that `rlpkd export-policy` accepts it. Builds the project first (`npm run
# build`: the CLI and the browser runtime the benchmark serves); needs Debian's chromium. About 3 min at 640 on 2 cores, plus the benchmark (~1 min per round).
set -euo pipefail
SIZE="${1:-640}"
OUT="${2:-runs/deploy-timing-$SIZE}"
ROUNDS="${3:-3}"
cd "$(dirname "$0")/.."
RLPKD="node bin/rlpkd.js"
npm run build --silent
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

$RLPKD models build --arch resnet50-fpn --width-mult 0.125 --fpn-channels 64 --seed 1 \
  --height "$SIZE" --width "$SIZE" --out "$OUT/teacher.onnx"
$RLPKD models build --arch resnet18-fpn --width-mult 0.125 --fpn-channels 64 --seed 2 \
  --height "$SIZE" --width "$SIZE" --out "$OUT/student.onnx"

scenes=(--set data.image_size="$SIZE" --set data.synthetic.image_size="$SIZE" --set data.batch_size=4
  --set data.synthetic.train_images=8 --set data.synthetic.val_images=4 --set run.output_dir="$OUT/runs")

# The FCOS head at SIZE (its anchor points depend on the input size): one epoch on the frozen teacher.
$RLPKD teach --config configs/teach_demo.yaml --run-name head "${scenes[@]}" \
  --set teach.backbone="$OUT/teacher.onnx" --set teach.freeze_backbone=true --set teach.epochs=1 \
  --set teach.eval_every_epochs=1
head_run="$(ls -d "$OUT"/runs/head-* | tail -n 1)"

$RLPKD train --config configs/demo.yaml --run-name timing "${scenes[@]}" --set data.holdout=4 \
  --set models.teacher="$OUT/teacher.onnx" --set models.student="$OUT/student.onnx" \
  --set models.teacher_head="$head_run/head.onnx" --set rl.policy.state=deploy \
  --set phases.pretrain.epochs=1 --set phases.policy.epochs=1 --set phases.joint.epochs=0 \
  --set phases.meta.epochs=0 --set rl.ppo.rollout_episodes=4 --set rl.ppo.minibatch_size=4
run="$(ls -d "$OUT"/runs/timing-* | tail -n 1)"

rm -rf "$OUT/bundle"
$RLPKD export-policy --run "$run" --out "$OUT/bundle"
$RLPKD bench deploy --bundle "$OUT/bundle" --rounds "$ROUNDS" | tee "$OUT/bench-deploy.txt"
