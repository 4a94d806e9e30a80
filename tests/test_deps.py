"""dvc.yaml lists, for every stage, exactly the project files the stage's code imports.

A stage whose code changes must re-run, and only then: a missing dep gives stale results that
look current, an extra one re-runs work for nothing. The import closure is computed from the
source (every `import` statement, including those inside functions, and each package's
`__init__.py`), so dvc.yaml cannot drift from the code again.
"""
import ast
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

PACKAGES = ("augment", "models", "pipelines")


def _module_file(name: str) -> Path | None:
    base = REPO.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    """Nodes under `if TYPE_CHECKING:`: imports for annotations that never run."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                skip.update(ast.walk(child))
    return skip


def _imports(path: Path) -> set[str]:
    """Project modules named by the import statements of one file (absolute and relative)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = set()
    skip = _type_checking_only(tree)
    for node in ast.walk(tree):
        if node in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)  # `from pkg import module`
    return {m for m in found if m.split(".")[0] in PACKAGES}


def import_closure(module: str) -> set[str]:
    """Repo-relative paths of every project file `python -m module` may import."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__.py and a/b/__init__.py too
            f = _module_file(".".join(parts[:i]))
            if f is not None and f not in seen:
                seen.add(f)
                todo.extend(_imports(f))
    return {p.relative_to(REPO).as_posix() for p in seen}


def _stages():
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in spec.items():
        body = stage.get("do", stage)
        cmd = body["cmd"]
        module = cmd.split(" -m ", 1)[1].split()[0]
        yield name, module, body["deps"]


@pytest.mark.parametrize("stage, module, deps", list(_stages()), ids=lambda v: v if isinstance(v, str) and "." not in v else "")
def test_stage_deps_are_exactly_the_code_it_imports(stage, module, deps):
    code_deps = {d for d in deps if d.endswith(".py")}
    closure = import_closure(module)
    fix = "; `python -m tests.test_deps --write` rewrites the code deps of dvc.yaml"
    assert not closure - code_deps, f"{stage}: dvc.yaml misses code it runs: {sorted(closure - code_deps)}{fix}"
    assert not code_deps - closure, f"{stage}: dvc.yaml lists code it never imports: {sorted(code_deps - closure)}{fix}"


def test_the_closure_follows_imports_inside_functions():
    closure = import_closure("pipelines.stages.train_gan")
    assert "pipelines/stages/__init__.py" in closure  # sets OpenMP's wait policy before torch loads
    assert "augment/acceleration.py" in closure and "models/discriminators.py" in closure
    assert "augment/classic_spec.py" in closure  # imported by pipelines/config.py, inside a validator too


def test_params_validation_does_not_tie_every_stage_to_the_training_code():
    # pipelines/config.py checks GAN sizes and transforms before any stage runs, but through
    # torch-free modules: changing how a GAN or a classifier trains must not re-run prepare.
    closure = import_closure("pipelines.stages.prepare")
    for f in ("augment/cyclegan.py", "augment/classify.py", "augment/classic.py", "augment/mixing.py",
              "models/generators.py", "models/discriminators.py", "models/classifiers.py"):
        assert f not in closure, f
    assert "models/sizes.py" in closure and "augment/classic_spec.py" in closure


def rewrite_code_deps(text: str) -> str:
    """dvc.yaml with each stage's run of `- <file>.py` deps replaced by its import closure (comments kept)."""
    modules = {name: module for name, module, _ in _stages()}
    out, stage, in_code = [], None, False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        named = re.match(r"^  (\S+):\s*(#.*)?$", line)  # a stage's name, maybe with a comment after it
        if named:
            stage = named.group(1)
        is_code = stripped.startswith("- ") and stripped.endswith(".py")
        if is_code and not in_code:
            indent = line[: len(line) - len(line.lstrip())]
            out += [f"{indent}- {f}\n" for f in sorted(import_closure(modules[stage]))]
        in_code = is_code
        if not is_code:
            out.append(line)
    return "".join(out)


if __name__ == "__main__":
    import sys

    path = REPO / "dvc.yaml"
    new = rewrite_code_deps(path.read_text())
    if "--write" in sys.argv:
        path.write_text(new)
    else:
        sys.stdout.write(new)
