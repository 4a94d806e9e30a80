"""What a run shows of arms the data cannot have: the flow's `transfer-benefit` artifact and the
results `domain-augment run`/`demo` print."""
import json

from pipelines.cli import _print_results
from pipelines.flows import benefit_table

METRICS = {
    "target_test": {
        "source_only": {"accuracy": {"mean": 0.45, "ci95": [0.37, 0.51]}},
        "cyclegan": {"accuracy": {"mean": 0.51, "ci95": [0.46, 0.56]}},
        "oracle": {"status": "unavailable", "reason": "the target train split has no labels"},
    },
    "benefit": {"cyclegan": {"accuracy_delta": {"mean": 0.063, "ci95": [0.016, 0.127]}},
                "oracle": {"status": "unavailable", "reason": "the target train split has no labels"}},  # as evaluate marks it
    "run": {"target_split": {"target_val": 100, "target_test": 400}},
}


def test_an_unavailable_arm_keeps_its_row_with_the_reason():
    metrics = METRICS
    rows = {r["arm"]: r for r in benefit_table(metrics)}
    assert list(rows) == ["source_only", "cyclegan", "oracle"]
    assert rows["cyclegan"]["benefit_vs_source_only"] == 0.063 and rows["cyclegan"]["benefit_ci95"] == [0.016, 0.127]
    assert rows["source_only"]["benefit_vs_source_only"] is None and rows["source_only"]["note"] == ""
    assert rows["oracle"]["target_accuracy"] is None and rows["oracle"]["note"] == "the target train split has no labels"


def test_printed_results_name_an_unavailable_arm_and_why(tmp_path, capsys):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(METRICS))
    _print_results({"stages": [], "metrics": str(path)})
    out = capsys.readouterr().out
    assert "cyclegan     target accuracy 0.510 [0.460, 0.560]   benefit +0.063 [+0.016, +0.127]" in out
    assert "oracle       unavailable: the target train split has no labels" in out


def test_printed_results_end_with_the_answer(tmp_path, capsys):
    metrics = {**METRICS, "target_test": {**METRICS["target_test"]},
               "run": {"target_split": {"target_val": 100, "target_test": 400}},
               "answer": {"chosen_on": "target_val", "none": {"ranked": ["cyclegan"], "verdict": {"cyclegan": "helped"}, "best": "cyclegan"}}}
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics))
    _print_results({"stages": [], "metrics": str(path)})
    out = capsys.readouterr().out
    assert ("  Without target labels, use cyclegan: target accuracy 0.450 -> 0.510, +0.063 [+0.016, +0.127] over source_only "
            "(chosen on the 100 target_val images, measured on the other 400).") in out
    assert "**" not in out and out.index("use cyclegan") > out.index("benefit +0.063")


def test_printed_results_count_the_reports_warnings_and_point_to_the_page(tmp_path, capsys):
    """The terminal said "use cyclegan_few" and pointed to report.md, with no hint that the report
    held seven warnings, a collapsed GAN among them; the columns were cut at 12 and 34 characters.
    A warning of one kind for two GANs was named twice ("Collapsed GAN; Collapsed GAN")."""
    collapsed = {"diversity_ratio": 0.01, "per_seed": {"0": {"diversity_ratio": 0.01}}, "feature_extractor": "x"}
    metrics = {**METRICS, "target_test": {**METRICS["target_test"], "cyclegan_classic": {"accuracy": {"mean": 0.5, "ci95": [0.4, 0.6]}}},
               "gan": {"cyclegan": collapsed, "cgan": collapsed},
               "run": {**METRICS["run"], "mix": {"synthetic_fraction": 0.0, "target_fraction": 0.5}}}
    path = tmp_path / "reports" / "metrics.json"
    path.parent.mkdir()
    path.write_text(json.dumps(metrics))
    stages = [{"stage": "train_classifier@cyclegan_classic-0", "status": "ran", "seconds": 3.0}, {"stage": "prepare", "status": "skipped", "seconds": 0.5}]
    _print_results({"stages": stages, "metrics": str(path)})
    out = capsys.readouterr().out
    assert "  train_classifier@cyclegan_classic-0  ran" in out and "  prepare                              skipped" in out
    assert "  cyclegan_classic  target accuracy 0.500" in out and "  cyclegan          target accuracy 0.510" in out
    assert "  3 warnings in the report: mix.synthetic_fraction is 0; Collapsed GAN (2)\n" in out
    assert f"Report:  {(path.parent / 'report.html').resolve()} (also report.md)" in out


def test_printed_results_of_an_isolated_run_say_where_its_files_are_and_how_to_bring_them_home(tmp_path, capsys):
    """The reports' data/prepared/rejected.csv was nowhere in the repository, whose reports/ still held
    the last committed run's metrics: the run's own folder was not said."""
    workdir = tmp_path / "repo/.dvc/tmp/runs/brave-otter"
    path = workdir / "reports" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(METRICS))
    _print_results({"stages": [], "metrics": str(path), "workdir": str(workdir), "experiment": {"experiment": "brave-otter"}})
    out = capsys.readouterr().out
    assert ("Experiment: brave-otter (each arm's benefit beside earlier runs': dvc exp show --drop '.*' --keep "
            "'Experiment|benefit\\..*\\.accuracy_delta\\.mean'; every column: dvc exp show)") in out  # dvc exp show: 500 columns
    assert (f"Run folder: {workdir} (the reports' data/prepared/... files are there; the repository's own reports/ and data/ are "
            "unchanged: `dvc exp apply brave-otter` brings this run's results into them)") in out
    in_place = tmp_path / "repo" / "reports" / "metrics.json"
    in_place.parent.mkdir()
    in_place.write_text(json.dumps(METRICS))
    _print_results({"stages": [], "metrics": str(in_place), "workdir": str(tmp_path / "repo")})
    assert "Run folder" not in capsys.readouterr().out
