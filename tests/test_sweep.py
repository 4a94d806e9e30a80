"""`domain-augment sweep`: DVC's own queue runs one experiment per value; the plot chooses on target_val."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipelines.config import ParamsError
from pipelines.sweep import experiment_name, parse_spec
from tests.conftest import REPO, make_folders
from tests.e2e import ONE_SEED, dvc, env, merge, project_copy, run

pytestmark = pytest.mark.e2e


def test_sweep_spec_is_parsed_and_a_bad_one_named():
    assert parse_spec("mix.synthetic_fraction=0.25, 0.5") == ("mix.synthetic_fraction", ["0.25", "0.5"])
    assert experiment_name("mix.synthetic_fraction", "0.25") == "sweep-mix-synthetic-fraction-0-25"
    for bad in ("mix.synthetic_fraction", "mix.synthetic_fraction=0.5", "=1,2"):
        with pytest.raises(ParamsError, match="expected KEY=V1,V2"):
            parse_spec(bad)
    # a value left out or given twice was dropped or run once without a word
    with pytest.raises(ParamsError, match=r"value 2 of 3 is empty"):
        parse_spec("data.image_size=12,,16")
    with pytest.raises(ParamsError, match=r"\['12'\] given twice"):
        parse_spec("data.image_size=12,16,12")


def test_other_settings_or_another_arm_name_experiments_and_tables_of_their_own(tmp_path):
    """`sweep mix.synthetic_fraction=0.3,0.7 -S gan.cyclegan.steps=400` took the names of the same sweep
    at the default steps and replaced its experiments (`dvc exp rename --force`) and its table; a
    sweep read for another arm, or over other values, replaced the table too."""
    from pipelines.sweep import keep_earlier_table, table_stem

    key = "mix.synthetic_fraction"
    plain, steps = experiment_name(key, "0.3"), experiment_name(key, "0.3", ["gan.cyclegan.steps=400"])
    assert plain == "sweep-mix-synthetic-fraction-0-3" and steps == plain + "-with-gan-cyclegan-steps-400"
    assert experiment_name(key, "0.3", ["b=2", "a=1"]) == experiment_name(key, "0.3", ["a=1", "b=2"]) == plain + "-with-a-1-b-2"
    far, near = (experiment_name(key, "0.3", [f"data.root=/srv/datasets/fleet-cameras/{place}/2026-winter/front"]) for place in ("oslo", "bergen"))
    assert re.fullmatch(re.escape(plain) + r"-with-[0-9a-f]{8}", far) and near != far  # a path is too long to read in a name
    assert table_stem(key, "cyclegan") == key and table_stem(key, "cgan") == key + "-cgan"
    assert table_stem(key, "cgan", ["gan.cgan.steps=400"]) == key + "-cgan-with-gan-cgan-steps-400"
    # the same stem over other values: the earlier table and plot are kept beside the new ones
    csv = tmp_path / f"{key}.csv"
    pd.DataFrame({"experiment": ["sweep-a", "sweep-b"], key: [0.3, 0.7]}).to_csv(csv, index=False)
    csv.with_suffix(".png").write_bytes(b"plot")
    said = []
    keep_earlier_table(csv, pd.DataFrame({"experiment": ["sweep-a", "sweep-b"]}), said.append)  # the same sweep: replaced
    assert csv.exists() and said == []
    keep_earlier_table(csv, pd.DataFrame({"experiment": ["sweep-c", "sweep-d"]}), said.append)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert len(kept) == 2 and re.fullmatch(re.escape(key) + r"\.before-\d{8}-\d{6}\.csv", kept[0]) and kept[1] == kept[0][:-3] + "png", kept
    assert said == [f"the table of an earlier sweep of other values (sweep-a, sweep-b) is kept as {kept[0][:-4]}.csv and .png"]


def test_the_plot_takes_words_and_true_false_as_values(tmp_path, monkeypatch):
    """`sweep gan.cyclegan.loss=lsgan,hinge` ran both experiments, wrote the table, then ended in
    "could not convert string to float: 'hinge'" with no plot."""
    from pipelines.sweep import plot

    for key, values in [("gan.cyclegan.loss", ["hinge", "lsgan"]), ("gan.cyclegan.spectral_norm", [False, True]),
                        ("mix.synthetic_fraction", [0.25, 0.5])]:
        frame = pd.DataFrame({key: values, "val_benefit": [0.1, 0.2], "val_lo": [0.0, 0.1], "val_hi": [0.2, 0.3],
                              "test_benefit": [0.1, 0.15], "test_lo": [0.0, 0.05], "test_hi": [0.2, 0.25], "chosen": [False, True]})
        plot(frame, key, "cyclegan", tmp_path / f"{key}.png")
        assert (tmp_path / f"{key}.png").stat().st_size > 1000
    # a sweep's -S settings head its plot (the table's `set` column; an empty cell reads back as NaN)
    import matplotlib.figure

    titles = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: titles.append(fig.axes[0].get_title()))
    for settings in ("gan.cyclegan.steps=400", "", float("nan")):
        plot(frame.assign(arm="cyclegan", set=settings), key, "cyclegan", tmp_path / "with.png")
    assert titles == ["with -S gan.cyclegan.steps=400", "", ""]


def test_data_tracked_by_dvc_is_not_counted_among_the_stages_the_cache_lacks(tmp_path):
    """A fresh clone lacks a `dvc add`ed folder's data too: the sweep's "outputs of N stage(s)" named
    its .dvc file as a stage."""
    from pipelines.sweep import stages_not_in_cache

    repo = project_copy(tmp_path / "repo")
    (repo / "photos" / "a").mkdir(parents=True)
    (repo / "photos" / "a" / "0.png").write_bytes(b"not read here")
    dvc("add", "-q", "photos", cwd=repo)
    run(["git", "add", "photos.dvc", ".gitignore"], repo)
    run(["git", "commit", "-qm", "photos"], repo)
    shutil.rmtree(repo / "photos")
    shutil.rmtree(repo / ".dvc" / "cache")
    assert '"photos.dvc"' in dvc("status", "--json", cwd=repo).stdout
    assert stages_not_in_cache(repo) == []  # no dvc.lock: no stage has outputs to miss


def test_a_damaged_queue_is_named_by_file_with_the_way_out(tmp_path):
    """The sweep reads DVC's queue in its own process: a queue message cut short (a full disk, a
    killed DVC) ended the sweep in a JSONDecodeError traceback, naming no file."""
    from pipelines.sweep import SweepError, _pending

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "params.yaml").write_text("x: 1\n")
    (repo / "dvc.yaml").write_text("stages:\n  s:\n    cmd: echo ${x} > out.txt\n    params: [x]\n    outs: [out.txt]\n")
    run(["git", "init", "-q"], repo)
    dvc("init", "-q", cwd=repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "init"], repo)
    for name in ("kept", "cut"):
        dvc("exp", "run", "--queue", "-n", name, "-S", f"x={len(name)}", cwd=repo)
        if name == "kept":
            before = set((repo / ".dvc/tmp/exps/celery/broker/in").glob("*.msg"))
    cut = (set((repo / ".dvc/tmp/exps/celery/broker/in").glob("*.msg")) - before).pop()
    cut.write_bytes(cut.read_bytes()[:100])
    assert dvc("queue", "status", cwd=repo, check=False).returncode != 0  # the damage is DVC's to read, not the sweep's
    with pytest.raises(SweepError) as caught:
        _pending(repo, ["kept", "cut"])
    said = str(caught.value)
    assert f"Damaged: {cut.relative_to(repo)}. Remove it while no DVC command runs" in said, said
    assert "JSONDecodeError" in said and "kept" not in said
    cut.unlink()  # the way out it names
    assert _pending(repo, ["kept", "cut"]) == {"Queued": ["kept"], "Running": []}


def test_sweep_runs_the_dvc_queue_and_plots_the_choice(tmp_path):
    repo = project_copy(tmp_path / "repo", merge(ONE_SEED, {"gan": {"kinds": ["cyclegan"]}, "classifier": {"arms": ["source_only", "cyclegan"], "steps": 60, "width": 8}}))
    cli = [sys.executable, "-m", "pipelines.cli"]
    bad = subprocess.run([*cli, "sweep", "mix.synthetic_fraction=0.3,1.5"], cwd=repo, env=env(), capture_output=True, text=True)
    assert bad.returncode == 2 and "mix.synthetic_fraction" in bad.stderr and "Traceback" not in bad.stderr
    # an arm the experiments do not train was found missing only after every experiment had run (KeyError)
    other = subprocess.run([*cli, "sweep", "mix.synthetic_fraction=0.3,0.7", "--arm", "cgan"], cwd=repo, env=env(), capture_output=True, text=True)
    assert other.returncode == 2 and "--arm cgan: not in classifier.arms ['source_only', 'cyclegan']" in other.stderr, other.stderr
    for bad_jobs in (["sweep", "mix.synthetic_fraction=0.3,0.7", "--jobs", "0"], ["run", "--in-place", "--jobs", "-1"]):
        proc = subprocess.run([*cli, *bad_jobs], cwd=repo, env=env(), capture_output=True, text=True)
        assert proc.returncode == 2 and "argument --jobs: " in proc.stderr and "is below" in proc.stderr, proc.stderr
    queue = subprocess.run([sys.executable, "-m", "dvc", "queue", "status"], cwd=repo, env=env(), capture_output=True, text=True)
    assert "sweep-" not in queue.stdout, queue.stdout  # nor its good value 0.3, queued before 1.5 was read
    # As in a fresh clone: dvc.lock records prepare's outputs, the DVC cache lacks them
    dvc("repro", "prepare", cwd=repo)
    run(["git", "add", "dvc.lock"], repo)
    run(["git", "commit", "-qm", "lock"], repo)
    shutil.rmtree(repo / ".dvc" / "cache")
    proc = subprocess.run([*cli, "sweep", "mix.synthetic_fraction=0.3,0.7", "--arm", "cyclegan"], cwd=repo, env=env(),
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "dvc.lock records outputs of 3 stage(s) that the DVC cache lacks (code, index_raw, prepare; a fresh clone" in proc.stdout
    assert "train_gan@cyclegan-0: ran in" in proc.stderr  # the pipeline ran here first, through the flow
    table = pd.read_csv(repo / "reports/sweep/mix.synthetic_fraction.csv")
    assert sorted(table["mix.synthetic_fraction"]) == [0.3, 0.7] and table.chosen.sum() == 1
    assert (table.val_lo <= table.val_benefit).all() and (table.val_benefit <= table.val_hi).all()
    assert (repo / "reports/sweep/mix.synthetic_fraction.png").stat().st_size > 1000
    assert "chosen on target_val" in proc.stdout
    # each experiment reuses the GAN, its translations and the source_only classifiers of that run
    ran = _ran(proc.stdout)
    assert sorted(ran) == ["sweep-mix-synthetic-fraction-0-3", "sweep-mix-synthetic-fraction-0-7"], proc.stdout
    for stages in ran.values():
        assert "train_classifier@cyclegan-0" in stages and not [
            s for s in stages if s.split("@")[0] in ("prepare", "train_gan", "synthesize") or s.startswith("train_classifier@source_only")], proc.stdout
    names = subprocess.run([sys.executable, "-m", "dvc", "exp", "list", "--name-only"], cwd=repo, env=env(),
                           capture_output=True, text=True).stdout.split()
    assert {"sweep-mix-synthetic-fraction-0-3", "sweep-mix-synthetic-fraction-0-7"} <= set(names)
    assert "synthetic_fraction: 0.5" in (repo / "params.yaml").read_text()
    # The same sweep again replaces its experiments once the new runs succeed (each from DVC's run cache here)
    before = subprocess.run([sys.executable, "-m", "dvc", "exp", "list"], cwd=repo, env=env(), capture_output=True, text=True).stdout
    again = subprocess.run([*cli, "sweep", "mix.synthetic_fraction=0.3,0.7", "--arm", "cyclegan"], cwd=repo, env=env(),
                           capture_output=True, text=True, timeout=1200)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    after = subprocess.run([sys.executable, "-m", "dvc", "exp", "list"], cwd=repo, env=env(), capture_output=True, text=True).stdout
    assert after.count("sweep-mix-synthetic-fraction-0-3") == after.count("sweep-mix-synthetic-fraction-0-7") == 1, (before, after)
    assert set(_ran(again.stdout).values()) == {("index_raw",)}, again.stdout  # always changed (dvc.yaml); the rest restored
    assert pd.read_csv(repo / "reports/sweep/mix.synthetic_fraction.csv").equals(table)
    assert (table.arm == "cyclegan").all() and table.set.isna().all()  # no -S: an empty cell
    # The same values under another -S are another sweep: experiments and a table of their own, the earlier ones kept
    other = subprocess.run([*cli, "sweep", "mix.synthetic_fraction=0.3,0.7", "-S", "evaluate.bootstrap_samples=150"], cwd=repo,
                           env=env(), capture_output=True, text=True, timeout=1200)
    assert other.returncode == 0, other.stdout[-3000:] + other.stderr[-3000:]
    tagged = {f"sweep-mix-synthetic-fraction-{v}-with-evaluate-bootstrap-samples-150" for v in ("0-3", "0-7")}
    assert set(_ran(other.stdout)) == tagged and all(set(s) == {"index_raw", "evaluate"} for s in _ran(other.stdout).values()), other.stdout
    listed = dvc("exp", "list", "--name-only", cwd=repo).stdout.split()
    assert sorted(listed) == sorted([*tagged, "sweep-mix-synthetic-fraction-0-3", "sweep-mix-synthetic-fraction-0-7"]), listed
    assert pd.read_csv(repo / "reports/sweep/mix.synthetic_fraction.csv").equals(table)
    with_set = pd.read_csv(repo / "reports/sweep/mix.synthetic_fraction-with-evaluate-bootstrap-samples-150.csv")
    assert set(with_set.experiment) == tagged and (with_set.set == "evaluate.bootstrap_samples=150").all()
    assert "-> reports/sweep/mix.synthetic_fraction-with-evaluate-bootstrap-samples-150.png" in other.stdout.replace(str(repo) + "/", "")
    after = subprocess.run([sys.executable, "-m", "dvc", "exp", "list"], cwd=repo, env=env(), capture_output=True, text=True).stdout
    # A data root the queued experiments would not find stops the sweep before anything is queued:
    # not there, or a folder of the checkout that git does not track (DVC copies tracked files alone)
    make_folders(repo / "photos")
    queue_before = dvc("queue", "status", cwd=repo).stdout
    for root, said in ((tmp_path / "gone", f"data.root {tmp_path / 'gone'!s}: not a folder"),
                       ("photos", "data.root 'photos': a folder that neither git nor DVC tracks")):
        refused = subprocess.run([*cli, "sweep", "mix.synthetic_fraction=0.3,0.7", "--arm", "cyclegan", "-S", "data.dataset=folders",
                                  "-S", f"data.root={root}", "-S", "data.source=src", "-S", "data.target=tgt"],
                                 cwd=repo, env=env(), capture_output=True, text=True, timeout=300)
        assert refused.returncode == 2 and refused.stderr.startswith("error: " + said), refused.stderr
    assert dvc("queue", "status", cwd=repo).stdout == queue_before
    # A rerun whose experiments fail (here: no source image of class a decodes, in params.yaml as the working
    # tree holds it, so the names are the first sweep's) names them and keeps the earlier ones
    broken = make_folders(tmp_path / "broken")
    for image in (broken / "src/train/a").iterdir():
        image.write_bytes(b"not an image")
    params = (repo / "params.yaml").read_text()
    data = {"dataset": "folders", "root": str(broken), "source": "src", "target": "tgt"}
    (repo / "params.yaml").write_text(yaml.safe_dump(merge(yaml.safe_load(params), {"data": data}), sort_keys=False))
    failed = subprocess.run([*cli, "sweep", "mix.synthetic_fraction=0.3,0.7", "--arm", "cyclegan"],
                            cwd=repo, env=env(), capture_output=True, text=True, timeout=1200)
    (repo / "params.yaml").write_text(params)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stdout[-3000:] + failed.stderr[-3000:]
    assert failed.stderr.startswith("note: params.yaml has changes that are not committed: every experiment of this sweep runs with them")
    assert "\nerror: sweep experiments failed; earlier experiments of the same names are kept" in failed.stderr, failed.stderr
    causes = [line for line in failed.stderr.splitlines() if line.startswith("  sweep-mix-synthetic-fraction-")]
    assert len(causes) == 2 and all("no usable image" in line for line in causes), failed.stderr
    kept = subprocess.run([sys.executable, "-m", "dvc", "exp", "list"], cwd=repo, env=env(), capture_output=True, text=True).stdout
    assert kept == after


def _ran(out: str) -> dict[str, tuple[str, ...]]:
    """The stages each experiment ran, from the sweep's lines "NAME: ran A, B; N up to date, M from DVC's run cache"."""
    lines = [line.partition(": ran ") for line in out.splitlines() if line.endswith(" from DVC's run cache")]
    return {name: tuple(s for s in rest.partition(";")[0].split(", ") if s != "no stage") for name, _, rest in lines}


@pytest.mark.parametrize("how", ["ctrl_c", "sigterm", "sigkill", "sigint_in_background"])
def test_ctrl_c_sigterm_or_sigkill_in_a_sweep_stops_its_experiments_in_dvcs_queue(tmp_path, how):
    """DVC's queue runs the experiments in a worker of its own: on Ctrl-C the sweep ended with a
    traceback and its experiments ran on without it; on SIGTERM (a scheduler's stop, sent to the
    sweep alone) the sweep died at once, and they ran on too, as they did after a SIGKILL (the OOM
    killer, `kill -9`), which the sweep cannot handle: its watchdog stops them. Started in the
    background of a script (SIGINT ignored from the start), `kill -INT` let it run on to the end."""
    import os
    import signal
    import time

    from tests.e2e import stage_process
    from tests.services import default_sigint

    repo = project_copy(tmp_path / "repo", merge(ONE_SEED, {"gan": {"kinds": ["cyclegan"], "cyclegan": {"steps": 5000}},
                                                                "classifier": {"arms": ["source_only", "cyclegan"]}}))
    sweep = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "sweep", "mix.synthetic_fraction=0.3,0.7"], cwd=repo, env=env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                             preexec_fn=default_sigint if how != "sigint_in_background" else ignored_sigint)  # as a terminal starts it
    try:
        assert stage_process("pipelines.stages.train_gan", repo, timeout=300), "no experiment trained its GAN"
        if how == "ctrl_c":
            os.killpg(sweep.pid, signal.SIGINT)  # the terminal's Ctrl-C reaches the whole group
        else:
            os.kill(sweep.pid, {"sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL, "sigint_in_background": signal.SIGINT}[how])
        out, err = sweep.communicate(timeout=180)  # after a SIGKILL: until the watchdog, which shares stderr, is done
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    code, word = {"ctrl_c": (130, "interrupted"), "sigterm": (143, "terminated"), "sigkill": (-9, "killed"),
                  "sigint_in_background": (130, "interrupted")}[how]
    assert sweep.returncode == code and "Traceback" not in err, out[-2000:] + err[-3000:]
    said = next((line for line in err.splitlines() if line.startswith(f"domain-augment sweep: {word}; ")), err[-3000:])
    assert said.startswith(f"domain-augment sweep: {word}; removed sweep-mix-synthetic-fraction-0-7-"), err[-3000:]
    assert "; stopped sweep-mix-synthetic-fraction-0-3-" in said and "Experiments of earlier sweeps" in said
    deadline = time.monotonic() + 60
    while stage_process("pipelines.stages.", repo, timeout=0.5) and time.monotonic() < deadline:
        pass
    left = stage_process("pipelines.stages.", repo, timeout=0.5)
    assert left is None, (Path(f"/proc/{left}/cmdline").read_bytes(), Path(f"/proc/{left}/cwd").resolve(), said)  # no stage runs on
    queue = subprocess.run([sys.executable, "-m", "dvc", "queue", "status"], cwd=repo, env=env(), capture_output=True, text=True).stdout
    assert "sweep-" not in queue, queue  # neither queued nor running, nor left as a failed entry


def ignored_sigint() -> None:
    """A process started in the background of a script: SIGINT ignored from the start."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_a_run_stops_on_the_terminal_closing_unless_nohup_ignores_it():
    """SIGHUP (the terminal closed) ended a demo with 129 and no word; under `nohup` the run must go on."""
    import signal

    from pipelines.interrupt import stop_signals

    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        assert signal.SIGHUP in stop_signals()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup
        assert signal.SIGHUP not in stop_signals() and signal.SIGINT in stop_signals()
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_sweep_refuses_values_that_are_one_and_a_set_of_its_own_key(tmp_path):
    """`sweep mix.synthetic_fraction=0.3,0.7 -S mix.synthetic_fraction=0.5` ran both experiments at 0.5
    under the names of 0.3 and 0.7; 0.1 and 0.10 ran twice."""
    from pipelines.sweep import check_sweep

    with pytest.raises(ParamsError, match=r"0\.1 and 0\.10 are one value"):
        parse_spec("mix.synthetic_fraction=0.1,0.10")
    with pytest.raises(ParamsError, match=r"a\.b and a-b would both be named sweep-data-source-a-b"):
        parse_spec("data.source=a.b,a-b")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    for extra in ("mix.synthetic_fraction=0.5", "mix={synthetic_fraction: 0.5, target_fraction: 0.5}", "~mix"):
        with pytest.raises(ParamsError, match=re.escape(f"-S {extra}: ") + "(sets|removes) mix.synthetic_fraction"):
            check_sweep(tmp_path, "mix.synthetic_fraction", ["0.3", "0.7"], [extra], "cyclegan")
    check_sweep(tmp_path, "mix.synthetic_fraction", ["0.3", "0.7"], ["mix.target_fraction=0.4"], "cyclegan")
    # a --repo that is a file, or a git repository without DVC: a traceback, or "dvc status --json failed (253)"
    run(["git", "init", "-q"], tmp_path)
    cli = [sys.executable, "-m", "pipelines.cli"]
    for repo, said in ((tmp_path / "params.yaml", f"--repo {tmp_path / 'params.yaml'}: not a folder"),
                       (tmp_path, f"{tmp_path}: not a DVC repository (no .dvc folder)")):
        proc = subprocess.run([*cli, "--repo", str(repo), "sweep", "mix.synthetic_fraction=0.3,0.7"], capture_output=True, text=True, env=env())
        assert proc.returncode == 2 and proc.stderr.startswith(f"error: {said}"), proc.stderr
