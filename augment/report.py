"""From per-seed predictions to `metrics.json` and a human-readable report.

`arm_metrics` builds the `target_test`, `source_test` and `benefit` sections of metrics.json
(keys fixed by DESIGN.md); `render_report` and `plot_arms` present the same numbers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from augment.metrics import paired_delta, summarize

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
    predictions: dict[str, dict[int, pd.DataFrame]], *, num_classes: int, samples: int, seed: int
) -> dict:
    """predictions[arm][seed] is a predictions.csv frame; returns target_test, source_test, benefit."""
    out: dict = {"target_test": {}, "source_test": {}, "benefit": {}}
    stacked = {}
    for arm, per_seed in predictions.items():
        preds_t, labels_t = stack_predictions(per_seed, "target_test")
        preds_s, labels_s = stack_predictions(per_seed, "source_test")
        stacked[arm] = (preds_t, labels_t, sorted(per_seed))
        out["target_test"][arm] = summarize(preds_t, labels_t, num_classes=num_classes, samples=samples, seed=seed)
        out["source_test"][arm] = summarize(preds_s, labels_s, num_classes=num_classes, samples=samples, seed=seed, with_f1=False)
    if BASELINE in stacked:
        base, labels, base_seeds = stacked[BASELINE]
        for arm, (preds, _, seeds) in stacked.items():
            if arm == BASELINE:
                continue
            if seeds != base_seeds:
                raise ValueError(f"arm {arm!r} has seeds {seeds} but {BASELINE} has {base_seeds}; benefit is paired by seed")
            out["benefit"][arm] = {"accuracy_delta": paired_delta(preds, base, labels, samples=samples, seed=seed)}
    return out


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
    if metrics.get("gan"):
        lines += ["## GANs", "", "| gan | FID | KID | label preservation | feature extractor |", "|---|---|---|---|---|"]
        for gan, g in metrics["gan"].items():
            lines.append(f"| {gan} | {g['fid']:.3f} | {g['kid']:.4f} | {g['label_preservation']:.3f} | {g['feature_extractor']} |")
        lines.append("")
        for gan, path in samples.items():
            lines += [f"`{gan}` samples (rows: source, translated, reconstructed):", "", f"![{gan} samples]({path})", ""]
    lines += ["## Stage wall time (seconds)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in metrics["run"]["wall_seconds"].items()]
    return "\n".join(lines) + "\n"


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
