"""Data-parallel CycleGAN training under real torchrun processes (gloo on CPU)."""
import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO
from tests.e2e import env

pytestmark = pytest.mark.e2e

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def _env(tmp_path) -> dict:
    """torchrun makes a torchelastic_* folder in the temporary directory on every start and leaves it: here, tmp_path's."""
    return {**env(), "TMPDIR": str(tmp_path)}


def _run_script(name: str, tmp_path, *args: str) -> dict:
    """Run tests/scripts/`name` in two torchrun processes; the JSON its rank 0 wrote."""
    out = tmp_path / "result.json"
    proc = subprocess.run([*TORCHRUN, str(REPO / "tests/scripts" / name), str(out), *args], cwd=REPO, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])  # channels_last: the weights' layout on a GPU
def test_gradients_stay_in_sync_across_two_processes(tmp_path, layout):
    r = _run_script("ddp_sync_check.py", tmp_path, layout)
    assert r["channels_last_weights"] == (layout == "channels_last")
    assert r["world"] == 2
    assert r["cycle_losses"][0] != r["cycle_losses"][1]  # the ranks really saw different batches ...
    assert r["max_weight_diff"] < 1e-6  # ... and still hold the same weights
    assert r["logged_steps"] == [[3, 6], []]  # only rank 0 reports


def test_processes_share_one_labelling_of_the_target_set(tmp_path):
    r = _run_script("ddp_labels_check.py", tmp_path)
    first, second = r["ranks"]
    assert r["world"] == 2
    assert sum(y >= 0 for y in first["labels"]) > 16  # several pools labelled ...
    assert first["labels"] == second["labels"]  # ... the same ones, the same way, in both processes
    assert first["moved"] == second["moved"]
    assert first["c_running"] == second["c_running"]  # C's competence is judged on the mean loss of all processes
    # C reads (labels, judges translations) in eval mode with its running batch-norm statistics:
    # the same in both processes, as its weights are
    assert first["c_buffers"] and first["c_buffers"] == second["c_buffers"]
    assert first["c_weights"] == second["c_weights"]


def test_train_gan_stage_under_torchrun_writes_outputs_once(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["image_size"] = 12
    for gan in ("cyclegan", "cgan"):  # every GAN section must fit 12 px, though only the cyclegan trains here
        params["gan"][gan].update(steps=6, batch_size=4, ngf=4, n_blocks=1, unet_downs=2, ndf=4, d_layers=1, log_every=3,
                                  checkpoint_every=3, sample_count=4, semantic_width=4, semantic_threshold=100.0)
    params["runtime"]["threads"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    common = ["--params", str(tmp_path / "params.yaml"), "--prepared", str(tmp_path / "prepared")]
    for stage, args in (("prepare", ["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "prepared")]),
                        ("few_labels", [*common, "--out", str(tmp_path / "labels")])):
        subprocess.run([sys.executable, "-m", f"pipelines.stages.{stage}", *args, "--timings-dir", str(tmp_path / "timings")],
                       cwd=REPO, env=env(), check=True, capture_output=True)
    proc = subprocess.run([*TORCHRUN, "-m", "pipelines.stages.train_gan", "--gan", "cyclegan", *common,
                           "--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "gan"), "--checkpoint-dir", str(tmp_path / "ckpt"),
                           "--timings-dir", str(tmp_path / "timings")],
                          cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("train_gan@cyclegan-0 step 6/6") == 1
    stage = json.loads((tmp_path / "timings/train_gan@cyclegan-0.json").read_text())
    assert stage["device"] == "cpu x 2 processes" and stage["steps"] == 6
    assert stage["images_per_s"]["train_pairs"] > 0  # both processes' pairs
    assert (tmp_path / "gan/G_st.pt").is_file() and not (tmp_path / "ckpt").exists()
