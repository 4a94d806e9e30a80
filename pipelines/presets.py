"""Presets: partial params.yaml files (e.g. `presets/rgb32.yaml`) turned into `key=value` overrides.

A preset holds only the keys it changes, nested as in params.yaml. `domain-augment run --preset F`
applies it before any `-S`, and `domain-augment preset F` prints it as `-S key=value` arguments
for `dvc exp run`, so the same file serves both.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from pipelines.config import Params, ParamsError, close_key, has_what_dvc_reads, read_yaml


def _value(v: object) -> str:
    # Hydra override grammar, which `dvc exp run -S` uses: lists in brackets, booleans lower-case.
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ",".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, str):  # quoted unless it cannot read as anything but text: '2019', 'true', 'null' stay strings
        plain = v and all(c.isascii() and c.isalnum() or c in "._-/" for c in v) and not (v[0].isdigit() or v[0] in ".-")  # Hydra reads no unquoted ü
        return v if plain and isinstance(yaml.safe_load(v), str) else _quoted(v)
    return str(v)


def _quoted(text: str) -> str:
    r"""`text` as a quoted string of Hydra's grammar, which is not JSON's: a backslash escapes only a quote
    or the backslashes before a quote or the string's end ("a\\b" is a, two backslashes, b; \u00fc and \t
    stay as written), so only those are doubled, and every other character stands as itself."""
    return '"' + re.sub(r'(\\*)("|\Z)', lambda m: m.group(1) * 2 + ('\\"' if m.group(2) else ""), text) + '"'


def overrides_of(node: dict, prefix: str = "") -> list[str]:
    """A nested mapping of params.yaml sections as `key=value` overrides in Hydra's grammar (`-S` values)."""
    out = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        out += overrides_of(value, path + ".") if isinstance(value, dict) else [f"{path}={_value(value)}"]
    return out


def preset_overrides(path: str | Path, params: Path | None = None) -> list[str]:
    """A preset file as `-S` values; with `params`, a key that file lacks is refused naming the preset.
    A relative path is read from the current folder, else from the repository (`params`' folder), as
    `--repo DIR --preset presets/rgb32.yaml` from elsewhere means; not found, the message says where it
    looked and which presets the repository has."""
    path = Path(path)
    repo = Path(params).parent if params is not None else None
    if not path.exists() and not path.is_absolute() and repo is not None and (repo / path).exists():
        path = repo / path
    if not path.exists():
        looked = f"{Path.cwd()}" + (f" and {repo.resolve()}" if repo is not None and repo.resolve() != Path.cwd() else "")
        have = sorted(p.relative_to(repo).as_posix() for p in (repo / "presets").glob("*.yaml")) if repo is not None else []
        raise ParamsError(f"{path}: preset not found (looked in {looked})" + (f"; the repository's presets: {', '.join(have)}" if have else ""))
    raw = read_yaml(path, "preset not found")
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a YAML {type(raw).__name__}"
        raise ParamsError(f"{path}: a preset is a mapping of params.yaml sections (e.g. data: {{image_size: 32}}), got {got}")
    overrides = overrides_of(raw)
    if params is not None:
        known = read_yaml(params, "not found")
        problems = [why.replace("-S ", f"{path}: ", 1) for o in overrides if (why := _unknown_key(known, o))]
        if problems:
            raise ParamsError("\n".join(problems))
    return overrides


def _unknown_key(raw: object, override: str) -> str | None:
    """Why `override` names no key of the params file (None when it does). `dvc exp run -S` refuses
    such a key with a hint to append it (`+key=value`), which a misspelt key does not want."""
    key, equals, _ = override.partition("=")
    key = key.strip()
    if key.startswith("~"):  # delete (`~key`, or `~key=value`): Hydra's own grammar, left to it
        return None
    if not equals:  # Hydra's own words were "missing EQUAL at '<EOF>'" and a link
        return f"-S {override}: expected KEY=VALUE (e.g. -S {key or 'gan.cyclegan.steps'}=400)"
    if key.startswith("+"):  # append: left to Hydra
        return None
    node, walked = raw, []
    for part in key.split("."):
        if isinstance(node, list):  # Hydra sets a list whole: `classic.transforms.0.p=0.5` named no key
            whole = ".".join(walked)
            return (f"-S {override}: {whole} is a list, which -S sets whole, not one entry of it: give the whole list "
                    f"(-S '{whole}=[...]'), or edit params.yaml")
        walked.append(part)
        if not isinstance(node, dict) or part not in node:
            close = close_key(key)
            return f"-S {override}: unknown key '{key}' (params.yaml has none)" + (f"; did you mean {close}?" if close else "")
        node = node[part]
    return None


def as_set_values(overrides: list[str]) -> str:
    """`-S a=1 -S b=2` for a message; counted, not listed, past 200 characters."""
    return f"-S {' -S '.join(overrides)}" if len(" ".join(overrides)) <= 200 else f"{len(overrides)} -S values"


def check_overrides(params: Path, overrides: list[str], *, into: Path | None = None, described: str | None = None) -> Params:
    """Apply `key=value` overrides to a copy of `params` written at `into` (None: a temporary copy,
    removed after), exactly as `dvc exp run -S` applies them, and validate it: a key the file lacks or
    a refused value raises ParamsError naming the key, and `params` itself is never touched. Returns
    the checked params, as a run with these overrides reads them.
    `described`: where the overrides came from, for the message (default: as -S values)."""
    import shutil

    if into is None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return check_overrides(params, overrides, into=Path(tmp) / Path(params).name, described=described)

    from dvc.exceptions import DvcException
    from dvc.utils.hydra import apply_overrides

    from pipelines.config import parse_params

    raw = read_yaml(params, "not found")
    problems = [why for o in overrides if (why := _unknown_key(raw, o))]
    if problems:
        raise ParamsError("\n".join(problems))
    shutil.copyfile(params, into)
    try:
        apply_overrides(into, list(overrides))
    except DvcException as exc:  # e.g. a value Hydra's grammar cannot parse: named alone, not among a preset's values
        bad = overrides
        for override in overrides:
            shutil.copyfile(params, into)
            try:
                apply_overrides(into, [override])
            except DvcException:
                bad = [override]
                break
        key, _, value = bad[0].partition("=")
        hint = ("; a value with characters the override grammar reserves (~, spaces, *, ...) or letters beyond ASCII (ü) goes in quotes, e.g. "
                "-S 'data.root=\"/data/my photos\"', and ~ is not expanded" if any(
                    grammar in f"{exc} {exc.__cause__}" for grammar in ("LexerNoViableAlt", "mismatched input")) else
                f"; a list goes in square brackets: -S '{key}=[{value}]' (values apart by commas are a sweep's, not a list)"
                if "," in value and not value.lstrip().startswith(("[", "'", '"')) else "")
        said = " ".join(line for line in f"{exc}{f': {exc.__cause__}' if exc.__cause__ else ''}".splitlines()
                        if not line.startswith("See https://hydra.cc"))  # DVC's option name and Hydra's link: not this tool's words
        said = said.replace("Invalid `--set-param` value: ", "")
        raise ParamsError(f"-S {' -S '.join(bad)}: not a value -S can read: {said}{hint}") from None
    # Not the temp copy's path; a preset's many values are counted, not listed (the message names the key)
    label = f"{params.name} with " + (described or as_set_values(overrides))
    try:
        raw = read_yaml(into, "not found")
    except ParamsError as exc:  # ruamel.yaml, which DVC writes -S values with, can misplace a comment after a block it rewrote
        detail = str(exc).split(": not valid YAML: ", 1)[-1].replace(str(into), params.name).replace("\n", " ")
        raise ParamsError(f"{label}: DVC's writer of -S values turned {params.name} into YAML that does not parse ({detail}); "
                          f"{params.name} is unchanged: set these keys in it by hand") from None
    checked = parse_params(raw, label)
    has_what_dvc_reads(raw, Path(params), label)  # `-S ~runtime.launcher` would take away what dvc.yaml reads
    return checked
