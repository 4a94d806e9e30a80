"""From per-seed predictions to `metrics.json` and a human-readable report.

`arm_metrics` builds the `target_test`, `source_test` and `benefit` sections of metrics.json
(keys fixed by DESIGN.md); `render_report` and `plot_arms` present the same numbers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from augment.metrics import paired_delta, summarize
from augment.validation import VAL_SET

BASELINE = "source_only"


def stack_predictions(per_seed: dict[int, pd.DataFrame], eval_set: str) -> tuple[np.ndarray, np.ndarray]:
    """Seeds' predictions on one eval set -> preds (S, N), labels (N,), checked to be the same images."""
    frames = [df[df.eval_set == eval_set].reset_index(drop=True) for _, df in sorted(per_seed.items())]
    first = frames[0]
    for seed, f in zip(sorted(per_seed), frames):
        if not f.path.equals(first.path):
            raise ValueError(f"seed {seed} predicted a different {eval_set} set than seed {min(per_seed)}; re-run the classifiers")
    return np.stack([f.pred.to_numpy() for f in frames]), first.label_index.to_numpy()


def arm_metrics(
    predictions: dict[str, dict[int, pd.DataFrame]], *, num_classes: int, samples: int, seed: int,
    gan_seed_of: dict[int, int] | None = None,
) -> dict:
    """predictions[arm][seed] is a predictions.csv frame; returns target_test, source_test, benefit,
    and target_val (accuracy and its delta over source_only) when frames hold target_val rows.

    `gan_seed_of[classifier seed]`: the GAN seed a GAN arm's classifier of that seed learned from.
    Every arm's bootstrap then resamples GAN seeds too (the same replicates for every arm, so
    benefits stay paired)."""
    out: dict = {"target_test": {}, "source_test": {}, "benefit": {}}
    with_val = any((df.eval_set == VAL_SET).any() for per_seed in predictions.values() for df in per_seed.values())
    if with_val:
        out[VAL_SET] = {}
    stacked = {}
    for arm, per_seed in predictions.items():
        groups = np.array([gan_seed_of[s] for s in sorted(per_seed)]) if gan_seed_of else None
        stats = {"samples": samples, "seed": seed, "groups": groups}
        preds_t, labels_t = stack_predictions(per_seed, "target_test")
        preds_s, labels_s = stack_predictions(per_seed, "source_test")
        stacked[arm] = {"target_test": (preds_t, labels_t)}
        out["target_test"][arm] = summarize(preds_t, labels_t, num_classes=num_classes, **stats)
        out["source_test"][arm] = summarize(preds_s, labels_s, num_classes=num_classes, with_f1=False, **stats)
        if with_val:
            preds_v, labels_v = stack_predictions(per_seed, VAL_SET)
            stacked[arm][VAL_SET] = (preds_v, labels_v)
            out[VAL_SET][arm] = summarize(preds_v, labels_v, num_classes=num_classes, with_f1=False, **stats)
        stacked[arm]["seeds"], stacked[arm]["groups"] = sorted(per_seed), groups
    if BASELINE in stacked:
        base = stacked[BASELINE]
        for arm, st in stacked.items():
            if arm == BASELINE:
                continue
            if st["seeds"] != base["seeds"]:
                raise ValueError(f"arm {arm!r} has seeds {st['seeds']} but {BASELINE} has {base['seeds']}; benefit is paired by seed")
            for section in ("target_test", VAL_SET) if with_val else ("target_test",):
                preds, labels = st[section]
                delta = paired_delta(preds, base[section][0], labels, samples=samples, seed=seed, groups=st["groups"])
                if section == "target_test":
                    out["benefit"][arm] = {"accuracy_delta": delta}
                else:
                    out[VAL_SET][arm]["accuracy_delta"] = delta
    return out


def validation_note(metrics: dict) -> str:
    """Which split is for what, in one paragraph for the reports."""
    split = metrics["run"].get("target_split", {})
    return (f"{split.get('target_val', '?')} labeled target test images (evaluate.validation_fraction, stratified, fixed by "
            f"evaluate.validation_seed) are held out as `target_val`: choose settings on them (`dvc exp show`, "
            f"`domain-augment sweep`). Every target-test figure above is on the other {split.get('target_test', '?')} images, "
            "which no choice in this pipeline reads.")


def filter_note(gans: dict) -> str:
    """One sentence on synthesize.filter: what it kept of each GAN's translations."""
    kinds = {g.get("filter", "none") for g in gans.values()}
    if kinds <= {"none"}:
        return "Synthetic filtering: none (synthesize.filter); every translation is used."
    kept = "; ".join(f"{gan} kept {with_spread(g, 'kept_fraction')}" for gan, g in gans.items() if "kept_fraction" in g)
    return ("Synthetic filtering: confirmed (synthesize.filter): a translation is kept only when a classifier trained on real "
            f"source alone reads it as its label. Share kept: {kept}. Label preservation is measured on the kept images.")


def kid_subsets(quality: dict) -> str:
    """KID's own spread over its random subsets (torchmetrics' kid_std), when measured."""
    return f"; subsets ± {quality['kid_subset_std']:.4f}" if "kid_subset_std" in quality else ""


def with_spread(quality: dict, key: str, digits: int = 3) -> str:
    """`mean ± std (per seed: a, b)` of one GAN figure for the reports; the plain value with one seed."""
    text = f"{quality[key]:.{digits}f}"
    per_seed = quality.get("per_seed", {})
    if len(per_seed) > 1:
        text += f" ± {quality[f'{key}_seed_std']:.{digits}f} (seeds " + ", ".join(f"{s}: {q[key]:.{digits}f}" for s, q in per_seed.items()) + ")"
    return text


def _fmt(stat: dict) -> str:
    lo, hi = stat["ci95"]
    return f"{stat['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def render_report(metrics: dict, *, arms_info: dict[str, str], unavailable: dict[str, str], dataset: dict, samples: dict[str, str]) -> str:
    lines = [
        "# domain-augment report",
        "",
        f"Source domain `{dataset['source']}` -> target domain `{dataset['target']}`; "
        f"{len(dataset['classes'])} classes, {dataset['image_size']} px, {dataset['channels']} channel(s). "
        f"Seeds: {metrics['run']['seeds']}. Device: {metrics['run']['device']}.",
        "",
        "## Target-domain test accuracy by arm",
        "",
        "Mean over seeds with a 95% bootstrap interval (test images and seeds resampled). "
        "Benefit is the arm minus `source_only`, paired by seed and image.",
        "",
        "| arm | target accuracy | target macro-F1 | source accuracy | benefit vs source_only | training data |",
        "|---|---|---|---|---|---|",
    ]
    for arm, t in metrics["target_test"].items():
        benefit = metrics["benefit"].get(arm, {}).get("accuracy_delta")
        lines.append(
            f"| {arm} | {_fmt(t['accuracy'])} | {_fmt(t['macro_f1'])} | {_fmt(metrics['source_test'][arm]['accuracy'])} | "
            f"{_fmt(benefit) if benefit else '-'} | {arms_info.get(arm, '')} |"
        )
    for arm, reason in unavailable.items():
        lines.append(f"| {arm} | not run | | | | {reason} |")
    lines += ["", "![accuracy by arm](plots/arms.png)", ""]
    if metrics.get(VAL_SET):
        lines += ["## Target validation split (for choosing settings)", "", validation_note(metrics), "",
                  "| arm | validation accuracy | benefit vs source_only |", "|---|---|---|"]
        for arm, v in metrics[VAL_SET].items():
            lines.append(f"| {arm} | {_fmt(v['accuracy'])} | {_fmt(v['accuracy_delta']) if 'accuracy_delta' in v else '-'} |")
        lines.append("")
    if metrics.get("gan"):
        lines += ["## GANs", "", "| gan | FID | KID | label preservation | feature extractor |", "|---|---|---|---|---|"]
        for gan, g in metrics["gan"].items():
            lines.append(f"| {gan} | {with_spread(g, 'fid')} | {with_spread(g, 'kid', 4) + kid_subsets(g)} | {with_spread(g, 'label_preservation')} | {g['feature_extractor']} |")
        lines += ["", filter_note(metrics["gan"]), ""]
        for gan, path in samples.items():
            lines += [f"`{gan}` samples (rows: source, translated, reconstructed):", "", f"![{gan} samples]({path})", ""]
    lines += ["## Stage wall time (seconds)", "", "| stage | seconds | images/s |", "|---|---|---|"]
    lines += [f"| {k} | {v:.1f} | {throughput_text(metrics, k)} |" for k, v in metrics["run"]["wall_seconds"].items()]
    return "\n".join(lines) + "\n"


def throughput_text(metrics: dict, stage: str) -> str:
    """A stage's images/s for the report ("train 9100, predict 41000"); "-" where it has none."""
    rates = metrics["run"].get("images_per_s", {}).get(stage, {})
    return ", ".join(f"{what} {rate:,.0f}" for what, rate in rates.items()) or "-"


def plot_arms(metrics: dict, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from augment.io import atomic_path

    arms = list(metrics["target_test"])
    means = [metrics["target_test"][a]["accuracy"]["mean"] for a in arms]
    lows = [m - metrics["target_test"][a]["accuracy"]["ci95"][0] for a, m in zip(arms, means)]
    highs = [metrics["target_test"][a]["accuracy"]["ci95"][1] - m for a, m in zip(arms, means)]
    fig, ax = plt.subplots(figsize=(6, 0.6 * len(arms) + 1.2))
    ax.barh(arms, means, xerr=[lows, highs], color="#4C72B0", capsize=4)
    ax.set_xlim(0, 1)
    ax.set_xlabel("target-domain test accuracy (95% CI)")
    ax.invert_yaxis()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
