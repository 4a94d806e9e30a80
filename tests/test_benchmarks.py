"""The speed report runs as its docstring says and prints the figures the notes quote (no timing is asserted)."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e  # each runs a measurement script whole (about 65 s for the file): not among the fast ones


def test_cyclegan_step_reports_the_project_step_the_yardstick_and_the_params_yaml_gan(tmp_path):
    proc = subprocess.run(
        [sys.executable, "benchmarks/cyclegan_step.py", "--size", "32", "--batch", "1", "--iters", "1", "--warmup", "1",
         "--threads", "1", "--device", "cpu", "--no-flops", "--project-defaults", "--set", "warp=none",
         "--profile", str(tmp_path / "profile.txt")],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["project"]["img_pairs_per_s"] > 0
    # the params.yaml CycleGAN (semantic classifier included) with one key overridden
    assert result["params_yaml"]["set"] == ["warp=none"] and result["params_yaml"]["img_pairs_per_s"] > 0
    if isinstance(result["reference"], dict):  # the yardstick ships beside the project (../shared/bench)
        assert result["project_over_reference_throughput"] > 0
    # the profile: kernels, then the layout copies; per step 4 ResNet generator calls x 24 convolutions (2 transposed) + 4 PatchGAN calls x 5
    assert result["profile"]["steps"] == 2 and result["profile"]["convolutions"]["per_step"] == 116
    assert "Layout copies over 2 steps" in (tmp_path / "profile.txt").read_text()


def test_the_gpu_speed_script_runs_through_on_the_cpu(tmp_path):
    # The one-command GPU report, at its smallest: each part it names leaves its JSON line, whatever the device.
    ref = REPO.parent / "shared/bench/reference_cyclegan_step.py"
    env = {**os.environ, "PARTS": "default inference", "SIZE": "32", "BATCH": "1", "ITERS": "1", "WARMUP": "1", "IMAGES": "32",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.run(["bash", "benchmarks/gpu_speed.sh", str(ref), str(tmp_path / "out")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "out/results.jsonl").read_text().splitlines()]
    assert [r["variant"] for r in rows] == ["default_b1"] and rows[0]["size"] == 32 and rows[0]["batch"] == 1
    assert rows[0]["project"]["img_pairs_per_s"] > 0 and rows[0]["flops_per_iter"] > 0
    if ref.is_file():
        assert rows[0]["project_over_reference_throughput"] > 0
    inference = json.loads((tmp_path / "out/inference.log").read_text().strip().splitlines()[-1])
    assert inference["image_size"] == 32 and inference["images"] == 32 and inference["translate"]["project_images_per_s"] > 0
    assert "== summary" in proc.stdout and "default_b1 " in proc.stdout


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


def test_the_reference_inference_run_needs_no_config_stack():
    """`--reference` is what a bare GPU box runs (torch and the project's modules, no pydantic):
    with pydantic made unimportable it still reports both paths, for the reference generator."""
    script = ("import runpy, sys; sys.modules['pydantic'] = None; sys.path.insert(0, 'benchmarks'); "
              "sys.argv = ['inference_throughput.py', '--reference', '--size', '16', '--images', '8', '--batch', '4', "
              "'--repeats', '1', '--threads', '1', '--device', 'cpu']; "
              "runpy.run_path('benchmarks/inference_throughput.py', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["generator"].startswith("reference resnet-9") and result["image_size"] == 16
    assert result["translate"]["project_images_per_s"] > 0 and result["predict"]["project_images_per_s"] > 0


def test_layout_copies_names_the_convolution_input_that_was_converted(tmp_path):
    """A channels_last convolution given an NCHW input: the report counts it and names the copy it
    caused, inside the convolution, with the strides it came in and left with."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    sys.path.insert(0, str(REPO / "benchmarks"))
    import layout_copies

    conv = torch.nn.Conv2d(8, 16, 3).to(memory_format=torch.channels_last)
    nchw = torch.randn(2, 8, 12, 12)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(2):  # two "steps": one converted input each, one input already in NHWC
            conv(nchw)
            conv(nchw.contiguous(memory_format=torch.channels_last))
    prof.export_chrome_trace(str(tmp_path / "trace.json"))
    rep = layout_copies.report(tmp_path / "trace.json", steps=2)
    assert rep["convolutions"]["per_step"] == 2 and rep["convolutions"]["not_channels_last_per_step"] == 1
    inside = [r for r in rep["copies"] if "aten::_convolution" in r["inside"]]
    assert len(inside) == 1 and inside[0]["calls_per_step"] == 1
    assert inside[0]["dims"] == [2, 8, 12, 12]
    assert inside[0]["src_strides"] == [1152, 144, 12, 1] and inside[0]["dst_strides"] == [1152, 1, 96, 8]
    assert "aten::_convolution" in layout_copies.format_report(rep)
    assert layout_copies.channels_last_dense([4, 1, 30, 30], [900, 900, 30, 1])  # a size-1 channel's stride is free
    assert not layout_copies.channels_last_dense([4, 3, 8, 8], [192, 64, 8, 1])
    # a profile taken without record_shapes cannot say what was copied: refused, not reported as "no copies"
    no_shapes = {"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "aten::copy_", "ts": 1, "dur": 1, "args": {}}]}
    with pytest.raises(ValueError, match="record_shapes=True"):
        layout_copies.report(no_shapes, steps=1)


def test_prepare_throughput_reads_photos_three_ways_with_the_same_pixels_from_every_thread_count():
    proc = subprocess.run(
        [sys.executable, "benchmarks/prepare_throughput.py", "--images", "8", "--width", "400", "--height", "300", "--size", "16",
         "--workers", "2"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["workers"] == 2 and all(v > 0 for v in result["images_per_s"].values())
    assert result["max_abs_pixel_diff"]["draft_1"] == result["max_abs_pixel_diff"]["draft_n"]
    assert result["mean_abs_pixel_diff"] < 2  # DCT scaling keeps the pixels of a full-size decode


def test_split_memory_holds_uint8_in_a_quarter_of_float32():
    proc = subprocess.run([sys.executable, "benchmarks/split_memory.py", "--images", "2000", "--size", "32"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["uint8"]["held_mib"] == round(2000 * 32 * 32 * 3 / 2**20, 1)
    assert result["float32"]["held_mib"] == round(4 * 2000 * 32 * 32 * 3 / 2**20, 1)
    assert result["float32"]["peak_growth_mib"] > 2 * result["uint8"]["peak_growth_mib"]


def test_answer_pairs_are_built_in_the_data_contract_and_check_data_reads_them(tmp_path):
    """The pairs whose right answer is known: every pair in the layout, digits disjoint across sets,
    the label-shift target short of classes 0-4, the MNIST-M target in colour (and said to be lost in grey)."""
    import numpy as np
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), "RGB").save(photos / f"{k}.png")
    out = tmp_path / "pairs"
    proc = subprocess.run([sys.executable, "benchmarks/answer_pairs.py", str(out), "--per-class", "20", "--photos", str(photos)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["faint", "haze", "label_shift", "mnistm", "no_shift"]
    assert f"domain-augment run -S data.dataset=folders -S data.root={(out / 'mnistm').resolve()}" in proc.stdout
    names = {}
    for split in ("mnist/train", "mnist/test", "haze/train", "haze/test"):
        names[split] = {p.name for p in (out / "haze" / split).rglob("*.png")}
        assert len(names[split]) == 10 * (8 if split.endswith("train") else 2)
    assert not set.intersection(*names.values())  # no digit in two sets
    assert len(list((out / "label_shift/label_shift/train/0").iterdir())) == 2  # 8 x 0.2
    assert Image.open(next((out / "mnistm/mnistm/test/3").iterdir())).mode == "RGB"
    check = subprocess.run([sys.executable, "-m", "pipelines.cli", "check-data", str(out / "mnistm"), "--source", "mnist", "--target", "mnistm"],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0 and "note: mnistm:" in check.stdout and "data.channels is 1" in check.stdout, check.stdout


def test_translator_quality_scores_the_translations_beside_the_untranslated_source(tmp_path):
    """The development yardstick for a GAN's settings: label preservation, the gap closed, and how
    close the translations come to real target images next to the untranslated source (FID,
    precision, recall on the oracle's features)."""
    prepared, labels, timings = tmp_path / "prepared", tmp_path / "labels", tmp_path / "timings"
    for stage in (["pipelines.stages.prepare", "--out", str(prepared)],
                  ["pipelines.stages.few_labels", "--prepared", str(prepared), "--out", str(labels)]):
        proc = subprocess.run([sys.executable, "-m", *stage, "--timings-dir", str(timings)], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    proc = subprocess.run(
        [sys.executable, "benchmarks/translator_quality.py", "--gan", "cgan", "--prepared", str(prepared), "--labels", str(labels),
         "--set", "steps=2", "--classifier", "steps=2", "--threads", "1", "--samples", str(tmp_path / "samples.png")],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["config"]["steps"] == 2 and result["config"]["conditional"]
    assert set(result["target_accuracy"]) == {"source_only", "cgan", "oracle"} and 0 <= result["label_preservation"] <= 1
    assert set(result["realism"]) == {"translated", "untranslated"}
    for figures in result["realism"].values():
        assert figures["fid"] >= 0 and 0 <= figures["precision"] <= 1 and 0 <= figures["recall"] <= 1
    assert result["realism"]["translated"] != result["realism"]["untranslated"]
    assert (tmp_path / "samples.png").is_file()
