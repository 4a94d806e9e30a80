#!/usr/bin/env bash
# The GPU speed report in one call: the project's CycleGAN step at 256 px next to the yardstick
# (same run), a profile by kernel, by input shape and by layout copy (which tensor is converted,
# inside which operator), Inductor's CUDA graphs as a candidate, translation and classification
# images/s, and the CUDA tests. Each part has its own time limit so that one slow compilation cannot
# take the others with it.
#   bash benchmarks/gpu_speed.sh REFERENCE_SCRIPT OUT_DIR
# PARTS picks the parts (default: "tests default profile cudagraphs eager inference", about 10 minutes
# on an H100; split them over two calls where one call may not take that long). Two candidates run
# only when named: "tuned" (Inductor's pointwise and reduction autotuning) and "double" (twice
# the batch). SIZE, BATCH, ITERS and WARMUP (256, 32, 20, 6) change the image size, the batch and the
# timed steps, IMAGES (512) the images the inference part translates, e.g. to try it on a CPU with
# SIZE=32 BATCH=1 ITERS=1 WARMUP=1 IMAGES=32 PARTS="default profile inference".
set -u
ref=${1:?path of reference_cyclegan_step.py}
out=${2:?output folder}
mkdir -p "$out"
parts=" ${PARTS:-tests default profile cudagraphs eager inference} "
want() { [[ $parts == *" $1 "* ]]; }
batch=${BATCH:-32}
export PYTHONUNBUFFERED=1
step() {  # step NAME SECONDS ARGS...: one run of cyclegan_step.py, its JSON line appended to results.jsonl
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s) $(date +%T)"
  timeout -k 5 "$limit" python benchmarks/cyclegan_step.py --size "${SIZE:-256}" --iters "${ITERS:-20}" --warmup "${WARMUP:-6}" "$@" >"$out/$name.log" 2>&1
  echo "rc=$? $(date +%T)"
  tail -n 1 "$out/$name.log" | grep '^{' | python -c "import json,sys; [print(json.dumps({'variant': '$name', **json.loads(l)})) for l in sys.stdin]" >>"$out/results.jsonl"
  tail -n 3 "$out/$name.log"
}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$out/gpu.txt"
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')" | tee -a "$out/gpu.txt"
# The CUDA tests first (90 s on an H100): what follows measures code they have checked.
if want tests; then
  echo "== CUDA tests $(date +%T)"
  timeout -k 5 110 python -m pytest -q -x tests/test_acceleration.py -k "not runtime_params" >"$out/tests.log" 2>&1
  rc=$?; echo "rc=$rc"
  # a failure's traceback in the call's own output too, in case the files do not come back
  if [ "$rc" = 0 ]; then tail -n 3 "$out/tests.log"; else grep -v '^$' "$out/tests.log" | tail -n 60; fi
fi
# On an H100: 3 minutes for the first (it also runs the yardstick, counts FLOPs and times the bf16
# peak), under 1 for the profile (the compiled graphs are cached by then), about 2 for the CUDA-graph
# variant (compilation), under 1 for the inference figures. `--channels-last false` times the
# NCHW layout (114.0 pairs/s against 123.6, RESULTS.md); the "double" part, twice the batch.
want default && step default_b$batch 200 --batch "$batch" --reference "$ref"
# The profile's last section (benchmarks/layout_copies.py) lists every aten::copy_ with the operators
# it ran inside and the strides it converted: the per-convolution copy of RESULTS.md shows there.
want profile && step profile_b$batch 150 --batch "$batch" --iters 5 --no-flops --reference /nonexistent --profile "$out/profile.txt"
# Inductor's CUDA graphs (one replay per compiled call instead of a launch per kernel): a candidate
# for the launch gaps the profile shows, not yet the default.
want cudagraphs && TORCHINDUCTOR_CUDAGRAPHS=1 step cudagraphs_b$batch 150 --batch "$batch" --no-flops --reference /nonexistent
# Inductor tuning its own kernels (block sizes of the norm, pad and elementwise kernels, the 50 ms of
# a step that are not convolutions; cuDNN's autotuner already picks the convolutions): a candidate,
# not yet the default. Compiles for longer (a few minutes on an H100).
want tuned && TORCHINDUCTOR_MAX_AUTOTUNE_POINTWISE=1 TORCHINDUCTOR_COORDINATE_DESCENT_TUNING=1 \
  step tuned_b$batch 300 --batch "$batch" --no-flops --reference /nonexistent
# Twice the batch (at 64: 126.8 against 123.6 pairs/s before the NHWC-keeping norm, RESULTS.md).
want double && step default_b$((2 * batch)) 200 --batch $((2 * batch)) --no-flops --reference /nonexistent
# Uncompiled (runtime.compile false; translate() always runs so): NHWC against NCHW. Eagerly, ATen's
# instance norm and reflection pad work in NCHW, so NHWC convolutions pay a layout copy each way
# (53.9 against 73.4 pairs/s on an H100, RESULTS.md): uncompiled runs take NCHW.
if want eager; then
  step eager_nhwc_b$batch 90 --batch "$batch" --iters 10 --warmup 3 --compile false --channels-last true --no-flops --reference /nonexistent
  step eager_nchw_b$batch 90 --batch "$batch" --iters 10 --warmup 3 --compile false --channels-last false --no-flops --reference /nonexistent
fi
if want inference; then
  echo "== inference images/s (limit 90s) $(date +%T)"
  timeout -k 5 90 python benchmarks/inference_throughput.py --reference --size "${SIZE:-256}" --images "${IMAGES:-512}" --batch 64 >"$out/inference.log" 2>&1
  echo "rc=$?"; tail -n 1 "$out/inference.log"
fi
echo "== summary"
[ -f "$out/results.jsonl" ] && python -c "
import json
for l in open('$out/results.jsonl'):
    r = json.loads(l); p = r['project']; ref = r['reference'] if isinstance(r['reference'], dict) else {}
    print(r['variant'], p['img_pairs_per_s'], 'pairs/s', p.get('fraction_of_bf16_peak', ''), 'ref', ref.get('img_pairs_per_s', '-'), r.get('project_over_reference_throughput', ''))
"
