"""Every stage re-runs when the project code it imports changes, and only then.

dvc.yaml gives each stage one code dep, its pin data/code/<module>.json, which the `code` stage
writes from the stage module's import closure (pipelines/code_deps.py): a missing file in the
closure gives stale results that look current, an extra one re-runs work for nothing.
"""
import json
import shutil

import pytest
import yaml

from pipelines.code_deps import PACKAGES, code_pin, import_closure, pin_path, stage_modules, write_code_pins
from tests.conftest import REPO


def _stages():
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in spec.items():
        body = stage.get("do", stage)
        module = body["cmd"].split(" -m ", 1)[1].split()[0]
        yield name, module, body["deps"]


@pytest.mark.parametrize("stage, module, deps", [s for s in _stages() if s[0] != "code"], ids=lambda v: v if isinstance(v, str) and "." not in v else "")
def test_each_stage_depends_on_its_own_code_pin_and_on_no_source_file(stage, module, deps):
    assert pin_path("data/code", module).as_posix() in deps, f"{stage}: dvc.yaml misses its code pin data/code/{module.rsplit('.', 1)[-1]}.json"
    assert not [d for d in deps if d.endswith(".py")], f"{stage}: lists source files; its code pin covers them"
    assert module in stage_modules(REPO)


def test_the_code_stage_reads_every_package_and_pins_every_stage_module():
    code = dict((name, deps) for name, _, deps in _stages())["code"]
    assert set(PACKAGES) <= set(code)
    used = {module for name, module, _ in _stages() if name != "code"}
    assert used == set(stage_modules(REPO))  # no stage module without a stage, none pinned for nothing


def test_a_pin_lists_exactly_the_files_its_stage_imports_and_changes_only_with_them(tmp_path):
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    before = write_code_pins(tmp_path / "before", tmp_path)
    for module, pin in before.items():
        assert set(pin["sha256"]) == import_closure(module, tmp_path)
        assert json.loads(pin_path(tmp_path / "before", module).read_text()) == pin
    report = tmp_path / "augment/report_html.py"
    report.write_text(report.read_text() + "\n# an edit\n")
    after = write_code_pins(tmp_path / "after", tmp_path)
    changed = {m for m in before if pin_path(tmp_path / "before", m).read_bytes() != pin_path(tmp_path / "after", m).read_bytes()}
    assert changed == {m for m in before if "augment/report_html.py" in before[m]["sha256"]} == {"pipelines.stages.evaluate"}
    assert after["pipelines.stages.evaluate"]["sha256"]["augment/report_html.py"] != before["pipelines.stages.evaluate"]["sha256"]["augment/report_html.py"]


def test_the_closure_follows_imports_inside_functions():
    closure = import_closure("pipelines.stages.train_gan", REPO)
    assert "pipelines/stages/__init__.py" in closure  # sets OpenMP's wait policy before torch loads
    assert "augment/acceleration.py" in closure and "models/discriminators.py" in closure
    assert "augment/classic_spec.py" in closure  # imported by pipelines/config.py, inside a validator too
    assert code_pin("pipelines.stages.train_gan", REPO)["module"] == "pipelines.stages.train_gan"


def test_params_validation_does_not_tie_every_stage_to_the_training_code():
    # pipelines/config.py checks GAN sizes and transforms before any stage runs, but through
    # torch-free modules: changing how a GAN or a classifier trains must not re-run prepare.
    closure = import_closure("pipelines.stages.prepare", REPO)
    for f in ("augment/cyclegan.py", "augment/classify.py", "augment/classic.py", "augment/mixing.py",
              "models/generators.py", "models/discriminators.py", "models/classifiers.py"):
        assert f not in closure, f
    assert "models/sizes.py" in closure and "augment/classic_spec.py" in closure
