"""Which project files each stage's code imports, and the pins that make DVC re-run a stage when they change.

The `code` stage writes data/code/<stage module>.json for every module under pipelines/stages/:
the sha256 of each project file `python -m pipelines.stages.<module>` may import (its import
closure). Each stage depends on its own pin instead of listing those files, so

- a stage re-runs when code it imports changes, and only then: a missing dep gives stale results
  that look current, an extra one re-runs work for nothing;
- dvc.lock holds one entry per stage for its code instead of one per file (about 25). DVC reads
  and rewrites the whole lock file after every stage, with a pure-Python YAML parser: a lock
  three times smaller saves about 2 s per stage.

The closure is computed from the source: every `import` statement, including those inside
functions, and each package's `__init__.py`; imports under `if TYPE_CHECKING:` never run and are
left out. Only the project's packages count; installed libraries are pinned by the environment.
"""
from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

PACKAGES = ("augment", "models", "pipelines")
STAGES_PACKAGE = "pipelines.stages"


def _module_file(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
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


def _imports(root: Path, path: Path) -> set[str]:
    """Project modules named by the import statements of one file (absolute and relative)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
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


def import_closure(module: str, root: str | Path = ".") -> set[str]:
    """Root-relative paths of every project file `python -m module` may import."""
    root = Path(root).resolve()
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__.py and a/b/__init__.py too
            f = _module_file(root, ".".join(parts[:i]))
            if f is not None and f not in seen:
                seen.add(f)
                todo.extend(_imports(root, f))
    return {p.relative_to(root).as_posix() for p in seen}


def stage_modules(root: str | Path = ".") -> list[str]:
    """Every stage module but the code stage itself (it depends on all the code): `pipelines.stages.<name>`."""
    folder = Path(root).joinpath(*STAGES_PACKAGE.split("."))
    return sorted(f"{STAGES_PACKAGE}.{p.stem}" for p in folder.glob("*.py") if p.stem not in ("__init__", "code"))


def pin_path(out: str | Path, module: str) -> Path:
    """data/code/<name>.json for `pipelines.stages.<name>`."""
    return Path(out) / f"{module.rsplit('.', 1)[-1]}.json"


def code_pin(module: str, root: str | Path = ".") -> dict:
    root = Path(root)
    files = sorted(import_closure(module, root))
    return {"module": module, "sha256": {f: hashlib.sha256((root / f).read_bytes()).hexdigest() for f in files}}


def write_code_pins(out: str | Path, root: str | Path = ".") -> dict[str, dict]:
    """One pin per stage module under `out`; returns them by module."""
    pins = {m: code_pin(m, root) for m in stage_modules(root)}
    for module, pin in pins.items():
        pin_path(out, module).write_text(json.dumps(pin, indent=1, sort_keys=True) + "\n")
    return pins
