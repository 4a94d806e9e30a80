"""The arms of the experiment: what each classifier is trained on (README: "The pipeline").

Each arm says which synthetic set it mixes in and how many target labels it may see; the
`training_parts` function turns that into the parts of a `MixedBatches`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # annotations only: the arm table stays free of torch, for params validation
    from augment.mixing import LabeledImages


class ArmUnavailable(Exception):
    """The arm cannot be trained on this data (e.g. `oracle` without target train labels)."""


@dataclass(frozen=True)
class Arm:
    name: str
    description: str
    gan: str | None = None  # synthetic set it mixes in
    target_labels: Literal["none", "few", "all"] = "none"
    classic: bool = False  # its added share goes through classic.transforms (albumentations)
    # No training of its own: evaluate adapts the source_only classifiers to the target at test time,
    # by reading target images translated back by its GAN's G_ts, or (renormalize) by re-estimating
    # their BatchNorm statistics on the unlabeled target train images.
    test_time: bool = False
    renormalize: bool = False
    # In the default classifier.arms (params.yaml). cgan_few is not: on the digits it measured nothing that
    # target_few does not, with ten labels per class or two (README, "What `make demo` produces"), and its
    # three classifier stages cost the demo about 22 s of CPU.
    by_default: bool = True


BASELINE = "source_only"  # every benefit is an arm's accuracy minus this arm's
# How an arm that sees a few target labels names them; the reports put in how many it really saw.
FEW = "the data.target_labels_per_class labeled target images per class"

ARMS = {
    arm.name: arm
    for arm in (
        Arm("source_only", "real source train only (the baseline every benefit is measured against)"),
        Arm("classic", "source + source through classic.transforms (albumentations weather and lighting) at mix.synthetic_fraction",
            classic=True),
        Arm("cyclegan", "source + CycleGAN-translated source at mix.synthetic_fraction", gan="cyclegan"),
        Arm("cyclegan_classic", "source + CycleGAN translations through classic.transforms at mix.synthetic_fraction",
            gan="cyclegan", classic=True),
        Arm("cgan", "source + class-conditional GAN translations (made for their label) at mix.synthetic_fraction", gan="cgan"),
        Arm("test_time", "no new training: the source_only classifiers read target test images translated target->source "
            "by the CycleGAN's G_ts", gan="cyclegan", test_time=True),
        Arm("adabn", "no new training: the source_only classifiers with their BatchNorm statistics re-estimated on the unlabeled "
            "target train images (AdaBN, Li et al. 2016)", test_time=True, renormalize=True),
        Arm("target_few", f"source + (at mix.target_fraction of each batch) {FEW}", target_labels="few"),
        Arm("cyclegan_few", "the cyclegan arm's mix (source + CycleGAN-translated source at mix.synthetic_fraction) + (at "
            f"mix.target_fraction of each batch) {FEW}", gan="cyclegan", target_labels="few"),
        Arm("cgan_few", "the cgan arm's mix (source + class-conditional GAN translations at mix.synthetic_fraction) + (at "
            f"mix.target_fraction of each batch) {FEW}", gan="cgan", target_labels="few", by_default=False),
        Arm("oracle", "all labeled target train (upper bound)", target_labels="all"),
    )
}


def unavailable_on_data(arms: list[str], *, target_labeled: bool, labels_per_class: int) -> dict[str, str]:
    """The arms of `arms` that data without labeled target train images (`target_labeled` False), or
    a `data.target_labels_per_class` of 0, leaves unavailable, each with why, as their stages and
    `evaluate` will say."""
    out = {}
    for name in arms:
        arm = ARMS.get(name)
        if arm and arm.target_labels != "none" and not target_labeled:
            out[name] = "it learns from labeled target train images, and the target train has none"
        elif arm and arm.target_labels == "few" and labels_per_class == 0:
            out[name] = "it sees data.target_labels_per_class labeled target images per class, and that is 0"
    return out


def nothing_measurable(arms: list[str], unavailable: dict[str, str]) -> str | None:
    """Why no arm of `arms` could be measured (every one unavailable), in words, or None."""
    if not arms or any(a not in unavailable for a in arms):
        return None
    why = "; ".join(f"{a}: {reason}" for a, reason in unavailable.items())
    return (f"no arm of classifier.arms {list(arms)} can be measured on this data ({why}); add {BASELINE}, which needs no "
            "target label, to classifier.arms")


def arm_params(arm: Arm) -> list[str]:
    """The params.yaml keys (besides `classifier`) that change what `arm`'s classifiers learn from."""
    if arm.test_time or arm.target_labels == "all":
        return []
    added = ["mix.synthetic_fraction"] if arm.gan or arm.classic else []
    added += ["mix.target_fraction"] if arm.target_labels == "few" else []
    return added + (["classic.transforms"] if arm.classic else [])


# GANs some arm mixes in: the items of the train_gan and synthesize stages.
GANS = tuple(sorted({arm.gan for arm in ARMS.values() if arm.gan}))


def gan_seed_for(classifier_seed: int, gan_seeds: list[int]) -> int:
    """The GAN whose images classifier `classifier_seed` of a GAN arm learns from (and whose G_ts
    the test_time arm uses): gan_seeds[classifier_seed % len(gan_seeds)]. Spreading classifier
    seeds over GAN seeds this way lets an interval resample GANs without training a classifier
    per (classifier seed, GAN seed) pair."""
    return gan_seeds[classifier_seed % len(gan_seeds)]


def part_fractions(arm: Arm, synthetic_fraction: float, target_fraction: float) -> dict[str, float]:
    """The share of each training batch every part of `arm` takes (see `training_parts`): "source",
    the added part (its GAN's name, or "classic"), "target_few", or "target" for the oracle."""
    if arm.target_labels == "all":
        return {"target": 1.0}
    few = arm.target_labels == "few"
    rest = 1.0 - target_fraction if few else 1.0
    added = arm.gan or ("classic" if arm.classic else None)
    parts = {"source": rest * (1.0 - synthetic_fraction), added: rest * synthetic_fraction} if added else {"source": rest}
    return {**parts, "target_few": target_fraction} if few else parts


def batch_rows(fractions: dict[str, float], batch_size: int) -> dict[str, int]:
    """Rows per batch of each part with a positive fraction: round(fraction * batch_size), the
    largest part absorbing what rounding leaves over, so every batch holds the fractions as
    nearly as whole rows can."""
    positive = {name: frac for name, frac in fractions.items() if frac > 0}
    rows = {name: int(round(frac * batch_size)) for name, frac in positive.items()}
    if rows:
        rows[max(positive, key=positive.get)] += batch_size - sum(rows.values())
    return rows


def training_parts(
    arm: Arm,
    *,
    source: LabeledImages,
    target: LabeledImages | None,
    synthetic: LabeledImages | None,
    synthetic_fraction: float,
    target_fraction: float = 0.5,
) -> dict[str, tuple[LabeledImages, float]]:
    """The (set, fraction) parts of each training batch for `arm`.

    `target` holds only the target labels this arm may see (few or all); `synthetic` is the
    arm's GAN output with the source labels it was translated from. An arm that sees a few target
    labels draws `target_fraction` of each batch from them, and the rest as it would without them
    (source, and its synthetic share of that rest). For a classic arm, every part but "source" and
    "target_few" is the one `classic.transforms` apply to (see `transformed_parts`).
    """
    if arm.target_labels == "all" and (target is None or len(target) == 0):
        raise ArmUnavailable("the target train split has no labels (it is flat), so there is no oracle to train")
    if arm.target_labels == "few" and (target is None or len(target) == 0):
        raise ArmUnavailable("no labeled target train images are visible (data.target_labels_per_class is 0 or the split is flat)")
    if arm.gan is not None:
        if synthetic is None:
            raise ValueError(f"arm {arm.name!r} needs the {arm.gan} synthetic set")
        if len(synthetic) == 0:
            raise ArmUnavailable(f"synthesize.filter kept none of the {arm.gan} translations (filter.json beside them says why)")
    sets = {"source": source, "classic": source, "target_few": target, "target": target, arm.gan: synthetic}
    return {name: (sets[name], frac) for name, frac in part_fractions(arm, synthetic_fraction, target_fraction).items()}


def transformed_parts(arm: Arm, parts: dict) -> list[str]:
    """The parts of `training_parts(arm)` that classic.transforms apply to: the added share."""
    return [name for name in parts if name not in ("source", "target_few")] if arm.classic else []
