"""Data-parallel CycleGAN and classifier training under real torchrun processes (gloo on CPU)."""
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


def _prepared(tmp_path, *also: tuple[str, list[str]], arms: list[str] | None = None) -> list[str]:
    """params.yaml at 12 px and the prepare and few_labels stages' outputs (then `also`'s) in tmp_path;
    the arguments every later stage takes. `arms`: only these (no GAN trained, so none of a GAN)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["image_size"] = 12
    for gan in ("cyclegan", "cgan"):  # every GAN section must fit 12 px, though only the cyclegan trains here
        params["gan"][gan].update(steps=6, batch_size=4, ngf=4, n_blocks=1, unet_downs=2, ndf=4, d_layers=1, log_every=3,
                                  checkpoint_every=3, sample_count=4, semantic_width=4, semantic_threshold=100.0)
    params["classifier"].update(width=4, steps=6, batch_size=8)
    if arms is not None:
        params["classifier"]["arms"], params["gan"]["kinds"] = arms, []
    params["runtime"]["threads"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    common = ["--params", str(tmp_path / "params.yaml"), "--prepared", str(tmp_path / "prepared")]
    for stage, args in (("prepare", ["--params", str(tmp_path / "params.yaml"), "--out", str(tmp_path / "prepared")]),
                        ("few_labels", [*common, "--out", str(tmp_path / "labels")]), *also):
        subprocess.run([sys.executable, "-m", f"pipelines.stages.{stage}", *args, "--timings-dir", str(tmp_path / "timings")],
                       cwd=REPO, env=env(), check=True, capture_output=True)
    return common


def test_train_gan_stage_under_torchrun_writes_outputs_once(tmp_path):
    common = _prepared(tmp_path)
    proc = subprocess.run([*TORCHRUN, "-m", "pipelines.stages.train_gan", "--gan", "cyclegan", *common,
                           "--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "gan"), "--checkpoint-dir", str(tmp_path / "ckpt"),
                           "--curves", str(tmp_path / "curves"), "--timings-dir", str(tmp_path / "timings")],
                          cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("train_gan@cyclegan-0 step 6/6") == 1
    stage = json.loads((tmp_path / "timings/train_gan@cyclegan-0.json").read_text())
    assert stage["device"] == "cpu x 2 processes" and stage["steps"] == 6
    assert stage["images_per_s"]["train_pairs"] > 0  # both processes' pairs
    assert (tmp_path / "gan/G_st.pt").is_file() and not (tmp_path / "ckpt").exists()


def test_a_classifier_trains_alike_in_two_processes_on_their_own_batches(tmp_path):
    r = _run_script("ddp_classifier_check.py", tmp_path)
    assert r["world"] == 2
    assert r["first_batch_labels"][0] != r["first_batch_labels"][1]  # the ranks really drew different batches ...
    assert r["max_weight_diff"] < 1e-6  # ... and still hold the same weights
    assert r["statistics"] > 0 and r["max_statistics_diff"] < 1e-6  # and the same batch-norm statistics, which eval reads
    logged = r["logged"]
    assert [step for step, _ in logged[0]] == [3, 6] and logged[1] == []  # only rank 0 reports, the loss of both


def test_train_classifier_stage_under_torchrun_writes_outputs_once(tmp_path):
    """runtime.classifier_launcher: the stage under torchrun trains one replica per process and rank 0
    alone writes; an arm with nothing to train writes its status once too."""
    common = _prepared(tmp_path, ("arm_inputs", ["--params", str(tmp_path / "params.yaml"), "--labels", str(tmp_path / "labels"),
                                                 "--synthetic", str(tmp_path / "synthetic"), "--out", str(tmp_path / "arms")]),
                       arms=["source_only", "adabn"])
    for arm in ("source_only", "adabn"):
        proc = subprocess.run([*TORCHRUN, "-m", "pipelines.stages.train_classifier", "--arm", arm, "--seed", "0", *common,
                               "--labels", str(tmp_path / "labels"), "--arm-inputs", str(tmp_path / "arms"),
                               "--out", str(tmp_path / arm), "--timings-dir", str(tmp_path / "timings")],
                              cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        status = json.loads((tmp_path / arm / "status.json").read_text())
        if arm == "adabn":
            assert status["status"] == "test_time" and proc.stdout.count("no training") == 1
            continue
        assert proc.stdout.count("train_classifier@source_only-0 step 6/6") == 1 and "in each of 2 processes" in proc.stdout
        assert status["status"] == "trained" and status["device"] == "cpu x 2 processes"
        from augment.classify import load_classifier, predict
        from augment.dataset import load_prepared

        data = load_prepared(tmp_path / "prepared")
        images, rows = data.labeled("source", "test", uint8=True)
        read = predict(load_classifier(tmp_path / arm / "model.pt"), images.images)  # what evaluate does with it
        assert len(read) == len(rows) and set(read.tolist()) <= set(range(len(data.classes)))
        timing = json.loads((tmp_path / "timings/train_classifier@source_only-0.json").read_text())
        assert timing["images_per_s"]["train"] > 0 and (tmp_path / arm / "model.pt").is_file()
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(arm)) == [arm]  # no stray temporary folder
