"""Presets: partial params.yaml files (e.g. `presets/rgb32.yaml`) turned into `key=value` overrides.

A preset holds only the keys it changes, nested as in params.yaml. `domain-augment run --preset F`
applies it before any `-S`, and `domain-augment preset F` prints it as `-S key=value` arguments
for `dvc exp run`, so the same file serves both.
"""
from __future__ import annotations

import json
from pathlib import Path

from pipelines.config import ParamsError, read_yaml


def _value(v: object) -> str:
    # Hydra override grammar, which `dvc exp run -S` uses: lists in brackets, booleans lower-case.
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ",".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, str):
        return v if v and all(c.isalnum() or c in "._-/" for c in v) else json.dumps(v)
    return str(v)


def _flatten(node: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        out += _flatten(value, path + ".") if isinstance(value, dict) else [f"{path}={_value(value)}"]
    return out


def preset_overrides(path: str | Path) -> list[str]:
    raw = read_yaml(path, "preset not found")
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: a preset is a mapping of params.yaml sections, got {type(raw).__name__}")
    return _flatten(raw)


def check_overrides(params: Path, overrides: list[str], *, into: Path) -> None:
    """Apply `key=value` overrides to a copy of `params` written at `into`, exactly as `dvc exp run -S`
    applies them, and validate it: a refused value raises ParamsError naming its key, and `params`
    itself is never touched."""
    import shutil

    from dvc.utils.hydra import apply_overrides

    from pipelines.config import parse_params

    shutil.copyfile(params, into)
    apply_overrides(into, list(overrides))
    parse_params(read_yaml(into, "not found"), str(params))
