"""What each arm's classifier reads besides the prepared set and `classifier.*`, pinned by content.

A DVC matrix shares its deps and params: were `train_classifier` to depend on the synthetic folders
and on `mix` and `classic`, every arm would re-run whenever any GAN or any of those values changed
(a new `data.target_labels_per_class` re-trains the conditional GAN, and with it `source_only`).
Instead the `arm_inputs` stage writes one small file per arm, `<arm>.json`, with the sha256 of each
file that arm reads (its few-labels file and, for a GAN arm, the manifest and pixels of each of its
GAN's synthetic sets) and the values of the params it reads (`arms.arm_params`). The file changes
only when those inputs change, so each classifier stage depends on its own file; before it trains,
it checks that what it reads is what its file pins (`check_pinned`), so a synthetic set changed
behind DVC's back stops the stage with the file's name instead of training on it.
"""
from __future__ import annotations

import json
from pathlib import Path

from augment.arms import ARMS, Arm, arm_params
from augment.few_labels import consumer_file
from augment.io import StaleInput, sha256_file, write_json

SYNTHETIC_FILES = ("manifest.csv", "pixels.npy")  # what load_synthetic reads of a synthetic set


def arm_reads(arm: Arm, *, labels: Path, synthetic: Path, gan_seeds: list[int], gan_seed: int | None = None) -> dict[str, Path]:
    """{key: path} of the files `arm` reads beyond data/prepared; keys are paths relative to the
    labels and synthetic folders, so that a pin holds wherever those folders are. `gan_seed`: only
    that GAN's set (what one classifier seed reads), else every seed's."""
    reads = {f"labels/{consumer_file(labels, arm=arm.name).name}": consumer_file(labels, arm=arm.name)}
    if arm.gan and not arm.test_time:  # test_time trains nothing: evaluate reads its GAN
        for seed in gan_seeds if gan_seed is None else [gan_seed]:
            for name in SYNTHETIC_FILES:
                reads[f"synthetic/{arm.gan}/{seed}/{name}"] = Path(synthetic) / arm.gan / str(seed) / name
    return reads


def param_value(params: dict, dotted: str):
    """The value at a dotted key (`classifier.steps`) of params.yaml's content as a dict."""
    for part in dotted.split("."):
        params = params[part]
    return params


def param_values(arm: Arm, params: dict) -> dict:
    """{dotted key: value} of the params `arm` reads, from params.yaml's content as a dict."""
    return {key: param_value(params, key) for key in arm_params(arm)}


def pin(arm: Arm, *, labels: Path, synthetic: Path, gan_seeds: list[int], params: dict) -> dict:
    reads = arm_reads(arm, labels=labels, synthetic=synthetic, gan_seeds=gan_seeds)
    missing = [str(path) for path in reads.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"arm {arm.name!r} reads {', '.join(missing)}, which do not exist: run the stages that write them first (dvc repro)")
    return {"arm": arm.name, "sha256": {key: sha256_file(path) for key, path in sorted(reads.items())},
            "params": param_values(arm, params)}


def write_arm_inputs(out: Path, *, labels: Path, synthetic: Path, gan_seeds: list[int], params: dict,
                     gan_kinds: list[str] | None = None) -> dict[str, dict]:
    """`<arm>.json` under `out` for every arm that can run: all but those whose GAN is not among the
    trained `gan_kinds` (default: every kind); returns them by arm name. `params`: params.yaml as a dict."""
    pins = {name: pin(arm, labels=labels, synthetic=synthetic, gan_seeds=gan_seeds, params=params) for name, arm in ARMS.items()
            if arm.gan is None or gan_kinds is None or arm.gan in gan_kinds}
    for name, record in pins.items():
        write_json(record, Path(out) / f"{name}.json")
    return pins


def check_pinned(pins_file: Path, reads: dict[str, Path], params: dict | None = None) -> None:
    """Raise StaleInput unless every file in `reads` has the sha256 that `pins_file` gives it, and
    every param in `params` ({dotted key: value}) the value it pins."""
    pins_file = Path(pins_file)
    if not pins_file.is_file():
        raise FileNotFoundError(f"{pins_file}: missing; run the arm_inputs stage first (dvc repro arm_inputs)")
    record = json.loads(pins_file.read_text())
    for key, value in (params or {}).items():
        if json.loads(json.dumps(value)) != record.get("params", {}).get(key, object()):
            raise StaleInput(f"params.yaml {key} differs from the value {pins_file} pins; run `dvc repro` (the arm_inputs stage is out of date)")
    pinned = record["sha256"]
    for key, path in reads.items():
        if key not in pinned:
            raise StaleInput(f"{path}: not pinned by {pins_file}; run `dvc repro` (the arm_inputs stage is out of date)")
        if sha256_file(path) != pinned[key]:
            raise StaleInput(f"{path}: changed since {pins_file} was written; run `dvc repro` so that the classifier reads what DVC tracks")
