#!/usr/bin/env bash
# The GPU speed report in one call: the project's CycleGAN step at 256 px next to the yardstick
# (same run), a profile by kernel and by input shape, Inductor's CUDA graphs as a candidate, and the
# CUDA tests. Each part has its own time limit so that one slow compilation cannot take the others with it.
#   bash benchmarks/gpu_speed.sh REFERENCE_SCRIPT OUT_DIR
# SIZE, ITERS and WARMUP (256, 20, 6) change the image size and the timed steps, e.g. to try it on a CPU
# with SIZE=32 ITERS=1 WARMUP=1.
set -u
ref=${1:?path of reference_cyclegan_step.py}
out=${2:?output folder}
mkdir -p "$out"
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
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" | tee -a "$out/gpu.txt"
# On an H100: 3 minutes for the first (it also runs the yardstick, counts FLOPs and times the bf16
# peak), under 1 for the profile (the compiled graphs are cached by then), about 2 for the CUDA-graph
# variant (compilation), 90 s for the tests: some 8 minutes in all. `--channels-last false` times the
# NCHW layout, `--batch 64` the larger batch (114.0 and 126.8 pairs/s against 123.6, RESULTS.md).
step default_b32 200 --batch 32 --reference "$ref"
step profile_b32 120 --batch 32 --iters 5 --no-flops --reference /nonexistent --profile "$out/profile.txt"
# Inductor's CUDA graphs (one replay per compiled call instead of a launch per kernel): a candidate
# for the launch gaps the profile shows, not yet the default.
TORCHINDUCTOR_CUDAGRAPHS=1 step cudagraphs_b32 150 --batch 32 --no-flops --reference /nonexistent
echo "== CUDA tests $(date +%T)"
timeout -k 5 110 python -m pytest -q -x tests/test_acceleration.py -k "not runtime_params" >"$out/tests.log" 2>&1; echo "rc=$?"; tail -n 3 "$out/tests.log"
echo "== summary"
python -c "
import json
for l in open('$out/results.jsonl'):
    r = json.loads(l); p = r['project']; ref = r['reference'] if isinstance(r['reference'], dict) else {}
    print(r['variant'], p['img_pairs_per_s'], 'pairs/s', p.get('fraction_of_bf16_peak', ''), 'ref', ref.get('img_pairs_per_s', '-'), r.get('project_over_reference_throughput', ''))
"
