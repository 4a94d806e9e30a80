"""`reports/report.html`: the self-contained page people read (every image embedded as a data URI).

It shows the answer first (the arms table with intervals, the warnings and the bar chart), then where each arm
is right and wrong (per-class accuracy, a confusion matrix per arm), the GANs' quality, and what
the images look like (source | each GAN | classic | real target). `report.md` keeps the tables.
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import numpy as np

from augment.answer import answer_lines, signed
from augment.report import (
    DIVERSITY_NOTE, GAN_COLUMNS, LABEL_PRESERVATION_NOTE, REFERENCE_NOTE, SEED_SPREAD_NOTE, STAGE_TIME_NOTE, filter_note, gan_table,
    header_line, interval_note, judge_note, report_warnings, source_cell, throughput_text, validation_note, warning_heading,
)
from augment.validation import VAL_SET


def per_class_accuracy(preds: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """preds (S, N), labels (N,) -> (num_classes,) accuracy per true class, mean over seeds (nan where absent)."""
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        mask = labels == c
        if mask.any():
            out[c] = (preds[:, mask] == c).mean()
    return out


def confusion(preds: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) row-normalised counts over seeds: row = true class, column = predicted."""
    m = np.zeros((num_classes, num_classes))
    for p in preds:
        np.add.at(m, (labels, p), 1)
    rows = m.sum(1, keepdims=True)
    return np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)


NAMED_TICKS = 12  # classes the confusion matrices name on their axes; more are numbered


def plot_confusions(matrices: dict[str, np.ndarray], classes: list[str], path: str | Path) -> None:
    """One heat map per arm, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from augment.io import atomic_path

    n = len(matrices)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    named = len(classes) <= NAMED_TICKS  # beyond, classes by number (the per-class table's # column), every `step`-th
    step = 1 if named else -(-len(classes) // 10)
    where = list(range(0, len(classes), step))
    for ax, (arm, m) in zip(axes.flat, matrices.items()):
        ax.imshow(m, vmin=0, vmax=1, cmap="Blues")
        ax.set_title(arm, fontsize=10)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        labels = classes if named else [str(c) for c in where]
        ax.set_xticks(where, labels, fontsize=7)
        ax.set_yticks(where, labels, fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def _bold(text: str) -> str:
    """markdown's **x** (in the answer's sentences) as <b>x</b>."""
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _fmt(stat: dict) -> str:
    lo, hi = stat["ci95"]
    return f"{stat['mean']:.3f} <span class=ci>[{lo:.3f}, {hi:.3f}]</span>"


def _warning(text: str) -> str:
    """A warning as a block with its heading ("Collapsed GAN: ...") in bold and the rest in plain text."""
    head, rest = warning_heading(text)
    return f"<div class=warning><b>Warning.{' ' + html.escape(head) + ':' if head else ''}</b> {html.escape(rest)}</div>"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1em; max-width: 1100px; color: #222; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
.warning { border-left: 4px solid #b42318; background: #fef3f2; padding: 6px 10px; margin: 8px 0; font-size: 14px; }
.warning b { color: #b42318; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
.ci { color: #777; font-size: 12px; }
.good { color: #1a7f37; font-weight: 600; }
.bad { color: #b42318; font-weight: 600; }
.na { color: #999; }
img { max-width: 100%; image-rendering: pixelated; }
figure { margin: 1em 0; }
figcaption { color: #555; font-size: 13px; }
"""


def render_html(
    metrics: dict, *, arms_info: dict[str, str], unavailable: dict[str, str], dataset: dict,
    per_class: dict[str, np.ndarray], images: dict[str, tuple[Path, str]],
) -> str:
    """The page; `images` maps a name to (png path, caption), embedded in this order:
    "arms", "confusion", then sample grids."""
    e = html.escape
    classes = dataset["classes"]
    out = [
        "<!doctype html><html><head><meta charset=utf-8><meta name=viewport content='width=device-width, initial-scale=1'>"
        "<title>domain-augment report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>domain-augment report</h1>",
        f"<p>Source domain <b>{e(dataset['source'])}</b> &rarr; target domain <b>{e(dataset['target'])}</b>; "
        f"{e(header_line(metrics, dataset))}</p>",
    ]

    def figure(name: str) -> None:
        if name in images:
            path, caption = images[name]
            out.append(f"<figure><img src='{_data_uri(path)}' alt='{e(name)}'><figcaption>{e(caption)}</figcaption></figure>")

    answer = answer_lines(metrics)
    if answer:
        out += ["<h2>The answer</h2>"] + [f"<p>{_bold(e(line))}</p>" for line in answer]
    out += [
        "<h2>Target-domain test accuracy by arm</h2>",
        f"<p>{e(interval_note(metrics['run']['gan_seeds'], metrics['run']['seeds'], list(metrics['target_test'])))} Green when a benefit's whole interval is above 0, red when it is below.</p>",
        "<div class=scroll><table><tr><th>arm</th><th>target accuracy</th><th>target macro-F1</th><th>source accuracy</th>"
        "<th>benefit vs source_only</th><th>training data</th></tr>",
    ]
    for arm, t in metrics["target_test"].items():
        if "accuracy" not in t:
            continue
        b = metrics["benefit"].get(arm, {}).get("accuracy_delta")
        if b is None:
            benefit = "<span class=na>baseline</span>" if arm == "source_only" else "-"
        else:
            cls = "good" if b["ci95"][0] > 0 else "bad" if b["ci95"][1] < 0 else ""
            benefit = f"<span class='{cls}'>{b['mean']:+.3f}</span> <span class=ci>[{b['ci95'][0]:+.3f}, {b['ci95'][1]:+.3f}]</span>"
        out.append(
            f"<tr><td><b>{e(arm)}</b></td><td>{_fmt(t['accuracy'])}</td><td>{_fmt(t['macro_f1'])}</td>"
            f"<td>{source_cell(metrics, arm, _fmt)}</td><td>{benefit}</td><td>{e(arms_info.get(arm, ''))}</td></tr>"
        )
    for arm, reason in unavailable.items():
        out.append(f"<tr><td><b>{e(arm)}</b></td><td class=na colspan=4>unavailable</td><td>{e(reason)}</td></tr>")
    out.append("</table></div>")
    out += [_warning(w) for w in report_warnings(metrics)]
    figure("arms")
    if metrics.get(VAL_SET):
        out += ["<h2>Target validation split (for choosing settings)</h2>", f"<p>{e(validation_note(metrics).replace('`', ''))}</p>",
                "<div class=scroll><table><tr><th>arm</th><th>validation accuracy</th><th>benefit vs source_only</th></tr>"]
        for arm, v in metrics[VAL_SET].items():
            d = v.get("accuracy_delta")
            out.append(f"<tr><td><b>{e(arm)}</b></td><td>{_fmt(v['accuracy'])}</td><td>{e(signed(d)) if d else '-'}</td></tr>")
        out.append("</table></div>")
    named = len(classes) <= NAMED_TICKS
    if per_class:
        tested = metrics["run"].get("target_split", {}).get("target_test_per_class") or {}  # a class of 5 images moves by 0.2 a reading
        out += ["<h2>Per-class target accuracy</h2>", "<p>Mean over seeds; rows are true classes" + (
                    ", with their target test images: a class of few images moves by one image's share at each reading" if tested else "")
                + ".</p>", "<div class=scroll><table><tr>" + ("" if named else "<th>#</th>") + "<th>class</th>"
                + ("<th>test images</th>" if tested else "") + "".join(f"<th>{e(a)}</th>" for a in per_class) + "</tr>"]
        for c, name in enumerate(classes):
            cells = "".join("<td class=na>-</td>" if np.isnan(v[c]) else f"<td>{v[c]:.2f}</td>" for v in per_class.values())
            count = f"<td>{tested.get(name, 0)}</td>" if tested else ""
            out.append("<tr>" + ("" if named else f"<td>{c}</td>") + f"<td>{e(name)}</td>{count}{cells}</tr>")
        out.append("</table></div>")
        out.append("<h2>Confusion matrices (target test)</h2>")
        out += [] if named else ["<p>Classes by their number (#) in the per-class table above; each arm's "
                                 "plots/confusion/&lt;arm&gt;.csv gives its readings by class name (<code>dvc plots show</code> draws them).</p>"]
        figure("confusion")
    if metrics.get("gan"):
        out += ["<h2>GANs</h2>", "<div class=scroll><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in GAN_COLUMNS) + "</tr>"]
        out += [f"<tr><td><b>{e(name)}</b></td>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>" for name, *cells in gan_table(metrics)]
        out.append(f"</table></div><p>{e(judge_note(metrics).replace('`', ''))}</p><p>{e(LABEL_PRESERVATION_NOTE)} {e(REFERENCE_NOTE)}</p>"
                   f"<p>{e(DIVERSITY_NOTE)} {e(SEED_SPREAD_NOTE)} {e(filter_note(metrics['gan']))}</p>")
    samples = [n for n in images if n not in ("arms", "confusion")]
    if samples:
        out.append("<h2>Samples</h2>")
        for name in samples:
            figure(name)
    out += ["<h2>Time inside each stage (seconds)</h2>", f"<p>{e(STAGE_TIME_NOTE.replace('`', ''))}</p>", "<div class=scroll><table><tr><th>stage</th><th>seconds</th><th>images/s</th></tr>"]
    out += [f"<tr><td>{e(k)}</td><td>{v:.1f}</td><td>{e(throughput_text(metrics, k))}</td></tr>"
            for k, v in metrics["run"]["wall_seconds"].items()]
    out.append("</table></div></body></html>")
    return "\n".join(out) + "\n"
