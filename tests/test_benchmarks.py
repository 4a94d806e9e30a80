"""The speed report runs as its docstring says and prints the figures the notes quote (no timing is asserted)."""
import json
import subprocess
import sys

from tests.conftest import REPO


def test_cyclegan_step_reports_the_project_step_the_yardstick_and_the_params_yaml_gan():
    proc = subprocess.run(
        [sys.executable, "benchmarks/cyclegan_step.py", "--size", "32", "--batch", "1", "--iters", "1", "--warmup", "1",
         "--threads", "1", "--device", "cpu", "--no-flops", "--project-defaults", "--set", "warp=none"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["project"]["img_pairs_per_s"] > 0
    # the params.yaml CycleGAN (semantic classifier included) with one key overridden
    assert result["params_yaml"]["set"] == ["warp=none"] and result["params_yaml"]["img_pairs_per_s"] > 0
    if isinstance(result["reference"], dict):  # the yardstick ships beside the project (../shared/bench)
        assert result["project_over_reference_throughput"] > 0


def test_relabel_cost_times_the_whole_set_and_the_pool():
    proc = subprocess.run(
        [sys.executable, "benchmarks/relabel_cost.py", "--sizes", "40", "100", "--pool", "64", "--image-size", "16",
         "--classes", "5", "--repeats", "1", "--threads", "1", "--device", "cpu"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])["rows"]
    assert [(r["target_images"], r["pool"]) for r in rows] == [(40, 64), (100, 64)]
    assert rows[0]["pooled_s"] == rows[0]["whole_set_s"]  # a set that fits the pool is labelled whole
    assert all(r["whole_set_s"] > 0 and r["pooled_s"] > 0 for r in rows)


def test_inference_throughput_reports_translation_and_prediction_next_to_a_plain_loop():
    proc = subprocess.run(
        [sys.executable, "benchmarks/inference_throughput.py", "--images", "40", "--batch", "16", "--repeats", "1", "--threads", "1",
         "--device", "cpu"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["images"] == 40 and result["translate"]["batch"] == 16
    for path in ("translate", "predict"):
        r = result[path]
        assert r["project_images_per_s"] > 0 and r["plain_fp32_images_per_s"] > 0
        assert abs(r["project_over_plain"] - r["project_images_per_s"] / r["plain_fp32_images_per_s"]) < 0.01
