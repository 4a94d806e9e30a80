"""What each arm reads, pinned by the arm_inputs stage and checked by its classifiers."""
import numpy as np
import pytest

from augment.arm_inputs import arm_reads, check_pinned, param_values, write_arm_inputs
from augment.arms import ARMS, arm_params
from augment.io import StaleInput, write_csv

import pandas as pd

PARAMS = {"mix": {"synthetic_fraction": 0.5, "target_fraction": 0.5},
          "classic": {"transforms": [{"name": "GaussNoise", "p": 0.2, "std_range": [0.03, 0.1]}]}}


@pytest.fixture()
def inputs(tmp_path):
    labels, synthetic = tmp_path / "labels", tmp_path / "synthetic"
    for arm in ARMS:
        write_csv(pd.DataFrame(columns=["path", "label_index"]), labels / f"arm-{arm}.csv")
    for gan in ("cyclegan", "cgan"):
        for seed in (0, 1):
            d = synthetic / gan / str(seed)
            d.mkdir(parents=True)
            (d / "manifest.csv").write_text(f"path,label_index\n{gan}{seed}.png,0\n")
            np.save(d / "pixels.npy", np.full((1, 4, 4, 1), seed, np.uint8))
    pins = write_arm_inputs(tmp_path / "arms", labels=labels, synthetic=synthetic, gan_seeds=[0, 1], params=PARAMS)
    return tmp_path, labels, synthetic, pins


def test_each_arm_pins_only_what_it_reads(inputs):
    _, _, _, pins = inputs
    assert set(pins["source_only"]["sha256"]) == {"labels/arm-source_only.csv"} and pins["source_only"]["params"] == {}
    assert set(pins["cgan"]["sha256"]) == {"labels/arm-cgan.csv"} | {f"synthetic/cgan/{s}/{f}" for s in (0, 1) for f in ("manifest.csv", "pixels.npy")}
    assert pins["classic"]["params"] == {"mix.synthetic_fraction": 0.5, "classic.transforms": PARAMS["classic"]["transforms"]}
    assert pins["cyclegan"]["params"] == {"mix.synthetic_fraction": 0.5}  # not the classic transforms: changing them leaves it alone
    assert pins["target_few"]["params"] == {"mix.target_fraction": 0.5} and pins["oracle"]["params"] == {}
    assert arm_params(ARMS["test_time"]) == [] and not any(k.startswith("synthetic") for k in pins["test_time"]["sha256"])


def test_a_classifier_refuses_inputs_that_differ_from_the_pin(inputs):
    root, labels, synthetic, _ = inputs
    arm = ARMS["cyclegan_classic"]
    reads = arm_reads(arm, labels=labels, synthetic=synthetic, gan_seeds=[0, 1], gan_seed=1)
    check_pinned(root / "arms/cyclegan_classic.json", reads, param_values(arm, PARAMS))  # as pinned: fine
    changed = {**PARAMS, "classic": {"transforms": [{"name": "GaussNoise", "p": 0.5, "std_range": [0.03, 0.1]}]}}
    with pytest.raises(StaleInput, match="classic.transforms differs"):
        check_pinned(root / "arms/cyclegan_classic.json", reads, param_values(arm, changed))
    np.save(synthetic / "cyclegan/1/pixels.npy", np.full((1, 4, 4, 1), 9, np.uint8))
    with pytest.raises(StaleInput, match=r"cyclegan/1/pixels.npy: changed since"):
        check_pinned(root / "arms/cyclegan_classic.json", reads)
    with pytest.raises(FileNotFoundError, match="run the arm_inputs stage first"):
        check_pinned(root / "arms/missing.json", reads)
