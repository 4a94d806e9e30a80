"""reports/report.html: self-contained, with the arms, per-class accuracy, confusion matrices and images."""
import base64

import numpy as np
from sklearn.metrics import confusion_matrix

from augment.report_html import confusion, per_class_accuracy, plot_confusions, render_html


def test_per_class_and_confusion_match_sklearn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 50)
    preds = np.stack([np.where(rng.random(50) < 0.7, labels, rng.integers(0, 4, 50)) for _ in range(3)])
    m = confusion(preds, labels, 4)
    ref = sum(confusion_matrix(labels, p, labels=range(4)) for p in preds).astype(float)
    assert np.allclose(m, ref / ref.sum(1, keepdims=True))
    assert np.allclose(per_class_accuracy(preds, labels, 5)[:4], np.diag(m))
    assert np.isnan(per_class_accuracy(preds, labels, 5)[4])  # a class absent from the test set


def test_page_embeds_every_image_and_names_every_arm(tmp_path):
    stat = {"mean": 0.5, "ci95": [0.4, 0.6], "per_seed": [0.5]}
    metrics = {
        "target_test": {"source_only": {"accuracy": stat, "macro_f1": stat}, "cyclegan": {"accuracy": stat, "macro_f1": stat}},
        "source_test": {"source_only": {"accuracy": stat}, "cyclegan": {"accuracy": stat}},
        "benefit": {"cyclegan": {"accuracy_delta": {"mean": 0.1, "ci95": [0.05, 0.15]}}},
        "gan": {"cyclegan": {"fid": 1.0, "kid": 0.01, "label_preservation": 0.9, "feature_extractor": "x"}},
        "run": {"seeds": [0], "gan_seeds": [0], "wall_seconds": {"prepare": 1.0, "train_classifier@cyclegan-0": 9.0},
                "images_per_s": {"train_classifier@cyclegan-0": {"train": 4321.6, "predict": 51234.0}}, "device": "cpu"},
    }
    plot_confusions({"source_only": np.eye(3), "cyclegan": np.eye(3)}, ["a", "b", "c"], tmp_path / "c.png")
    page = render_html(
        metrics, arms_info={"cyclegan": "translated"}, unavailable={"oracle": "the target train split is flat"},
        dataset={"source": "s", "target": "t", "classes": ["a", "b", "c"], "image_size": 16, "channels": 1},
        per_class={"source_only": np.array([1.0, 0.5, np.nan]), "cyclegan": np.array([1.0, 1.0, 1.0])},
        images={"arms": (tmp_path / "c.png", "arms"), "confusion": (tmp_path / "c.png", "conf"), "comparison": (tmp_path / "c.png", "rows")},
    )
    assert page.count("src='data:image/png;base64,") == 3 and "src='http" not in page and "src='/" not in page
    png = base64.b64decode(page.split("data:image/png;base64,")[1].split("'")[0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    for text in ("source_only", "cyclegan", "oracle", "the target train split is flat", "+0.100", "resamples target test images", "0.900"):
        assert text in page
    assert "class='good'" in page  # a benefit whose interval is above 0 is marked
    assert "<td>prepare</td><td>1.0</td><td>-</td>" in page and "<td>train 4,322, predict 51,234</td>" in page


def test_page_reads_on_a_phone_and_keeps_each_chart_in_its_section(tmp_path):
    """A user's pass found the test-accuracy chart under "Target validation split", tables cut off on
    a narrow screen with no viewport, every warning a paragraph of bold red, and the test-time arms'
    source accuracy shown as if measured (it is source_only's classifier reading source images)."""
    stat = {"mean": 0.5, "ci95": [0.4, 0.6], "per_seed": [0.5]}
    metrics = {
        "target_test": {a: {"accuracy": stat, "macro_f1": stat} for a in ("source_only", "cyclegan", "adabn")},
        "target_val": {a: {"accuracy": stat} for a in ("source_only", "cyclegan", "adabn")},
        "source_test": {a: {"accuracy": stat} for a in ("source_only", "cyclegan", "adabn")},
        "benefit": {"cyclegan": {"accuracy_delta": {"mean": 0.1, "ci95": [0.05, 0.15]}}},
        "gan": {"cyclegan": {"fid": 1.0, "kid": 0.01, "label_preservation": 0.9, "feature_extractor": "x", "diversity_ratio": 0.01}},
        "run": {"seeds": [0, 1, 2], "gan_seeds": [0, 1], "wall_seconds": {}, "device": "cpu", "target_split": {"target_test": 500}},
    }
    plot_confusions({"source_only": np.eye(3)}, ["a", "b", "c"], tmp_path / "c.png")
    page = render_html(metrics, arms_info={}, unavailable={}, per_class={},
                       dataset={"source": "s", "target": "t", "classes": ["a", "b", "c"], "image_size": 16, "channels": 1},
                       images={"arms": (tmp_path / "c.png", "Target-domain test accuracy by arm")})
    assert "<meta name=viewport content='width=device-width, initial-scale=1'>" in page
    assert page.count("<div class=scroll><table>") == page.count("<table>") == 4  # arms, validation, GANs, stage times
    assert page.index("<h2>Target-domain test accuracy by arm") < page.index("alt='arms'") < page.index("<h2>Target validation split")
    assert "<div class=warning><b>Warning. Collapsed GAN:</b> cyclegan" in page and "class=bad>Warning" not in page
    assert "16 px, 1 channel. Classifier seeds [0, 1, 2]; GAN seeds [0, 1]." in page
    again = render_html(metrics, arms_info={}, unavailable={}, per_class={}, images={},
                        dataset={"source": "s", "target": "t", "classes": ["a"], "image_size": 32, "channels": 3, "resize": "crop"})
    assert "32 px (crop: data.resize), 3 channels." in again
    adabn = page.split("<td><b>adabn</b></td>")[1].split("</tr>")[0]
    assert "source_only's (source images are read unadapted)" in adabn and "0.500 <span" not in adabn.split("</td>")[2]
    assert "the standard deviation over them" in page


def test_confusion_matrices_of_many_classes_number_them_as_the_per_class_table_does(tmp_path):
    """Beyond 12 classes the matrices had no tick at all: 43 sign classes read as an unlabeled grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = [f"sign {i}" for i in range(43)]
    shown = []
    real_savefig = plt.Figure.savefig

    def keep_ticks(fig, *args, **kwargs):
        ax = fig.axes[0]
        shown.append(([t.get_text() for t in ax.get_xticklabels()], [t.get_text() for t in ax.get_yticklabels()]))
        return real_savefig(fig, *args, **kwargs)

    plt.Figure.savefig = keep_ticks
    try:
        plot_confusions({"source_only": np.eye(43)}, classes, tmp_path / "many.png")
        plot_confusions({"source_only": np.eye(3)}, classes[:3], tmp_path / "few.png")
    finally:
        plt.Figure.savefig = real_savefig
    numbers = [str(i) for i in range(0, 43, 5)]
    assert shown == [(numbers, numbers), (classes[:3], classes[:3])]  # 43 classes by number, 3 by name
    plot = (tmp_path / "many.png").read_bytes()
    assert plot[:8] == b"\x89PNG\r\n\x1a\n"
    stat = {"mean": 0.5, "ci95": [0.4, 0.6], "per_seed": [0.5]}
    metrics = {"target_test": {"source_only": {"accuracy": stat, "macro_f1": stat}}, "source_test": {"source_only": {"accuracy": stat}},
               "benefit": {}, "run": {"seeds": [0], "gan_seeds": [0], "wall_seconds": {}, "device": "cpu"}}
    page = render_html(metrics, arms_info={}, unavailable={}, dataset={"source": "s", "target": "t", "classes": classes, "image_size": 16,
                                                                       "channels": 1},
                       per_class={"source_only": np.linspace(0, 1, 43)}, images={})
    assert "<th>#</th><th>class</th>" in page and "<tr><td>42</td><td>sign 42</td>" in page and "Classes by their number (#)" in page
    # with the run's per-class counts, each row says on how many target test images its figures rest
    metrics["run"]["target_split"] = {"target_test_per_class": {c: 3 + i for i, c in enumerate(classes)}}
    page = render_html(metrics, arms_info={}, unavailable={}, dataset={"source": "s", "target": "t", "classes": classes, "image_size": 16,
                                                                       "channels": 1},
                       per_class={"source_only": np.linspace(0, 1, 43)}, images={})
    assert "<th>class</th><th>test images</th><th>source_only</th>" in page and "<tr><td>42</td><td>sign 42</td><td>45</td><td>1.00</td>" in page
