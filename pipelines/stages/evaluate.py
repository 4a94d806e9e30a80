"""DVC stage `evaluate`: every arm's predictions -> reports/metrics.json, report.md, plots/, samples/.

It reads the test sets with every classifier the `train_classifier` stages trained (and, for the
arms that train nothing, with the source_only ones, adapted), and writes each one's readings to
reports/predictions/<arm>/<seed>.csv. metrics.json keys are a contract users and checks rely on: target_test,
source_test, benefit, gan, run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from augment.answer import ANSWER_AT_END_ENV, answer, answer_lines
from augment.arms import ARMS, BASELINE, gan_seed_for
from augment.classify import load_classifier, predict, renormalized
from augment.classic import changed_draw
from augment.contract import DataLayoutError
from augment.cyclegan import is_conditional, load_generator, translate
from augment.dataset import load_prepared, load_synthetic
from augment.few_labels import labeled_target_train_counts
from augment.gan_quality import domain_spread_ratio, drawn, gan_quality, pooled_features, summarize_gan_seeds
from augment.inception import load_inception
from augment.io import atomic_dir, write_csv, write_json, write_text
from augment.metrics import read_as_another, read_as_each_other
from augment.prepare import domain_copies, files_not_read, folders_not_searched, label_conflicts, repeated_copies, test_repeats
from augment.report import (
    arm_descriptions, arm_metrics, mark_unavailable, plot_arms, render_report, stack_predictions, with_oracle_beaten,
)
from augment.report_html import confusion, per_class_accuracy, plot_confusions, render_html
from augment.samples import GAN_SAMPLE_ROWS, save_grid
from augment.validation import hold_out, validation_paths
from pipelines.config import load_params
from pipelines.runtime import TIMINGS_DIR, run_stage, select_device



def _stage_timing(path: Path) -> dict | None:
    """A stage's timings file: {stage, wall_seconds, images_per_s?, ...}; None when it has none."""
    return json.loads(path.read_text()) if path.is_file() else None


def last_logged(history: Path, key: str) -> float | None:
    """The last value of `key` in a GAN's training log (`history.csv`), or None where it logged none
    (a GAN without that term, or one whose C never became competent enough to label the target)."""
    if not history.is_file():
        return None
    frame = pd.read_csv(history)
    values = frame[key].dropna() if key in frame else ()
    return float(values.iloc[-1]) if len(values) else None


COMPARISON_CLASSES = 10  # columns of comparison.png: beyond that, classes spread over the list


def comparison_caption(rows: list[tuple[str, torch.Tensor]], classes: int) -> str:
    """The reports' caption of comparison.png (`rows` from comparison_rows): its columns are one
    image per class only where every class has one; else how many of the classes it shows."""
    shown = len(rows[0][1])
    which = "one per class" if shown == classes else f"one for each of {shown} of the {classes} classes (spread over the class list)"
    return f"The same source test images, {which}; rows, top to bottom: " + ", ".join(name for name, _ in rows) + "."


def comparison_rows(data, gans_dir: Path, gans: list[str], classic_specs: list | None, *, device, precision: str = "auto",
                    gan_seed: int = 0, per_row: int = COMPARISON_CLASSES) -> list[tuple[str, torch.Tensor]]:
    """Rows for one picture of what each arm adds: source test images (one per class, up to
    `per_row`), each GAN's translation of them (the GAN of `gan_seed`), the classic transforms on them
    (when an arm applies them: `classic_specs` not None), and real target test images of the same classes."""
    src, _ = data.labeled("source", "test")
    tgt, _ = data.labeled("target", "test")
    classes = torch.unique(src.labels)
    classes = classes[torch.linspace(0, len(classes) - 1, min(per_row, len(classes))).round().long()]
    pick = torch.stack([torch.nonzero(src.labels == c)[0, 0] for c in classes])
    x, y = src.images[pick], src.labels[pick]
    rows = [("source", x)]
    for gan in gans:
        g_st = gans_dir / gan / str(gan_seed) / "G_st.pt"
        if g_st.is_file():
            gen = load_generator(g_st, device=device)
            rows.append((gan, translate(gen, x, y if is_conditional(gen) else None, device=device, precision=precision)))
    if classic_specs is not None:
        rows.append(("classic (a draw that changed each image)", changed_draw(classic_specs, x)))
    real = [tgt.images[torch.nonzero(tgt.labels == c)[0, 0]] if (tgt.labels == c).any() else torch.full_like(x[0], 1.0) for c in y]
    rows.append(("real target (same class; white: none in target test)", torch.stack(real)))
    return rows


EVAL_SETS = {"target_test": "target", "source_test": "source"}


def test_sets(data) -> dict:
    """eval_set -> (images, rows) of both test splits, as stored (uint8), read once for every classifier."""
    return {eval_set: data.labeled(role, "test", uint8=True) for eval_set, role in EVAL_SETS.items()}


def test_set_predictions(sets: dict, model: torch.nn.Module, *, device, precision: str = "auto") -> pd.DataFrame:
    """One classifier's readings of both test sets (`test_sets`): a frame of eval_set, path, label_index, pred."""
    return pd.concat([pd.DataFrame({"eval_set": eval_set, "path": rows.path.to_numpy(), "label_index": rows.label_index.to_numpy(),
                                    "pred": predict(model, images.images, device=device, precision=precision).numpy()})
                      for eval_set, (images, rows) in sets.items()], ignore_index=True)


def adapted_predictions(data, source_only: dict[int, pd.DataFrame], seeds: list[int], classifiers: Path,
                        read: Callable[[int, torch.nn.Module], torch.Tensor | str], *, device) -> dict[int, pd.DataFrame] | str:
    """An arm with no training of its own (`Arm.test_time`): `read(seed, model)` gives the source_only
    classifier of `seed`'s readings of the target test images, adapted to the target (or the reason
    it cannot); source test images are read by the classifier as it is. Returns per-seed prediction
    frames like `test_set_predictions`, or the reason the arm is unavailable."""
    missing = [s for s in seeds if s not in source_only]
    if missing:
        return f"needs the source_only classifiers of seeds {missing} (add source_only to classifier.arms)"
    _, rows = data.labeled("target", "test")
    out = {}
    for seed in seeds:
        preds = read(seed, load_classifier(classifiers / "source_only" / str(seed) / "model.pt", device=device))
        if isinstance(preds, str):
            return preds
        base = source_only[seed]
        target = pd.DataFrame({"eval_set": "target_test", "path": rows.path.to_numpy(), "label_index": rows.label_index.to_numpy(),
                               "pred": preds.numpy()})
        out[seed] = pd.concat([target, base[base.eval_set != "target_test"]], ignore_index=True)
    return out


def test_time_predictions(data, source_only: dict[int, pd.DataFrame], seeds: list[int], classifiers: Path, gan_dir: Path,
                          gan_seeds: list[int], *, device, precision: str = "auto") -> dict[int, pd.DataFrame] | str:
    """The `test_time` arm: each source_only classifier reads target test images translated
    target->source by G_ts of its GAN seed (`adapted_predictions`)."""
    generators = {g: gan_dir / str(g) / "G_ts.pt" for g in sorted({gan_seed_for(s, gan_seeds) for s in seeds})}
    absent = [str(path) for path in generators.values() if not path.is_file()]
    if absent:
        return f"needs the target->source generator(s) {', '.join(absent)}"
    images, _ = data.labeled("target", "test", uint8=True)
    translated = {g: translate(load_generator(path, device=device), images.images, device=device, precision=precision)
                  for g, path in generators.items()}
    return adapted_predictions(data, source_only, seeds, classifiers, device=device,
                               read=lambda seed, model: predict(model, translated[gan_seed_for(seed, gan_seeds)], device=device,
                                                                precision=precision))


def renormalized_predictions(data, source_only: dict[int, pd.DataFrame], seeds: list[int], classifiers: Path, *,
                             device, precision: str = "auto") -> dict[int, pd.DataFrame] | str:
    """The `adabn` arm: each source_only classifier reads target test images with its BatchNorm
    statistics re-estimated on the unlabeled target train images (`adapted_predictions`)."""
    unlabeled = data.images("target", "train", uint8=True)
    if not len(unlabeled):
        return "no target train image to re-estimate the BatchNorm statistics on"
    images, _ = data.labeled("target", "test", uint8=True)

    def read(seed: int, model: torch.nn.Module) -> torch.Tensor | str:
        adapted = renormalized(model, unlabeled, device=device, precision=precision)
        if adapted is None:
            return "classifier.model has no BatchNorm layer to re-estimate"
        return predict(adapted, images.images, device=device, precision=precision)

    return adapted_predictions(data, source_only, seeds, classifiers, read, device=device)


def main(argv: list[str] | None = None) -> None:
    t0 = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    ap.add_argument("--classifiers", type=Path, default=Path("artifacts/classifiers"))
    ap.add_argument("--gans", type=Path, default=Path("artifacts/gan"))
    ap.add_argument("--synthetic", type=Path, default=Path("data/synthetic"))
    ap.add_argument("--out", type=Path, default=Path("reports"))
    ap.add_argument("--timings-dir", type=Path, default=TIMINGS_DIR)
    args = ap.parse_args(argv)
    params = load_params(args.params)
    cp = params.classifier
    # a wrong file stops here, before the test sets are read, not after
    inception = load_inception(params.evaluate.inception_weights) if params.evaluate.inception_weights else None
    data = load_prepared(args.prepared)
    device = select_device(params.runtime.device, params.runtime.threads)

    predictions: dict[str, dict[int, pd.DataFrame]] = {}
    unavailable: dict[str, str] = {}
    test_time: dict[str, list[int]] = {}  # arm -> seeds evaluated here, with no training of their own
    few_labels = None  # how many target labels target_few really saw per class (the same for every seed)
    devices = set()
    predicting, predicted, sets = time.perf_counter(), 0, None
    for arm in cp.arms:
        for seed in cp.seeds:
            d = args.classifiers / arm / str(seed)
            stage_file = d / "status.json"
            if not stage_file.is_file():
                raise FileNotFoundError(f"{stage_file}: missing; run train_classifier@{arm}-{seed} first")
            rec = json.loads(stage_file.read_text())
            if "device" in rec:  # test_time trains nothing, on no device
                devices.add(rec["device"])
            few_labels = rec.get("target_labels", few_labels)
            if rec["status"] == "unavailable":
                unavailable[arm] = rec["reason"]
                continue
            if rec["status"] == "test_time":
                test_time.setdefault(arm, []).append(seed)
                continue
            sets = sets or test_sets(data)
            frame = test_set_predictions(sets, load_classifier(d / "model.pt", device=device), device=device,
                                         precision=params.runtime.precision)
            predictions.setdefault(arm, {})[seed], predicted = frame, predicted + len(frame)
    predicting = time.perf_counter() - predicting
    for arm, seeds in test_time.items():
        if ARMS[arm].renormalize:
            found = renormalized_predictions(data, predictions.get("source_only", {}), seeds, args.classifiers, device=device,
                                             precision=params.runtime.precision)
        else:
            found = test_time_predictions(data, predictions.get("source_only", {}), seeds, args.classifiers, args.gans / ARMS[arm].gan,
                                          params.gan.seeds, device=device, precision=params.runtime.precision)
        if isinstance(found, str):
            unavailable[arm] = found
        else:
            predictions[arm] = found
    if not predictions:
        why = "; ".join(f"{arm}: {reason}" for arm, reason in unavailable.items())
        raise DataLayoutError(f"no arm of classifier.arms {list(cp.arms)} could be measured on this data ({why}); "
                              "add source_only, which needs no target label, to classifier.arms")
    # Hold out the validation images only now: every classifier predicted the whole target test split.
    _, target_rows = data.labeled("target", "test")
    val_paths = validation_paths(target_rows, params.evaluate.validation_fraction, params.evaluate.validation_seed)
    predictions = {arm: {seed: hold_out(frame, val_paths) for seed, frame in per_seed.items()} for arm, per_seed in predictions.items()}
    originals = data.manifest.set_index("path").source_path
    for arm, per_seed in predictions.items():  # each classifier's readings, image by image, as measured, with the files' own names
        for seed, frame in per_seed.items():
            named = frame.assign(source_path=frame.path.map(originals).to_numpy(), label=[data.classes[i] for i in frame.label_index],
                                 predicted=[data.classes[i] for i in frame.pred])
            write_csv(named[["eval_set", "source_path", "label", "predicted", "path", "label_index", "pred"]],
                      args.out / "predictions" / arm / f"{seed}.csv")
    gan_seed_of = {s: gan_seed_for(s, params.gan.seeds) for s in cp.seeds} if any(ARMS[a].gan for a in predictions) else None
    metrics = arm_metrics(
        predictions, num_classes=len(data.classes),
        samples=params.evaluate.bootstrap_samples, seed=params.evaluate.bootstrap_seed, gan_seed_of=gan_seed_of,
    )
    if BASELINE in predictions:  # classes the domains may file under each other's names
        swapped = read_as_each_other(*stack_predictions(predictions[BASELINE], "target_test"), len(data.classes))
        metrics["target_test"][BASELINE]["read_as_each_other"] = [
            {"classes": [data.classes[c], data.classes[d]], "shares": [round(a, 4), round(b, 4)]} for c, d, a, b in swapped]
    for block, arm in (("source_test", BASELINE), ("target_test", "oracle")):  # within the domain each learned
        if arm in predictions and block in metrics and arm in metrics[block]:
            misread = read_as_another(*stack_predictions(predictions[arm], block), len(data.classes))
            metrics[block][arm]["read_as_another"] = [{"classes": [data.classes[c], data.classes[d]], "share": round(a, 4)}
                                                      for c, d, a in misread]

    # GAN quality, with features from a classifier trained here (no downloaded weights).
    metrics["gan"] = {}
    samples: dict[str, tuple[str, str]] = {}
    extractor_arm = next((a for a in ("oracle", "source_only") if a in predictions), None)
    gans_used = sorted({ARMS[a].gan for a in cp.arms if ARMS[a].gan})
    if extractor_arm is not None and gans_used:
        seed0 = cp.seeds[0]
        model = load_classifier(args.classifiers / extractor_arm / str(seed0) / "model.pt", device=device)
        real_target = data.images("target", "test", uint8=True)  # sets held as stored; converted per batch
        extractor = f"{model.__class__.__name__} penultimate layer of the '{extractor_arm}' classifier, seed {seed0}"
        judged = dict(feature_extractor=extractor, device=device)
        if inception is not None:  # the target test's features once, for every GAN and seed
            most = params.evaluate.inception_images
            judged.update(feature_extractor=inception[1], inception=inception[0], inception_images=most,
                          inception_real=pooled_features(inception[0], drawn(real_target, most, 0), device=device))
        source_train, _ = data.labeled("source", "train", uint8=True)  # what every GAN translated, as it was
        reference = gan_quality(model, real_target, source_train, **judged)
        metrics["gan_reference"] = {"images": "source train, untranslated", **reference}
        # how far apart the target's own images lie next to the source's: what a faithful GAN's diversity ratio is near
        spread = domain_spread_ratio(data.images("target", "train", uint8=True), source_train.images)
        if spread is not None:  # not from one target train image, nor from sources that are all one image
            metrics["gan_reference"]["target_spread_ratio"] = spread
        for gan in gans_used:
            per_seed = {}
            for g in params.gan.seeds:
                synthetic, rows = load_synthetic(args.synthetic / gan / str(g), uint8=True)
                per_seed[g] = gan_quality(model, real_target, synthetic, sources=data.images_at(rows.source_path, uint8=True), **judged)
                # the share of target images the CycleGAN's balanced pseudo-labels moved off C's reading, at the end
                moved = last_logged(args.gans / gan / str(g) / "history.csv", "pseudo_moved")
                if moved is not None:
                    per_seed[g]["pseudo_moved"] = moved
                kept = args.synthetic / gan / str(g) / "filter.json"
                if kept.is_file():
                    filtered = json.loads(kept.read_text())
                    per_seed[g]["kept_fraction"] = filtered["kept_fraction"]
                    per_seed[g]["classes_with_none_kept"] = filtered.get("classes_with_none_kept", [])
            metrics["gan"][gan] = summarize_gan_seeds(per_seed)
            metrics["gan"][gan].update(filter=params.synthesize.filter, feature_extractor_arm=extractor_arm,
                                       feature_extractor_kind="inception" if inception is not None else "classifier",
                                       feature_extractor_trained_on_target=ARMS[extractor_arm].target_labels != "none")
    with atomic_dir(args.out / "samples") as tmp:  # samples: name -> (path under args.out, its caption in both reports)
        for gan in gans_used:
            src = args.gans / gan / str(params.gan.seeds[0]) / "samples.png"
            if src.is_file():
                shutil.copyfile(src, tmp / f"{gan}.png")  # its rows named by the stage that wrote it
                samples[gan] = (f"samples/{gan}.png", f"{gan} (GAN seed {params.gan.seeds[0]}): rows are {', '.join(GAN_SAMPLE_ROWS)}.")
        classic_specs = params.classic.transforms if any(ARMS[a].classic for a in cp.arms) else None
        rows = comparison_rows(data, args.gans, gans_used, classic_specs, device=device,
                              precision=params.runtime.precision, gan_seed=params.gan.seeds[0])
        save_grid([r for _, r in rows], tmp / "comparison.png", labels=[name.split(" (")[0] for name, _ in rows])
        samples["comparison"] = ("samples/comparison.png", comparison_caption(rows, len(data.classes)))

    wall, images_per_s = {}, {}
    stages = ["code", "prepare", "few_labels"] + [f"{stage}@{g}-{s}" for stage in ("train_gan", "synthesize") for g in gans_used for s in params.gan.seeds]
    stages += ["arm_inputs"]
    stages += [f"train_classifier@{a}-{s}" for a in cp.arms for s in cp.seeds]
    for stage in stages:
        found = _stage_timing(args.timings_dir / f"{stage}.json")
        if found:
            wall[found["stage"]] = float(found["wall_seconds"])
            if found.get("images_per_s"):
                images_per_s[found["stage"]] = found["images_per_s"]
    if predicted:  # this stage's own: every trained classifier reading both test sets
        images_per_s["evaluate"] = {"predict": round(predicted / max(predicting, 1e-9), 1)}
    test_counts = target_rows[~target_rows.path.isin(val_paths)].groupby("label_index").size()
    split = {"target_val": len(val_paths), "target_test": int(test_counts.sum()), "validation_fraction": params.evaluate.validation_fraction,
             "target_test_per_class": {c: int(test_counts.get(i, 0)) for i, c in enumerate(data.classes)}}
    source_train = data.rows("source", "train").groupby("label_index").size()  # every source train image is labeled
    train_data = {"source_train_per_class": {c: int(source_train.get(i, 0)) for i, c in enumerate(data.classes)},
                  "target_train": len(data.rows("target", "train")),
                  "target_train_labeled_per_class": labeled_target_train_counts(data.manifest)}  # what the oracle learns from
    metrics["run"] = {"seeds": list(cp.seeds), "gan_seeds": list(params.gan.seeds), "target_split": split, "train_data": train_data, "wall_seconds": wall,
                      "images_per_s": images_per_s, "device": ",".join(sorted(devices)) or "cpu"}
    metrics["run"]["mix"] = params.mix.model_dump()  # what the reports say of a fraction of 0 or 1
    manifest, train_pictures = data.manifest, set(data.manifest.picture[data.manifest.split == "train"])
    metrics["run"]["data_files"] = {  # what the reports say of files left out, test images seen in training, one image two labels
        "rejected": int(data.info.get("rejected", 0)),
        "folders_not_searched": folders_not_searched(args.prepared / "rejected.csv", params.data.root),  # a hidden class folder is a class left out
        "files_not_read": files_not_read(args.prepared / "rejected.csv"),  # by kind: text files apart from broken images
        "target_test_in_train": int(target_rows[~target_rows.path.isin(val_paths)].picture.isin(train_pictures).sum()),
        "source_test_in_train": int(data.rows("source", "test").picture.isin(train_pictures).sum()),
        "target_test_repeats": repeated_copies(test_repeats(target_rows)),  # as prepare's repeats.csv: target_val's and target_test's together
        "label_conflicts": len(label_conflicts(manifest[manifest.label_index >= 0])),
        "target_in_source": int((domain_copies(manifest).domain == params.data.target).sum()),  # as prepare's domain_copies.csv
        "target_images": int((manifest.role == "target").sum()),
    }
    if few_labels:
        metrics["run"]["target_labels"] = few_labels
    labeled_target_train = (data.rows("target", "train").label_index >= 0).any()
    labeled_gans = {g for g in gans_used if getattr(params.gan, g).conditional and params.data.target_labels_per_class > 0
                    and labeled_target_train}  # the GANs the few_labels stage showed target labels
    metrics["answer"] = answer(metrics, {arm: stack_predictions(per_seed, "target_test") for arm, per_seed in predictions.items()},
                               labeled_gans=labeled_gans, groups=np.array([gan_seed_of[s] for s in sorted(gan_seed_of)]) if gan_seed_of else None,
                               samples=params.evaluate.bootstrap_samples, seed=params.evaluate.bootstrap_seed)

    (args.out / "plots").mkdir(parents=True, exist_ok=True)
    rows = [{"arm": a, "accuracy": m["accuracy"]["mean"], "ci95_low": m["accuracy"]["ci95"][0], "ci95_high": m["accuracy"]["ci95"][1]}
            for a, m in metrics["target_test"].items()]
    write_csv(pd.DataFrame(rows), args.out / "plots" / "target_accuracy.csv")
    plot_arms(metrics, args.out / "plots" / "arms.png")
    per_class, matrices = {}, {}
    for arm, per_seed in predictions.items():
        preds, labels = stack_predictions(per_seed, "target_test")
        per_class[arm] = per_class_accuracy(preds, labels, len(data.classes))
        matrices[arm] = confusion(preds, labels, len(data.classes))
        frame = per_seed[min(per_seed)]
        frame = frame[frame.eval_set == "target_test"]
        names = {"actual": [data.classes[i] for i in frame.label_index], "predicted": [data.classes[i] for i in frame.pred]}
        write_csv(pd.DataFrame(names), args.out / "plots" / "confusion" / f"{arm}.csv")  # `dvc plots show`: confusion template
        write_csv(pd.DataFrame({"class": data.classes, "accuracy": per_class[arm]}), args.out / "plots" / "per_class" / f"{arm}.csv")
    plot_confusions(matrices, data.classes, args.out / "plots" / "confusion.png")
    wall["evaluate"] = round(time.perf_counter() - t0, 3)
    arms_info = with_oracle_beaten(arm_descriptions(few_labels, labeled_per_class=labeled_target_train_counts(manifest),
                                                    labeled_gans=labeled_gans), metrics)
    write_text(render_report(metrics, arms_info=arms_info, unavailable=unavailable, dataset=data.info, samples=samples), args.out / "report.md")
    images = {"arms": (args.out / "plots" / "arms.png", "Target-domain test accuracy by arm, with 95% intervals."),
              "confusion": (args.out / "plots" / "confusion.png", "Row-normalised confusion matrices on target test, all seeds pooled.")}
    images.update({name: (args.out / path, caption) for name, (path, caption) in samples.items()})
    write_text(render_html(metrics, arms_info=arms_info, unavailable=unavailable, dataset=data.info, per_class=per_class, images=images),
               args.out / "report.html")
    mark_unavailable(metrics, unavailable)
    write_json(metrics, args.out / "metrics.json")
    print(f"evaluate: report -> {args.out / 'report.md'}, metrics -> {args.out / 'metrics.json'}")
    if os.environ.get(ANSWER_AT_END_ENV) == "1":
        print("evaluate: each arm's benefit and the answer follow when the run ends")
        return
    for arm, b in metrics["benefit"].items():
        d = b.get("accuracy_delta")
        print(f"  benefit {arm}: " + (f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d else f"unavailable: {b['reason']}"))
    for line in answer_lines(metrics):
        print("  " + line.replace("**", ""))


if __name__ == "__main__":
    run_stage(main)
