"""The real pipeline under `dvc repro`, end to end, on tiny params (embedded digits and folders)."""
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import DVC_UNHASHABLE, add_files_dvc_cannot_hash, make_folders
from tests.e2e import ALWAYS_RUN, ONE_SEED, dvc, pending, project_copy, ran_stages, run

pytestmark = pytest.mark.e2e

from augment.arms import ARMS as ALL_ARMS
from pipelines.warm_start import WARM_STAGES_ENV

ARMS = list(ALL_ARMS)  # the digits repo trains every arm
GANS = ["cyclegan", "cgan"]


def _walk_fractions(node, path=""):
    """Yield (key path, value) for every number in metrics.json that is a fraction."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k != "majority_prediction_class":  # a class's index, checked on its own
                yield from _walk_fractions(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk_fractions(v, f"{path}[{i}]")
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path, node


@pytest.fixture(scope="module")
def digits_repo(tmp_path_factory):
    repo = project_copy(tmp_path_factory.mktemp("digits"), {"classifier": {"arms": ARMS}})
    first = dvc("repro", cwd=repo)
    return repo, first.stdout


def test_repro_writes_every_metrics_key(digits_repo):
    repo, out = digits_repo
    expected = {"code", "index_raw", "prepare", "few_labels", "arm_inputs", "evaluate"} | {f"{stage}@{g}-{s}" for stage in ("train_gan", "synthesize") for g in GANS for s in (0, 1)} | {
        f"train_classifier@{a}-{s}" for a in ARMS for s in (0, 1)
    }
    assert set(ran_stages(out)) == expected
    m = json.loads((repo / "reports/metrics.json").read_text())
    assert set(m) == {"target_test", "source_test", "benefit", "gan", "run", "target_val", "answer", "gan_reference"}
    # 20% of target test held out for choosing settings, stratified; target_test reported on the rest
    split = m["run"]["target_split"]
    assert split["target_val"] > 0 and split["target_test"] > 3 * split["target_val"]
    assert sum(split["target_test_per_class"].values()) == split["target_test"] and len(split["target_test_per_class"]) == 10
    manifest = pd.read_csv(repo / "data/prepared/manifest.csv")
    train = m["run"]["train_data"]  # what the few-train-images warnings judge
    assert train["target_train"] == len(manifest[(manifest.role == "target") & (manifest.split == "train")])
    assert train["source_train_per_class"] == manifest[(manifest.role == "source") & (manifest.split == "train")].label.astype(str).value_counts().to_dict()
    assert set(m["target_val"]) == set(ARMS) and "accuracy_delta" in m["target_val"]["cyclegan"]
    for arm in ARMS:
        for metric in ("accuracy", "macro_f1"):
            stat = m["target_test"][arm][metric]
            assert set(stat) == {"mean", "ci95", "per_seed"} and len(stat["per_seed"]) == 2
            assert stat["ci95"][0] <= stat["mean"] <= stat["ci95"][1]
        assert set(m["source_test"][arm]) == {"accuracy"} | ({"read_as_another"} if arm == "source_only" else set())
    # each domain's own classifier reads no class of its test as another (the digits' folders agree)
    assert m["source_test"]["source_only"]["read_as_another"] == [] and m["target_test"]["oracle"]["read_as_another"] == []
    assert set(m["benefit"]) == set(ARMS) - {"source_only"}
    # data where the answer is known: a classifier trained on labeled target images must beat one
    # trained on the source alone, with an interval that says so
    assert m["benefit"]["oracle"]["accuracy_delta"]["ci95"][0] > 0.2
    assert m["target_test"]["oracle"]["accuracy"]["ci95"][0] > m["target_test"]["source_only"]["accuracy"]["ci95"][1]
    # test_time trains nothing: the source_only classifiers, on target images translated back
    assert json.loads((repo / "artifacts/classifiers/test_time/0/status.json").read_text())["status"] == "test_time"
    assert m["source_test"]["test_time"]["accuracy"] == m["source_test"]["source_only"]["accuracy"]
    # adabn trains nothing either: the source_only classifiers with the target's BatchNorm statistics
    assert json.loads((repo / "artifacts/classifiers/adabn/1/status.json").read_text())["status"] == "test_time"
    assert m["source_test"]["adabn"]["accuracy"] == m["source_test"]["source_only"]["accuracy"]
    assert m["target_test"]["adabn"]["accuracy"]["per_seed"] != m["target_test"]["source_only"]["accuracy"]["per_seed"]
    classes = list(m["run"]["target_split"]["target_test_per_class"])
    assert all(type(t["majority_prediction_class"]) is int and 0 <= t["majority_prediction_class"] < len(classes)
               for t in m["target_test"].values() if "accuracy" in t)
    for section in ("target_test", "source_test"):
        for key, value in _walk_fractions(m[section]):
            assert math.isfinite(value) and 0 <= value <= 1, f"{section}.{key} = {value}"
    for key, value in _walk_fractions(m["benefit"]):
        assert math.isfinite(value) and -1 <= value <= 1, f"benefit.{key} = {value}"
    for gan in GANS:
        g = m["gan"][gan]
        assert {"fid", "kid", "feature_extractor", "label_preservation"} <= set(g) and "oracle" in g["feature_extractor"]
        assert 0 <= g["label_preservation"] <= 1 and math.isfinite(g["fid"])
        # one GAN per gan.seeds entry: each judged on its own images, the contract's keys their mean
        assert set(g["per_seed"]) == {"0", "1"}
        assert g["label_preservation"] == pytest.approx(sum(q["label_preservation"] for q in g["per_seed"].values()) / 2)
    # classifier seed s of a GAN arm learned from GAN seed s % 2
    for arm, seed in (("cyclegan", 0), ("cyclegan", 1), ("cgan", 1), ("test_time", 1)):
        assert json.loads((repo / f"artifacts/classifiers/{arm}/{seed}/status.json").read_text())["gan_seed"] == seed
    assert m["run"]["seeds"] == [0, 1] and m["run"]["gan_seeds"] == [0, 1] and m["run"]["device"] == "cpu"
    split, train_data = m["run"]["target_split"], m["run"]["train_data"]
    assert m["run"]["data_files"] == {"rejected": 0, "folders_not_searched": [], "files_not_read": {}, "target_test_in_train": 0, "source_test_in_train": 0,
                                      "target_test_repeats": 0, "label_conflicts": 0, "target_in_source": 0,
                                      "target_images": train_data["target_train"] + split["target_val"] + split["target_test"]}
    # every stage's time but index_raw's: a timings file it rewrote on each run would re-run evaluate
    assert set(m["run"]["wall_seconds"]) == expected - set(ALWAYS_RUN) and all(v > 0 for v in m["run"]["wall_seconds"].values())
    rates = m["run"]["images_per_s"]  # throughput of what each stage computes, from its timings file
    assert all(rates[f"synthesize@{g}-{s}"]["translate"] > 0 and rates[f"train_gan@{g}-{s}"]["train_pairs"] > 0 for g in GANS for s in (0, 1))
    assert all(rates[f"train_classifier@oracle-{s}"]["train"] > 0 for s in (0, 1)) and rates["evaluate"]["predict"] > 0
    assert "train_classifier@test_time-0" not in rates and "train_classifier@adabn-0" not in rates  # they train nothing
    for arm, measured in m["target_test"].items():  # each classifier's readings, image by image: the accuracies are theirs
        for seed, accuracy in zip(m["run"]["seeds"], measured["accuracy"]["per_seed"]):
            read = pd.read_csv(repo / f"reports/predictions/{arm}/{seed}.csv", keep_default_na=False)
            test = read[read.eval_set == "target_test"]
            assert len(test) == m["run"]["target_split"]["target_test"] and (test.label == test.predicted).mean() == pytest.approx(accuracy)
            assert read.source_path.str.startswith("digits:").all()
    page = (repo / "reports/report.html").read_text()
    assert page.count("data:image/png;base64,") >= 4 and all(f"<b>{a}</b>" in page for a in ARMS)
    for path in ("reports/report.md", "reports/plots/arms.png", "reports/samples/cyclegan.png", "reports/samples/comparison.png",
                 "reports/plots/confusion.png", "reports/plots/confusion/oracle.csv", "reports/plots/per_class/cgan.csv",
                 "artifacts/gan/cyclegan/0/G_st.pt", "artifacts/gan/cyclegan/1/samples.png",
                 "data/synthetic/cyclegan/1/manifest.csv", "data/prepared/rejected.csv"):
        assert (repo / path).is_file(), path
    # a GAN stage's samples name their rows (source, translated, reconstructed) in a column of their own; the reports show them
    import numpy as np
    import torch
    from PIL import Image

    from augment.samples import grid

    for gan, synthetic in (("cyclegan", "data/synthetic/cyclegan/0/samples.png"), ("cgan", "data/synthetic/cgan/1/samples.png")):
        written = repo / f"artifacts/gan/{gan}/0/samples.png"
        assert (repo / f"reports/samples/{gan}.png").read_bytes() == written.read_bytes()
        for path, rows in ((written, 3), (repo / synthetic, 2)):
            with Image.open(path) as image:
                shown = np.asarray(image)
            cells = grid([torch.zeros(4 if rows == 3 else 16, 1, 12, 12)] * rows)  # the pictures' part: 12 px images
            names = shown[:, : shown.shape[1] - cells.shape[1]]
            band = (shown.shape[0] + 2) // rows
            assert shown.shape[0] == cells.shape[0] and names.shape[1] > 20, path
            assert all((names[r * band:(r + 1) * band - 2] < 128).any() for r in range(rows)) and names[0, 0].min() == 255, path
    assert not (repo / ".dvc/tmp/checkpoints/cyclegan/0").exists()
    assert "resamples GAN seeds" in page or "first resamples GAN seeds" in page
    assert "| cyclegan |" in (repo / "reports/report.md").read_text()
    # the answer: the arms that saw no target label ranked apart from those that saw a few (the cgan saw them)
    few = {"target_few", "cyclegan_few", "cgan_few", "cgan"}
    assert set(m["answer"]["none"]["ranked"]) == set(ARMS) - {"source_only", "oracle"} - few
    assert set(m["answer"]["few"]["ranked"]) == few and m["answer"]["chosen_on"] == "target_val"
    assert "## The answer" in (repo / "reports/report.md").read_text()
    shown = dvc("metrics", "show", "--json", cwd=repo).stdout
    assert "target_test" in shown
    # every GAN that ran has its loss curves among the plots, whatever gan.kinds and gan.seeds say
    plotted = set(json.loads(dvc("plots", "show", "--json", cwd=repo).stdout)["data"])
    assert {f"artifacts/gan_curves/{g}/{s}/loss_cycle.tsv" for g in GANS for s in (0, 1)} <= plotted
    assert "reports/plots/target_accuracy.csv" in plotted


def test_cgan_stages_run_end_to_end(digits_repo):
    """train_gan@cgan-<seed> and synthesize@cgan-<seed>: a class-conditional generator, and images made for each source label."""
    import pandas as pd
    import torch

    from augment.cyclegan import is_conditional, load_generator

    repo, _ = digits_repo
    assert is_conditional(load_generator(repo / "artifacts/gan/cgan/0/G_st.pt"))
    assert (repo / "artifacts/gan/cgan/1/C.pt").is_file() and (repo / "reports/samples/cgan.png").is_file()
    history = pd.read_csv(repo / "artifacts/gan/cgan/0/history.csv")
    assert {"loss_c", "loss_semantic", "target_labeled"} <= set(history.columns)
    synthetic = pd.read_csv(repo / "data/synthetic/cgan/0/manifest.csv", dtype={"label": str})
    prepared = pd.read_csv(repo / "data/prepared/manifest.csv", dtype={"label": str}, keep_default_na=False)
    source = prepared[(prepared.role == "source") & (prepared.split == "train")]
    assert list(synthetic.source_path) == list(source.path) and list(synthetic.label) == list(source.label)
    for rel in synthetic.path.head(3):
        assert (repo / "data/synthetic/cgan/0" / rel).is_file()
    assert "| cgan |" in (repo / "reports/report.md").read_text()
    assert torch.load(repo / "artifacts/gan/cgan/1/G_st.pt", weights_only=True)["arch"]["num_classes"] == 10
    # two seeds, two different GANs
    assert not (repo / "artifacts/gan/cgan/0/G_st.pt").read_bytes() == (repo / "artifacts/gan/cgan/1/G_st.pt").read_bytes()


def test_cgan_and_cyclegan_networks_that_cannot_fit_the_images_are_refused_before_prepare(tmp_path):
    """A PatchGAN too deep for the image size is named before any stage runs or writes."""
    repo = project_copy(tmp_path / "repo", {"gan": {"cgan": {"d_layers": 3}}})
    proc = dvc("repro", cwd=repo, check=False)
    assert proc.returncode != 0
    assert "gan.cgan.d_layers: a 3-layer PatchGAN discriminator needs images of at least" in proc.stderr + proc.stdout
    assert "(data.image_size is 12)" in proc.stderr + proc.stdout
    assert not (repo / "data/prepared").exists()


def test_a_gan_kind_left_out_of_gan_kinds_is_neither_trained_nor_needed(tmp_path):
    """Arms that read only the CycleGAN, and gan.kinds=[cyclegan]: no cgan stage exists, the run
    completes, and the conditional GAN's size problem (it is not trained) refuses nothing."""
    arms = ["source_only", "cyclegan", "test_time"]
    repo = project_copy(tmp_path / "repo", {"gan": {"kinds": ["cyclegan"], "seeds": [0], "cgan": {"d_layers": 3}},
                                            "classifier": {"arms": arms, "seeds": [0]}})
    out = dvc("repro", cwd=repo).stdout
    ran = ran_stages(out)
    assert [s for s in ran if "@" in s and s.split("@")[0] in ("train_gan", "synthesize")] == ["train_gan@cyclegan-0", "synthesize@cyclegan-0"]
    assert not (repo / "artifacts/gan/cgan/0").exists() and not (repo / "data/synthetic/cgan/0").exists()
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert set(metrics["target_test"]) == set(arms) and set(metrics["gan"]) == {"cyclegan"}
    assert pending(repo) == {}
    # the plots are the curves of the GAN that ran: none missing, none of a kind that did not run
    plots = json.loads(dvc("plots", "show", "--json", cwd=repo).stdout)
    kinds = {p.split("/")[2] for p in plots["data"] if p.startswith("artifacts/gan_curves/")}
    assert kinds == {"cyclegan"} and not plots.get("errors"), plots.get("errors")
    # An arm that reads a GAN gan.kinds leaves out is refused by key, before anything runs
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["classifier"]["arms"] = [*arms, "cgan"]
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    proc = dvc("repro", cwd=repo, check=False)
    assert proc.returncode != 0 and "classifier.arms has 'cgan', which reads the cgan GAN, but gan.kinds is ['cyclegan']" in proc.stdout + proc.stderr


def test_with_no_gan_kind_the_baselines_run_alone(tmp_path):
    """gan.kinds=[]: no GAN stage at all (an empty DVC matrix), and the arms that need none run and
    are measured: what a team compares against before it trains any GAN."""
    arms = ["source_only", "classic", "oracle"]
    repo = project_copy(tmp_path / "repo", {"gan": {"kinds": [], "seeds": [0]}, "classifier": {"arms": arms, "seeds": [0]}})
    ran = ran_stages(dvc("repro", cwd=repo).stdout)
    assert not [s for s in ran if s.startswith(("train_gan", "synthesize"))] and "evaluate" in ran
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert set(metrics["target_test"]) == set(arms) and metrics["gan"] == {} and set(metrics["benefit"]) == {"classic", "oracle"}
    caption = "rows, top to bottom: source, classic (a draw that changed each image), real target"
    assert caption in (repo / "reports/report.md").read_text()
    # no arm applies the classic transforms: the picture of what each arm adds showed them all the same
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["classifier"]["arms"] = ["source_only", "oracle"]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc("repro", cwd=repo)
    assert "rows, top to bottom: source, real target" in (repo / "reports/report.md").read_text()


def test_second_repro_runs_nothing(digits_repo):
    repo, _ = digits_repo
    again = dvc("repro", cwd=repo)
    assert ran_stages(again.stdout) == ALWAYS_RUN  # it lists data.root again; prepare is not re-run


def test_stages_read_the_packed_images_and_the_png_copies_are_outside_dvc(digits_repo):
    repo, _ = digits_repo
    pngs = sorted((repo / "data/prepared/images").rglob("*.png")) + sorted((repo / "data/synthetic/cgan/0/images").rglob("*.png"))
    assert pngs and (repo / "data/prepared/pixels.npy").is_file() and (repo / "data/synthetic/cgan/0/pixels.npy").is_file()
    for p in pngs[:3] + pngs[-3:]:
        p.unlink()
    assert pending(repo) == {}  # DVC hashes pixels.npy, not one file per image
    proc = run([sys.executable, "-m", "pipelines.cli", "pngs"], cwd=repo)
    assert "data/prepared: " in proc.stdout and all(p.is_file() for p in pngs)


def test_classifier_param_makes_only_the_classifiers_stale(digits_repo):
    """`dvc status` after a classifier param changes: the classifiers are to re-run (and evaluate after
    them, as their predictions change), nothing that trains a GAN or prepares data. Asked of DVC's
    status rather than run: the re-runs that follow a change are run in the tests below."""
    repo, _ = digits_repo
    text = (repo / "params.yaml").read_text()
    params = yaml.safe_load(text)
    params["classifier"]["steps"] = 10
    try:
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        stale = pending(repo)
    finally:
        (repo / "params.yaml").write_text(text)
    assert set(stale) == {f"train_classifier@{a}-{s}" for a in ARMS for s in (0, 1)}
    assert all("classifier.steps" in json.dumps(why) for why in stale.values())
    assert pending(repo) == {}


def test_a_weights_file_replaced_at_its_path_makes_evaluate_stale(digits_repo, tmp_path):
    """evaluate.inception_weights names a file outside what DVC hashes: a new file at the same path left
    the old file's metrics standing. index_raw, which every repro runs, writes its sha256 to
    data/external_files.json, which evaluate depends on. Recorded with `dvc commit` rather than run
    (evaluate's reading of such weights is tests/test_inception.py's)."""
    repo, _ = digits_repo
    text = (repo / "params.yaml").read_text()
    params = yaml.safe_load(text)
    weights = tmp_path / "inception.pth"
    weights.write_bytes(b"the first file")
    params["evaluate"]["inception_weights"] = str(weights)
    try:
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        dvc("repro", "--single-item", "index_raw", cwd=repo)
        dvc("commit", "--force", "evaluate", cwd=repo)
        assert pending(repo) == {}
        weights.write_bytes(b"another file at the same path")
        dvc("repro", "--single-item", "index_raw", cwd=repo)
        stale = pending(repo)
        assert list(stale) == ["evaluate"] and "data/external_files.json" in json.dumps(stale["evaluate"]), stale
        said = json.loads((repo / "data/external_files.json").read_text())["evaluate.inception_weights"]
        assert said["path"] == str(weights) and said["size"] == len(b"another file at the same path") and len(said["sha256"]) == 64
        weights.unlink()
        dvc("repro", "--single-item", "index_raw", cwd=repo)
        assert json.loads((repo / "data/external_files.json").read_text())["evaluate.inception_weights"] == {
            "path": str(weights), "error": "No such file or directory"}  # evaluate stops on it, by key (tests/test_inception.py)
    finally:
        (repo / "params.yaml").write_text(text)
        dvc("repro", "--single-item", "index_raw", cwd=repo)
        dvc("commit", "--force", "evaluate", cwd=repo)  # its outputs are those of these params
    assert json.loads((repo / "data/external_files.json").read_text()) == {} and pending(repo) == {}


def test_evaluate_leaves_the_answer_to_the_run_that_prints_it_at_the_end(digits_repo):
    """`domain-augment run` and `demo` echo each stage's output as it runs, then print the benefits and
    the answer after the stage table: the answer came twice. Under their variable the stage leaves them
    to that summary; under `dvc repro` it prints them, once."""
    import subprocess

    from augment.answer import ANSWER_AT_END_ENV
    from tests.e2e import env

    repo, first = digits_repo
    assert first.count("  benefit cyclegan: ") == 1 and first.count("With every target train label (the upper bound): oracle ") == 1
    proc = subprocess.run([sys.executable, "-m", "pipelines.stages.evaluate"], cwd=repo, env={**env(), ANSWER_AT_END_ENV: "1"},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "benefit cyclegan" not in proc.stdout and "upper bound" not in proc.stdout
    assert proc.stdout.rstrip().endswith("evaluate: each arm's benefit and the answer follow when the run ends")
    dvc("commit", "--force", "evaluate", cwd=repo)  # its outputs, run outside DVC (their images/s differ by construction)
    assert pending(repo) == {}


def test_a_code_edit_reruns_only_the_stages_that_import_it(digits_repo):
    """Each stage depends on its code pin (data/code/<module>.json), not on every source file: an edit
    to the report's code re-runs the code stage and evaluate, and nothing that trains."""
    repo, _ = digits_repo
    report = repo / "augment/report_html.py"
    report.write_text(report.read_text() + "\n# an edit that changes no behaviour\n")
    assert set(ran_stages(dvc("repro", cwd=repo).stdout)) == {"code", "evaluate", *ALWAYS_RUN}
    assert pending(repo) == {}


def test_few_label_count_reruns_only_what_reads_the_few_labels(digits_repo):
    """data.target_labels_per_class re-runs the conditional GAN, its synthetic sets and arms, and
    the arms that see the few labels: neither prepare, nor the CycleGANs, nor any classifier of an
    arm that reads no target label (each depends on its own data/arms/<arm>.json, not on every
    synthetic set)."""
    repo, _ = digits_repo
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["target_labels_per_class"] = 3
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran = set(ran_stages(dvc("repro", cwd=repo).stdout))
    readers = {*ALWAYS_RUN, "few_labels", "arm_inputs", "evaluate"} | {f"{st}@cgan-{s}" for st in ("train_gan", "synthesize") for s in (0, 1)} | {
        f"train_classifier@{a}-{s}" for a in ("cgan", "target_few", "cyclegan_few", "cgan_few") for s in (0, 1)}
    assert ran == readers
    assert len(pd.read_csv(repo / "data/labels/gan-cgan.csv")) == 30  # 3 per class, 10 classes
    assert pd.read_csv(repo / "data/labels/gan-cyclegan.csv").empty
    assert pending(repo) == {}


def test_a_classifier_refuses_a_synthetic_set_changed_behind_dvcs_back(digits_repo):
    """The classifier reads the synthetic pixels DVC does not list as its dep; their sha256 is pinned
    by data/arms/<arm>.json, so a changed file stops the stage with its name, never trains on it."""
    repo, _ = digits_repo
    pixels = repo / "data/synthetic/cyclegan/0/pixels.npy"
    original = pixels.read_bytes()
    try:
        pixels.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
        proc = run([sys.executable, "-m", "pipelines.stages.train_classifier", "--arm", "cyclegan", "--seed", "0",
                    "--out", str(repo / "scratch")], cwd=repo, check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "data/synthetic/cyclegan/0/pixels.npy: changed since data/arms/cyclegan.json" in proc.stderr
        assert not (repo / "scratch").exists()
    finally:
        pixels.write_bytes(original)


def test_training_that_diverges_stops_naming_the_learning_rate_key(digits_repo):
    """`classifier.lr: 10` trained to NaN weights without a word: the classifier was saved with
    "status": "trained", read every image as one class, and was reported as a measured arm. A GAN
    that diverges stopped already, naming no key."""
    repo, _ = digits_repo
    text = (repo / "params.yaml").read_text()
    params = yaml.safe_load(text)
    params["classifier"]["lr"] = 1.0e6
    params["gan"]["cyclegan"]["lr"] = 1.0e30
    stage = [sys.executable, "-m", "pipelines.stages.train_classifier", "--arm", "source_only", "--seed", "0", "--out", str(repo / "scratch")]
    gan = [sys.executable, "-m", "pipelines.stages.train_gan", "--gan", "cyclegan", "--seed", "0", "--out", str(repo / "scratch"),
           "--checkpoint-dir", str(repo / "scratch-checkpoints")]
    try:
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        proc, gan_proc = run(stage, cwd=repo, check=False), run(gan, cwd=repo, check=False)
    finally:
        (repo / "params.yaml").write_text(text)
        shutil.rmtree(repo / "scratch-checkpoints", ignore_errors=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: train_classifier@source_only-0: the classifier's loss became non-finite at step "), proc.stderr
    assert "(classifier.lr is 1e+06, classifier.weight_decay" in proc.stderr
    assert gan_proc.returncode == 2 and "Traceback" not in gan_proc.stderr, gan_proc.stderr
    assert gan_proc.stderr.startswith("error: train_gan@cyclegan-0: CycleGAN losses became non-finite at step ") and (
        "(gan.cyclegan.lr is 1e+30, lambda_cycle 10, lambda_semantic") in gan_proc.stderr, gan_proc.stderr
    assert not (repo / "scratch").exists()


def test_identical_rerun_does_not_cascade(digits_repo):
    """Data outputs are byte-identical for identical inputs (timings live apart), weights files too
    (augment.io.save_torch serializes under a fixed archive name, where torch.save to a temporary
    path would name the archive after it), so a forced GAN re-run that reproduces the same generator
    re-runs neither synthesize nor a classifier: only evaluate, which reads the GAN's timings and
    training history."""
    repo, _ = digits_repo
    forced = dvc("repro", "--force", "--single-item", "train_gan@cyclegan-1", cwd=repo)
    assert ran_stages(forced.stdout) == ["train_gan@cyclegan-1"]
    assert ran_stages(dvc("repro", cwd=repo).stdout) == [*ALWAYS_RUN, "evaluate"]


def test_bad_param_fails_with_the_key_named(digits_repo):
    repo, _ = digits_repo
    text = (repo / "params.yaml").read_text()
    try:
        (repo / "params.yaml").write_text(text.replace("image_size: 12", "image_size: 13"))
        proc = dvc("repro", "prepare", cwd=repo, check=False)
        assert proc.returncode != 0
        assert "params.yaml: data.image_size: must be divisible by 4 (the generators downsample twice) (got 13)" in proc.stderr + proc.stdout
    finally:
        (repo / "params.yaml").write_text(text)
    # The first stage that reads params.yaml (index_raw) stopped it. DVC removed that stage's output
    # before running its command, but the last good one is in the cache and dvc.lock still names
    # it: checkout brings it back, and nothing but index_raw runs again.
    dvc("checkout", cwd=repo)
    assert (repo / "data/prepared/manifest.csv").is_file()
    assert ran_stages(dvc("repro", cwd=repo).stdout) == ALWAYS_RUN


def test_folders_experiment_with_flat_target_train(tmp_path):
    data_root = make_folders(tmp_path / "raw", per_class=8, size=24)
    shutil.copy(data_root / "src/train/a/0.png", data_root / "src/train/b/from_a.png")  # one image, two labels
    for k in range(8):  # every target test image of class a also in the (flat) target train split
        shutil.copy(data_root / f"tgt/test/a/{k}.png", data_root / f"tgt/train/seen_{k}.png")
    (data_root / "src/train/a/notes.png").write_text("not an image")
    shutil.copy(data_root / "src/test/b/0.png", data_root / "src/train/b/also_in_test.png")  # a source test image seen in training
    shutil.copytree(data_root / "src/train/c", data_root / "src/train/.c")  # a hidden class folder: not searched, named
    shutil.copy(data_root / "src/train/c/1.png", data_root / "tgt/train/from_the_source.png")  # a target image that is a source image
    from PIL import Image

    from tests.conftest import draw_digit_like

    rng = np.random.default_rng(7)
    for k in range(6):  # the source test folder of c holds 6 pictures of a: source_only, trained on the source, reads them as a
        Image.fromarray(draw_digit_like(0, 24, rng, fill=False)).save(data_root / f"src/test/c/{k}.png")
    repo = project_copy(tmp_path / "repo", ONE_SEED)
    dvc("exp", "run", "-S", "data.dataset=folders", "-S", f"data.root={data_root}", "-S", "data.source=src",
        "-S", "data.target=tgt", "-S", "data.channels=3", cwd=repo)
    m = json.loads((repo / "reports/metrics.json").read_text())
    assert set(m["target_test"]) == {"source_only", "cyclegan", "cgan", "oracle"}
    assert m["target_test"]["oracle"]["status"] == "unavailable" and "flat" in m["target_test"]["oracle"]["reason"]
    report = (repo / "reports/report.md").read_text()
    assert "oracle | unavailable" in report
    # a flat target train shows the cgan no target label: it ranks with the arms that saw none
    assert set(m["answer"]["none"]["ranked"]) == {"cyclegan", "cgan"} and "few" not in m["answer"] and "oracle" not in m["answer"]
    # what prepare found in the files reaches metrics.json and the report, not only the stage's output
    files = m["run"]["data_files"]
    assert files["rejected"] == 2 and files["label_conflicts"] == 2 and 0 < files["target_test_in_train"] <= 8, files
    assert files["folders_not_searched"] == ["src/train/.c"] and files["source_test_in_train"] == 1, files
    assert files["files_not_read"] == {"a text file, not an image": 1}, files
    assert "Files not read: 1 file(s) (a text file, not an image 1) and 1 folder(s) not searched (src/train/.c: hidden" in report
    assert "One image, two labels: 2 labeled files" in report and "Source test images seen in training: 1 of the" in report
    assert f"Target test images seen in training: {files['target_test_in_train']} of the target test images" in report
    copies = pd.read_csv(repo / "data/prepared/domain_copies.csv")
    assert files["target_in_source"] == 1 and sorted(copies.source_path.map(lambda p: Path(p).name)) == ["1.png", "from_the_source.png"]
    assert f"Target images that are source images: 1 of the {files['target_images']} target images are identical" in report
    assert json.loads((repo / "data/prepared/dataset.json").read_text())["channels"] == 3
    [misread] = m["source_test"]["source_only"]["read_as_another"]
    assert misread["classes"] == ["c", "a"] and misread["share"] >= 0.5, misread
    assert "Misread in its own domain: source_only, trained on the source's train labels, reads the source test's c as a (" in report
    # New labeled target test images, as the reports advise for a small test set: the GANs, their translations and the
    # classifiers, which read none of them, stay as they are (they trained again to the same bytes); prepare and evaluate,
    # which reads the test sets with every classifier, re-run, and the new image is measured
    with Image.open(data_root / "tgt/test/b/0.png") as img:
        Image.eval(img.convert("RGB"), lambda v: 255 - v).save(data_root / "tgt/test/b/new.png")
    names = ("gan", "synthesize", "classifier", "few_labels")
    views = {name: (repo / "data/prepared/views" / f"{name}.json").read_text() for name in names}
    ran = ran_stages(dvc("repro", cwd=repo).stdout)
    assert "prepare" in ran and "evaluate" in ran, ran
    assert not [stage for stage in ran if stage.startswith(("train_gan@", "synthesize@", "train_classifier@", "few_labels"))], ran
    assert views == {name: (repo / "data/prepared/views" / f"{name}.json").read_text() for name in names}
    split = json.loads((repo / "reports/metrics.json").read_text())["run"]["target_split"]
    assert split["target_test"] + split["target_val"] == m["run"]["target_split"]["target_test"] + m["run"]["target_split"]["target_val"] + 1
    read = pd.read_csv(repo / "reports/predictions/source_only/0.csv", keep_default_na=False)
    new = read[read.source_path.str.endswith("tgt/test/b/new.png")]
    assert len(new) == 1 and new.label.iloc[0] == "b" and new.predicted.iloc[0] in {"a", "b", "c"}, read
    assert set(read.eval_set) == {"target_test", "target_val", "source_test"}
    # Only arms this data cannot have: evaluate stops by key with each arm's reason (it crashed drawing no plots)
    failed = dvc("exp", "run", "-S", "classifier.arms=[oracle]", "-S", "gan.kinds=[]", cwd=repo, check=False)
    assert failed.returncode != 0
    said = failed.stdout + failed.stderr
    assert "error: no arm of classifier.arms ['oracle'] could be measured on this data (oracle: " in said and "Traceback" not in said


def test_files_dvc_cannot_hash_are_listed_by_prepare_not_fatal(tmp_path):
    """DVC hashes a folder dependency by opening every file under it: a FIFO or a link to /dev/zero
    hangs it, a broken link, a loop or a name that is not UTF-8 stops it. prepare depends on
    index_raw's list of data.root instead, so `dvc repro` runs and rejected.csv names each; an image
    whose content changes re-runs prepare, one only touched does not."""
    import os
    import shutil
    import subprocess

    from tests.e2e import env

    root = make_folders(tmp_path / "raw", per_class=4, size=16)
    a = root / "src/train/a"
    add_files_dvc_cannot_hash(a)
    repo = project_copy(tmp_path / "repo", {"data": {"dataset": "folders", "root": str(root), "source": "src", "target": "tgt"}})

    def repro() -> list[str]:
        proc = subprocess.run([sys.executable, "-m", "dvc", "repro", "prepare"], cwd=repo, env=env(), capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return ran_stages(proc.stdout)

    assert repro() == ["code", "index_raw", "prepare"]
    rejected = pd.read_csv(repo / "data/prepared/rejected.csv")
    assert {p.rsplit("/", 1)[-1] for p in rejected.source_path} >= set(DVC_UNHASHABLE)
    assert pending(repo, "prepare") == {}  # dvc status, too, no longer reads data.root
    manifest = pd.read_csv(repo / "data/prepared/manifest.csv")
    assert (manifest.source_path.str.rsplit("/", n=1).str[-1] == "caf\\xe9.png").sum() == 1  # kept, its name readable
    os.utime(a / "1.png")
    assert repro() == ALWAYS_RUN
    shutil.copy(a / "2.png", a / "1.png")
    assert repro() == [*ALWAYS_RUN, "prepare"]


def test_killed_gan_training_resumes_from_its_checkpoint(digits_repo, tmp_path):
    """SIGKILL mid-training keeps the last checkpoint; the next run continues from it."""
    import signal
    import subprocess
    import sys
    import time

    from tests.e2e import env

    repo, _ = digits_repo
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["gan"]["cyclegan"].update(steps=4000, checkpoint_every=10)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out, ckpt = tmp_path / "gan", tmp_path / "ckpt"
    cmd = [sys.executable, "-m", "pipelines.stages.train_gan", "--gan", "cyclegan", "--seed", "0", "--checkpoint-dir", str(ckpt),
           "--timings-dir", str(tmp_path / "timings"),
           "--params", str(tmp_path / "params.yaml"), "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=repo, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (ckpt / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (ckpt / "checkpoint.pt").is_file() and not out.exists()
    params["gan"]["cyclegan"]["steps"] = 40  # other params: the fingerprint differs, so it must start over
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(params))
    resumed = subprocess.Popen(cmd, cwd=repo, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first_line = resumed.stdout.readline()
    resumed.kill()
    resumed.wait()
    assert "resuming from" in first_line and "at step" in first_line
    # the same manifest and params, other pixels (data.image_size, channels or resize change only them): a fresh run.
    # It resumed, and crashed in the image pool (or trained on in silence with pool_size 0) on another image size.
    import numpy as np

    other, kept = tmp_path / "prepared_other", tmp_path / "ckpt_kept"
    shutil.copytree(repo / "data/prepared", other, ignore=shutil.ignore_patterns("images"))
    np.save(other / "pixels.npy", 255 - np.load(other / "pixels.npy"))
    from augment.dataset import load_prepared
    from augment.prepared_views import write_views

    redone = load_prepared(other)
    write_views(other, redone.manifest, redone.pixels, redone.info)  # as prepare writes them beside such pixels
    shutil.copytree(ckpt, kept)
    repixeled = subprocess.Popen(cmd + ["--prepared", str(other)], cwd=repo, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first_line = repixeled.stdout.readline()
    repixeled.kill()
    repixeled.wait()
    assert "ignoring" in first_line and "other params or data" in first_line, first_line
    # Given relative to the checkout, a checkpoint folder is also looked for in the main checkout and in
    # every run worktree: an interrupted `domain-augment run` (a worktree of its own) is picked up by the next run.
    relative = ".dvc/tmp/ckpt_test/cyclegan/0"
    interrupted = repo / ".dvc/tmp/runs/interrupted-run" / relative
    shutil.copytree(kept, interrupted)
    # the run's own checkpoint is older (an in-place run interrupted before an isolated one got further): the further wins
    import torch

    own = torch.load(kept / "checkpoint.pt", weights_only=True)
    own["step"] = 0
    (repo / relative).mkdir(parents=True)
    torch.save(own, repo / relative / "checkpoint.pt")
    try:
        elsewhere = subprocess.Popen(cmd[:cmd.index("--checkpoint-dir") + 1] + [relative] + cmd[cmd.index("--checkpoint-dir") + 2:],
                                     cwd=repo, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        first_line = elsewhere.stdout.readline()
        elsewhere.kill()
        elsewhere.wait()
        assert first_line.startswith(f"train_gan@cyclegan-0: resuming from {(interrupted / 'checkpoint.pt').resolve()} at step"), first_line
        assert (repo / relative / "checkpoint.pt").read_bytes() == (interrupted / "checkpoint.pt").read_bytes()  # copied, left there
    finally:
        shutil.rmtree(repo / ".dvc/tmp/runs/interrupted-run", ignore_errors=True)
        shutil.rmtree(repo / ".dvc/tmp/ckpt_test", ignore_errors=True)
    shutil.rmtree(ckpt, ignore_errors=True)
    shutil.copytree(kept, ckpt)
    changed = subprocess.run(cmd[:-4] + ["--params", str(tmp_path / "other.yaml"), "--out", str(out)], cwd=repo, env=env(),
                             capture_output=True, text=True)
    assert changed.returncode == 0, changed.stderr
    assert "ignoring" in changed.stdout and "resuming" not in changed.stdout  # other params: a fresh run
    assert (out / "G_st.pt").is_file() and not ckpt.exists()
    # the curves of the run that finished, none of the killed one's (steps 4000, logged every 10)
    curve = pd.read_csv(repo / "artifacts/gan_curves/cyclegan/0/loss_cycle.tsv", sep="\t")
    assert curve["step"].max() <= 40 and curve["step"].is_monotonic_increasing

    # How it computes is part of what a checkpoint was made with: an fp32 checkpoint resumed in bf16
    from pipelines.stages.train_gan import _fingerprint

    labels = repo / "data/labels/gan-cyclegan.csv"
    from augment.cyclegan import CycleGANConfig

    runtimes = [{"precision": "fp32", "device": "cpu", "processes": 1}, {"precision": "bf16", "device": "cpu", "processes": 1},
                {"precision": "fp32", "device": "cpu", "processes": 2}]
    assert len({_fingerprint(CycleGANConfig(), repo / "data/prepared", labels, r) for r in runtimes}) == 3


def test_a_resumed_gans_curves_hold_each_step_once_and_survive_a_cut_short_log(digits_repo, tmp_path):
    """After a resume, the curves held the steps logged after the checkpoint twice; a dvclive
    metrics.json cut short by a kill or a full disk stopped every later resume with a JSONDecodeError."""
    import signal
    import subprocess
    import sys
    import time

    from tests.e2e import env

    repo, _ = digits_repo
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["gan"]["cyclegan"].update(steps=300, checkpoint_every=10, log_every=5)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out, ckpt, curves = tmp_path / "gan", tmp_path / "ckpt", tmp_path / "curves"
    cmd = [sys.executable, "-m", "pipelines.stages.train_gan", "--gan", "cyclegan", "--seed", "0", "--checkpoint-dir", str(ckpt),
           "--timings-dir", str(tmp_path / "timings"), "--params", str(tmp_path / "params.yaml"), "--out", str(out), "--curves", str(curves)]
    proc = subprocess.Popen(cmd, cwd=repo, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (ckpt / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (ckpt / "checkpoint.pt").is_file() and not out.exists()
    (ckpt / "live/metrics.json").write_text("")  # dvclive was rewriting it when the kill came
    resumed = subprocess.run(cmd, cwd=repo, env=env(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout
    steps = pd.read_csv(curves / "loss_cycle.tsv", sep="\t")["step"].tolist()
    assert steps == list(range(5, 301, 5)), steps  # every logged step once, those before the checkpoint too


def test_determinism_every_kind_of_stage_rerun_from_scratch_gives_the_same_bytes(digits_repo):
    """Same params, recomputed on CPU (fixed thread count): a CycleGAN, both GANs' translations, every
    arm's classifier and evaluate, forced in that order, give byte-identical synthetic sets and
    predictions, and a metrics.json identical but for the stage wall times, which DESIGN.md keeps in
    it (`run.wall_seconds`), and images/s. The stages not forced here are forced elsewhere in this
    module with the same check: prepare, few_labels, arm_inputs and a conditional GAN in the kill
    test below, the other CycleGAN in test_identical_rerun_does_not_cascade; each stage reads only
    its deps, so a rerun of the whole pipeline gives what these do.

    The first run's stages were forked by the tests' warm stage server (pipelines/warm_start.py); the
    forced ones start cold, each a fresh process, as a plain `dvc repro` runs them: the same bytes."""
    repo, _ = digits_repo
    dvc("repro", cwd=repo)
    before = _data_digest(repo)
    forced = ["train_gan@cyclegan-0", "synthesize@cyclegan-0", "synthesize@cgan-0", *[f"train_classifier@{a}-0" for a in ARMS], "evaluate"]
    timings = {stage: repo / "artifacts/timings" / f"{stage}.json" for stage in forced[:-1]}
    assert {json.loads(p.read_text())["started"] for p in timings.values()} == {"warm"}
    assert ran_stages(dvc("repro", "--force", "--single-item", *forced, cwd=repo, extra_env={WARM_STAGES_ENV: "off"}).stdout) == forced
    assert {json.loads(p.read_text())["started"] for p in timings.values()} == {"cold"}
    assert pending(repo) == {}
    assert _data_digest(repo) == before


def _drop_timings(metrics: dict) -> None:
    """Remove what differs between identical runs by construction: the stage wall times and images/s."""
    metrics["run"].pop("wall_seconds")
    metrics["run"].pop("images_per_s")


KILL_STAGES = ["prepare", "few_labels", "train_gan@cgan-0", "synthesize@cgan-0", "arm_inputs", "train_classifier@cgan-0", "evaluate"]


def _data_digest(repo) -> dict[str, str]:
    """What the stages computed, byte for byte, except what differs by construction (stage wall
    times; torch.save's per-file serialization id in weights files). The temporary folder of a stage
    killed while it wrote (`.0.*.tmp` beside `data/synthetic/cgan/0`: augment.io.atomic_dir) is not an
    output: the stage's next run removes it, and git ignores it."""
    import hashlib

    files = [p for pattern in ("data/prepared/*.*", "data/labels/*.csv", "data/synthetic/*/*/pixels.npy",
                               "data/synthetic/*/*/manifest.csv", "reports/predictions/*/*.csv")
             for p in sorted(repo.glob(pattern)) if not any(part.startswith(".") and part.endswith(".tmp") for part in p.parts)]
    digest = {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    _drop_timings(metrics)
    digest["reports/metrics.json"] = json.dumps(metrics, sort_keys=True)
    return digest


def test_a_stage_killed_at_a_random_point_then_repro_gives_the_uninterrupted_outputs(digits_repo):
    """SIGKILL each kind of stage at a random point of its run; `dvc repro` then completes and
    everything it computed is byte-identical to the uninterrupted run (TINY runs on 1 thread)."""
    import os
    import random
    import signal
    import subprocess
    import time

    from tests.e2e import env, stage_process

    repo, _ = digits_repo
    dvc("repro", cwd=repo)
    before = _data_digest(repo)
    rng = random.Random(0)
    for stage in KILL_STAGES:
        module = stage.split("@")[0]
        proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--force", "--single-item", stage], cwd=repo, env=env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pid = stage_process(f"pipelines.stages.{module}", within=repo)
        assert pid is not None, f"{stage}: its process never started"
        time.sleep(rng.uniform(0.2, 3.0))  # torch's import alone takes about 2 s: early and late points both
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it finished first: the repro below must still agree
        proc.wait(timeout=300)
        dvc("repro", cwd=repo)
        assert pending(repo) == {}, stage
        assert _data_digest(repo) == before, f"{stage}: killed and re-run, the outputs differ from the uninterrupted run's"


def test_a_checkpoint_whose_contents_are_not_a_checkpoint_is_ignored_not_fatal(tmp_path, capsys):
    """A file that loads but holds something else (a list; a dict without the networks; a step past
    the run's end) ended the GAN stage in a traceback, or in a missing-folder error naming no checkpoint."""
    import torch

    from pipelines.stages.train_gan import _resumable

    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    good = {"fingerprint": "f", "models": {}, "step": 10, "history": [], "rng": None}
    for blob, why in [([1, 2], "made with other params or data"), ({**good, "models": None} | {"step": 10**6}, "not a checkpoint of this stage's 40 steps"),
                      ({k: v for k, v in good.items() if k != "models"}, "not a checkpoint of this stage's 40 steps")]:
        torch.save(blob, ckpt / "checkpoint.pt")
        assert _resumable(ckpt, "f", "train_gan@cyclegan-0", 40) == (None, None)
        said = capsys.readouterr().out
        assert said.startswith(f"train_gan@cyclegan-0: ignoring {ckpt / 'checkpoint.pt'}, ") and why in said, said
    torch.save(good, ckpt / "checkpoint.pt")
    resumed, found = _resumable(ckpt, "f", "train_gan@cyclegan-0", 40)
    assert found == (ckpt / "checkpoint.pt").resolve() and resumed["step"] == 10
