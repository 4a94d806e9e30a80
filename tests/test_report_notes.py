"""What both reports (report.md and report.html) say beside the numbers: whose features judged the
GANs, a collapsed GAN, classifiers stuck on one class, the few target labels really used, captions
and what the intervals cover. Each note comes from one place, so the two reports cannot disagree."""
import html
import re

from augment.gan_quality import summarize_gan_seeds
from augment.report import arm_descriptions, render_report
from augment.report_html import render_html

STAT = {"mean": 0.25, "ci95": [0.2, 0.3], "per_seed": [0.25]}
DATASET = {"source": "day", "target": "night", "classes": ["a", "b", "c", "d"], "image_size": 16, "channels": 1}


def _metrics(*, share=0.3, diversity=0.9, extractor="oracle", gan_seeds=(0, 1), arms=("source_only", "cyclegan")) -> dict:
    arm = {"accuracy": STAT, "macro_f1": STAT, "majority_prediction_share": share}
    gan = summarize_gan_seeds({s: {"fid": 3.52, "kid": 0.01, "kid_subset_std": 0.001, "label_preservation": 0.25, "diversity_ratio": diversity,
                                   "feature_extractor": f"SmallCNN of the '{extractor}' classifier"} for s in gan_seeds})
    gan.update(feature_extractor_arm=extractor, feature_extractor_trained_on_target=extractor == "oracle")
    return {"target_test": {a: arm for a in arms}, "source_test": {a: {"accuracy": STAT} for a in arms},
            "benefit": {a: {"accuracy_delta": {"mean": 0.0, "ci95": [0.0, 0.0]}} for a in arms[1:]}, "gan": {"cyclegan": gan},
            "run": {"seeds": [0, 1], "gan_seeds": list(gan_seeds), "wall_seconds": {}, "device": "cpu"}}


def _both(metrics, *, arms_info=None, samples=None, markup=False) -> tuple[str, str]:
    """report.md, and report.html as the text a reader sees (its markup with `markup`)."""
    kw = {"arms_info": arms_info or {}, "unavailable": {}, "dataset": DATASET}
    md = render_report(metrics, samples=samples or {}, **kw)
    page = render_html(metrics, per_class={}, images={name: (path, caption) for name, (path, caption) in (samples or {}).items()}, **kw)
    return md, page if markup else html.unescape(re.sub(r"<[^>]+>", "", page))


def test_both_reports_say_whose_features_judged_the_gans_and_when_that_is_weak():
    for report in _both(_metrics(extractor="source_only")):
        assert "judged by the features and readings of the" in report and "source_only" in report
        assert "never saw a target label" in report and "FID/KID are then weak evidence" in report
    for report in _both(_metrics(extractor="oracle")):
        assert "trained on labeled target images" in report and "weak evidence" not in report
    for extractor in ("oracle", "source_only"):  # evaluate.inception_weights: Inception judges the distributions, the classifier labels
        given = _metrics(extractor=extractor)
        given["gan"]["cyclegan"].update(feature_extractor="Inception v3 pooled features (2048) of w.pth, sha256 0123456789ab",
                                        feature_extractor_kind="inception")
        for report in _both(given):
            assert ("FID, KID, precision and recall are judged on the Inception v3 pooled features (2048) of w.pth, sha256 0123456789ab "
                    "(evaluate.inception_weights); label preservation by the readings of the source_only" if extractor == "source_only"
                    else "label preservation by the readings of the oracle classifier, trained on labeled target images.") in report.replace("`", "")
            assert "weak evidence" not in report
    # a judge that has not learned the target itself: FID 37 against 369 untranslated read as praise for grey noise
    weak = _metrics(extractor="oracle", arms=("source_only", "cyclegan", "oracle"))
    weak["target_test"]["oracle"] = {**weak["target_test"]["oracle"], "accuracy": {"mean": 0.23, "ci95": [0.2, 0.26], "per_seed": [0.23]}}
    weak["run"]["target_split"] = {"target_test_per_class": {str(c): 9 for c in range(10)}}
    for report in _both(weak):
        assert ("trained on labeled target images, which reads the target test itself at 0.230 (chance: 0.100): features that tell "
                "the target's classes so poorly apart make FID, KID and label preservation weak evidence here") in report
    weak["target_test"]["oracle"]["accuracy"] = {"mean": 0.9, "ci95": [0.85, 0.95], "per_seed": [0.9]}
    assert not any("weak evidence" in report for report in _both(weak))


def test_both_reports_warn_of_a_baseline_that_has_not_learned_its_own_domain():
    """43 sign classes with a tiny classifier: source_only read its own source test at 0.051 and the
    reports said only that no arm helped."""
    m = _metrics()
    m["run"]["train_data"] = {"source_train_per_class": {c: 10 for c in "abcd"}}
    m["source_test"]["source_only"] = {"accuracy": {"mean": 0.5, "ci95": [0.4, 0.6]}}  # chance 0.25: below 0.625
    for report in _both(m):
        assert "Weak baseline: source_only reads its own source test at 0.500 (chance: 0.250 with 4 classes)" in report
    m["source_test"]["source_only"] = {"accuracy": {"mean": 0.7, "ci95": [0.6, 0.8]}}
    assert not any("Weak baseline" in report for report in _both(m))


def test_the_validation_note_gives_the_share_held_out_which_small_classes_raise():
    """25 classes of 2 test images at validation_fraction 0.2 held out 25 of 50 (one per class); the
    reports gave the count alone."""
    from augment.report import validation_note

    m = _metrics()
    m["run"]["target_split"] = {"target_val": 25, "target_test": 25}
    assert validation_note(m).startswith("25 labeled target test images (50% of them: evaluate.validation_fraction of each class, "
                                         "at least one of a class of two or more,")


def test_counts_of_one_read_as_one():
    """"rests on 1 images", "the 1 target_val images" on the smallest folders."""
    from augment.answer import counted
    from augment.report import small_test_warning, validation_note

    assert counted(1, "image", "images") == "1 image" and counted(0, "image", "images") == "0 images"
    assert counted("?", "image", "images") == "? images"
    assert "every target-test figure rests on 1 image. One image" in small_test_warning({"target_test": 1, "target_val": 0})
    m = _metrics()
    m["run"]["target_split"] = {"target_val": 1, "target_test": 1}
    assert validation_note(m).startswith("1 labeled target test image (50% of them:") and " is held out " in validation_note(m)
    assert "on the other 1 image, " in validation_note(m)


def test_both_reports_warn_of_a_collapsed_gan_and_show_its_diversity():
    for report in _both(_metrics(diversity=0.03)):
        assert "Collapsed GAN: cyclegan" in report and "GAN seed 0: 0.030" in report
    for report in _both(_metrics(diversity=0.48)):  # the default digits cgan's lowest seed
        assert "Collapsed GAN" not in report and "0.48" in report
    # a target of faint digits (contrast cut to 0.15): its own images lie 0.15 as far apart as the source's, and a
    # CycleGAN that follows its inputs faithfully has 0.15 too: no collapse; a GAN far below that has collapsed
    faint = _metrics(diversity=0.15)
    faint["gan_reference"] = {"fid": 90.0, "kid": 1.0, "label_preservation": 0.2, "feature_extractor": "SmallCNN", "target_spread_ratio": 0.149}
    for report in _both(faint):
        assert "Collapsed GAN" not in report and "target's own: 0.15" in report
    faint["gan"]["cyclegan"]["per_seed"]["0"]["diversity_ratio"] = 0.01
    for report in _both(faint):
        assert "Collapsed GAN: cyclegan" in report and "GAN seed 0: 0.010; below 0.030, 0.2 of the 0.149 at which" in report
    # a target whose images are all one image (its own spread 0): translating everything to it is right, not a collapse
    faint["gan_reference"]["target_spread_ratio"] = 0.0
    for report in _both(faint):
        assert "Collapsed GAN" not in report


def test_both_reports_name_the_arms_whose_predictions_collapse_to_one_class():
    for report in _both(_metrics(share=1.0)):
        assert "Degenerate classifiers: source_only (100%), cyclegan (100%)" in report and "+0.000 [0.000, 0.000]" in report
    for report in _both(_metrics(share=0.33)):  # the default digits source_only
        assert "Degenerate classifiers" not in report
    one_class = _metrics(share=1.0)
    one_class["run"]["target_split"] = {"target_val": 2, "target_test": 200, "target_test_per_class": {"a": 200, "b": 0, "c": 0, "d": 0}}
    right = {"mean": 1.0, "ci95": [1.0, 1.0], "per_seed": [1.0]}
    for arm in one_class["target_test"].values():
        arm["accuracy"] = right
    for report in _both(one_class):  # every test image is of one class: reading them all so is right, not degenerate
        assert "Degenerate classifiers" not in report and "No target test images of 3 of the 4 classes" in report
    one_class["target_test"]["cyclegan"] = {**one_class["target_test"]["cyclegan"], "accuracy": {**STAT, "mean": 0.0}}
    for report in _both(one_class):  # reading them all as another class is degenerate still (accuracy 0: the warning was lost)
        assert "Degenerate classifiers: cyclegan (100%)" in report


def test_both_reports_score_no_translation_beside_the_gans_and_warn_of_a_gan_that_does_worse():
    """On an MNIST -> MNIST-M pair the untranslated source had the lower FID and covered more of the
    target than either GAN: without that row the table could not say so."""
    metrics = _metrics()
    metrics["gan"]["cyclegan"].update(precision=0.8, recall=0.45)
    metrics["gan_reference"] = {"images": "source train, untranslated", "fid": 1.21, "kid": 0.0097, "kid_subset_std": 0.001,
                                "label_preservation": 0.93, "precision": 0.7, "recall": 0.68, "feature_extractor": "SmallCNN"}
    for report in _both(metrics):
        assert "no translation (source train as it is)" in report and "1.210" in report and "0.70 / 0.68" in report
        assert "Worse than no translation: by the judge's features, cyclegan does worse" in report
        assert "FID 3.52 against 1.21" in report and "recall 0.45 against 0.68" in report
    metrics["gan_reference"].update(fid=60.3, recall=0.01)  # the digits: the GANs move far toward the target
    for report in _both(metrics):
        assert "Worse than no translation" not in report and "no translation (source train as it is)" in report


def test_both_reports_warn_of_translations_that_lose_their_labels():
    metrics = _metrics(arms=("source_only", "cyclegan", "oracle"))
    metrics["target_test"]["oracle"] = {**metrics["target_test"]["oracle"], "accuracy": {"mean": 0.97, "ci95": [0.95, 0.99]}}
    metrics["gan"]["cyclegan"]["label_preservation"] = 0.65  # a cgan on two identical domains: 0.55 and 0.75
    for report in _both(metrics):
        assert "Labels not kept: the oracle reads 0.65 of cyclegan's translations as their source label, against 0.97" in report
    metrics["gan"]["cyclegan"]["label_preservation"] = 0.80  # the default digits' CycleGAN, of 0.99
    assert not any("Labels not kept" in report for report in _both(metrics))
    # No oracle: source_only judges, and a translation that keeps its label and looks like the target is read as well as a
    # real target image. Its own reading of the target is the yardstick (GTSRB at 32 px: 0.148 of translations, 0.251 of
    # the target, where the warning said nothing without an oracle)
    metrics["target_test"]["source_only"] = {**metrics["target_test"]["source_only"], "accuracy": {"mean": 0.251, "ci95": [0.2, 0.3]}}
    metrics["gan"]["cyclegan"].update(label_preservation=0.148, feature_extractor_arm="source_only")
    for report in _both(metrics):
        assert "Labels not kept: the source_only classifier reads 0.15 of cyclegan's translations as their source label, against 0.25" in report
    metrics["gan"]["cyclegan"].update(label_preservation=0.2)  # 0.8 of its reading of the target
    assert not any("Labels not kept" in report for report in _both(metrics))
    # With the confirmed filter on, its advice was to turn it on
    metrics["gan"]["cyclegan"].update(label_preservation=0.0, feature_extractor_arm="oracle", filter="confirmed")
    for report in _both(metrics):
        assert "Labels not kept: the oracle reads 0.00" in report and "synthesize.filter is confirmed already" in report
        assert "or synthesize.filter: confirmed" not in report


def test_both_reports_show_a_dash_for_gan_figures_a_set_too_small_could_not_measure():
    """A confirmed filter that kept one translation: evaluate stopped on KID's "1 < subset_size"."""
    import torch

    from augment.gan_quality import gan_quality
    from augment.mixing import LabeledImages

    net = torch.nn.Module()
    net.features = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 8))
    net.head = torch.nn.Linear(8, 2)
    real = torch.rand(20, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    one, three = (LabeledImages(real[:n] * 0.5, torch.zeros(n, dtype=torch.long)) for n in (1, 3))
    q1 = gan_quality(net, real, one, feature_extractor="SmallCNN", sources=real[:1])
    assert q1["fid"] is None and q1["kid"] is None and q1["label_preservation"] in (0.0, 1.0)
    assert not {"precision", "recall", "diversity_ratio", "kid_subset_std"} & set(q1)
    q3 = gan_quality(net, real, three, feature_extractor="SmallCNN", sources=real[:3])
    assert q3["fid"] > 0 and "kid" in q3 and "diversity_ratio" in q3 and "precision" not in q3  # 3 nearest neighbours need 4
    assert gan_quality(net, real, LabeledImages(real[:0], torch.zeros(0, dtype=torch.long)), feature_extractor="x")["fid"] is None
    metrics = _metrics()
    metrics["gan"]["cyclegan"] = {**summarize_gan_seeds({0: q1, 1: q1}), "feature_extractor_arm": "oracle"}
    assert metrics["gan"]["cyclegan"]["fid"] is None and "fid_seed_std" not in metrics["gan"]["cyclegan"]
    metrics["gan_reference"] = {"images": "source train, untranslated", **q3}
    md, page = _both(metrics, markup=True)
    assert "| cyclegan | - | - |" in md and f"{q3['fid']:.3f}" in md
    assert "<tr><td><b>cyclegan</b></td><td>-</td><td>-</td>" in page


def test_both_reports_and_check_data_note_a_target_whose_classes_come_in_other_proportions():
    from augment.report import label_shift_warning

    metrics = _metrics()
    metrics["run"]["train_data"] = {"source_train_per_class": {"a": 200, "b": 200, "c": 200, "d": 200}, "target_train": 400}
    metrics["run"]["target_split"] = {"target_val": 40, "target_test": 200, "target_test_per_class": {"a": 10, "b": 10, "c": 90, "d": 90}}
    for report in _both(metrics):
        assert "Class proportions differ: the target test images are spread over the classes otherwise" in report
        assert "total variation 0.40" in report and "a: 5% against 25%" in report and "pseudo_labels: confident" in report
        assert "here they gave" not in report  # no GAN balanced its labels
    # what the CycleGAN's balancing did is said beside it (its last labelling; the mean over GAN seeds)
    metrics["gan"]["cyclegan"].update(pseudo_moved=0.081)
    for report in _both(metrics):
        assert ("pull the target's classes toward them, as far as gan.cyclegan.balance_strength lets them (here they gave 8% of the "
                "target train images another class than the GAN's semantic classifier read them as, averaged over neighbours: gan.cyclegan.pseudo_moved)") in report
    even = {"a": 50, "b": 50, "c": 50, "d": 50}
    assert label_shift_warning(metrics["run"]["train_data"]["source_train_per_class"], even) is None
    # 43 classes and 439 test images: a total variation of 0.14 is about what sampling gives (SynSigns -> GTSRB)
    assert label_shift_warning({str(c): 40 for c in range(43)}, {str(c): 5 + (c % 3) * 4 for c in range(43)}) is None


def test_both_reports_say_when_the_baseline_mostly_reads_one_class():
    for report in _both(_metrics(share=0.82)):  # a 16 px grey source_only on MNIST -> MNIST-M
        assert "Lopsided baseline: source_only gives one class to 82% of the target test images" in report
        assert "Degenerate classifiers" not in report
    for share in (0.33, 1.0):  # the default digits' source_only; a degenerate one has its own warning
        assert not any("Lopsided" in report for report in _both(_metrics(share=share)))
    mostly_a = _metrics(share=0.7)
    mostly_a["run"]["target_split"] = {"target_val": 2, "target_test": 200, "target_test_per_class": {"a": 120, "b": 40, "c": 20, "d": 20}}
    for report in _both(mostly_a):  # 60% of the test set is of one class: reading 70% as one is no floor
        assert "Lopsided" not in report
    mostly_a["target_test"]["source_only"] = {**mostly_a["target_test"]["source_only"], "majority_prediction_share": 0.8}
    named = _metrics(share=0.82)  # which class: a user asked which one it reads them as
    named["target_test"] = {**named["target_test"], "source_only": {**named["target_test"]["source_only"], "majority_prediction_class": 2}}
    named["run"]["target_split"] = {"target_val": 2, "target_test": 200, "target_test_per_class": {"a": 50, "b": 50, "x, y": 50, "d": 50}}
    for report in _both(named):
        assert "Lopsided baseline: source_only gives one class ('x, y') to 82% of the target test images" in report
    mostly_a["run"]["target_split"]["target_test_per_class"] = {"a": 50, "b": 50, "c": 50, "d": 50}
    for report in _both(mostly_a):
        assert "(the largest class is 25% of them)" in report


def test_both_reports_say_when_there_is_no_baseline_to_measure_a_benefit_from():
    for report in _both(_metrics(arms=("cyclegan", "oracle"))):
        assert "No source_only arm (classifier.arms): there is no baseline, so no benefit is computed" in report
    for report in _both(_metrics()):
        assert "No source_only arm" not in report


def test_both_reports_say_when_a_mix_fraction_leaves_out_the_source_or_the_added_images():
    metrics = _metrics(arms=("source_only", "classic", "cyclegan", "test_time", "target_few", "oracle"))
    metrics["run"]["mix"] = {"synthetic_fraction": 0.0, "target_fraction": 1.0}
    for report in _both(metrics):
        assert ("mix.synthetic_fraction is 0: classic, cyclegan drew no image of the part it sets into any batch and trained as "
                "another arm does (classic, cyclegan as source_only does, on the real source alone)") in report
        assert "a benefit of theirs over that arm is 0 by construction" in report
        assert "mix.target_fraction is 1: target_few trained on the added images alone" in report
    # An arm that adds a GAN to the few labels trained as target_few did, not on the source alone; and
    # without the few labels, as its GAN arm did
    metrics = _metrics(arms=("source_only", "cyclegan", "target_few", "cyclegan_few", "oracle"))
    metrics["run"]["mix"] = {"synthetic_fraction": 0.0, "target_fraction": 0.5}
    for report in _both(metrics):
        assert "(cyclegan as source_only does, on the real source alone; cyclegan_few as target_few does)" in report
    metrics["run"]["mix"] = {"synthetic_fraction": 0.5, "target_fraction": 0.0}
    for report in _both(metrics):
        assert "(target_few as source_only does, on the real source alone; cyclegan_few as cyclegan does)" in report
    # target_fraction 1 leaves cyclegan_few's GAN part no row: it trained as target_few did (their difference was
    # "+0.000 [+0.000, +0.000] ... Either would do", and the warning said it trained on the added images alone)
    metrics["run"]["mix"] = {"synthetic_fraction": 0.5, "target_fraction": 1.0}
    for report in _both(metrics):
        assert "mix.target_fraction is 1: target_few trained on the added images alone" in report
        assert ("mix.target_fraction is 1: cyclegan_few drew no image but the few target labels into any batch and trained as another "
                "arm does (cyclegan_few as target_few does); a benefit of theirs over that arm is 0 by construction") in report
    metrics["run"]["mix"] = {"synthetic_fraction": 1.0, "target_fraction": 1.0}
    for report in _both(metrics):
        assert "mix.synthetic_fraction is 1: cyclegan trained on the added images alone" in report  # not cyclegan_few
    metrics["run"]["mix"] = {"synthetic_fraction": 0.5, "target_fraction": 0.5}
    for report in _both(metrics):
        assert "mix.synthetic_fraction is" not in report and "mix.target_fraction is" not in report


def test_both_reports_name_the_classes_a_synthetic_filter_left_out():
    metrics = _metrics()
    metrics["gan"]["cyclegan"] = summarize_gan_seeds({s: {"fid": 3.5, "kid": 0.01, "label_preservation": 0.25, "kept_fraction": 0.3,
                                                           "classes_with_none_kept": ["b", "d"] if s == 0 else [], "feature_extractor": "x"}
                                                      for s in (0, 1)})
    for report in _both(metrics):
        assert "Classes filtered out: synthesize.filter kept no translation of some classes by cyclegan (GAN seed 0: b, d)" in report
    for report in _both(_metrics()):
        assert "Classes filtered out" not in report
    # most classes dropped: the few kept are named, not "0, 1, 3, 4, 5 and 4 more"
    metrics["gan"]["cyclegan"]["per_seed"]["0"]["classes_with_none_kept"] = ["a", "b", "d"]
    metrics["run"]["target_split"] = {"target_test_per_class": {c: 5 for c in "abcd"}}
    for report in _both(metrics):
        assert "kept no translation of some classes by cyclegan (GAN seed 0: all but c)" in report


def test_both_reports_say_how_many_target_labels_target_few_really_saw():
    capped = arm_descriptions({"used_per_class": {"a": 15, "b": 15}, "available_per_class": {"a": 15, "b": 15}})
    assert capped["target_few"].startswith("source + (at mix.target_fraction of each batch) 15 labeled target images per class")
    assert "the same labels the oracle sees" in capped["target_few"] and "no upper bound" in capped["oracle"]
    one = arm_descriptions({"used_per_class": {"a": 1, "b": 1}, "available_per_class": {"a": 50, "b": 50}})
    assert "1 labeled target image per class" in one["target_few"]
    for report in _both(_metrics(arms=("source_only", "target_few", "oracle")), arms_info=capped):
        assert "15 labeled target images per class" in report and "the very labels target_few saw" in report and "upper bound)" not in report
    partly = arm_descriptions({"used_per_class": {"a": 10, "b": 4}, "available_per_class": {"a": 30, "b": 4}})
    assert "labeled target images (a: 10, b: 4)" in partly["target_few"] and "every labeled target train image of b" in partly["target_few"]
    assert partly["oracle"] == arm_descriptions()["oracle"] == "all labeled target train (upper bound)"
    # the warnings say it too (the few-labels stage's warning reached only its own log), and the answer no longer calls
    # that oracle the upper bound
    all_of_them = _metrics(arms=("source_only", "target_few", "oracle"))
    all_of_them["run"]["target_labels"] = {"used_per_class": {"a": 4, "b": 4}, "available_per_class": {"a": 4, "b": 4}}
    all_of_them["answer"] = {"chosen_on": "target_val", "oracle": {"verdict": "helped"}}
    all_of_them["benefit"]["oracle"] = {"accuracy_delta": {"mean": 0.5, "ci95": [0.4, 0.6]}}
    for report in _both(all_of_them, arms_info=arm_descriptions(all_of_them["run"]["target_labels"])):
        assert "Few labels are all labels: the arms that see a few target labels saw every labeled target train image of every " \
               "class (4 labeled target images per class), the very labels the oracle sees: the oracle is no upper bound" in report
        assert "With every target train label (the same labels the few-label arms saw, so no upper bound here)" in report
    all_of_them["run"]["target_labels"]["available_per_class"]["a"] = 30
    for report in _both(all_of_them):
        assert "saw every labeled target train image of b (4 labeled target images per class), the very labels the oracle sees there" in report
        assert "With every target train label (the upper bound)" in report
    gap = arm_descriptions({"used_per_class": {"a": 10, "b": 0, "c": 3}, "available_per_class": {"a": 30, "b": 0, "c": 3}})
    assert gap["target_few"].endswith("; every labeled target train image of c")  # b's none is no cap
    assert gap["oracle"].endswith("the labeled target train has no image of b, so no arm saw a target label of it and the oracle is "
                                  "no upper bound there")
    # without a target_few arm (no record of the few labels) the oracle's row still says so; a flat target train says nothing
    assert arm_descriptions(labeled_per_class={"a": 30, "b": 0, "c": 3})["oracle"] == gap["oracle"]
    assert arm_descriptions(labeled_per_class={"a": 0, "b": 0})["oracle"] == arm_descriptions()["oracle"]


def test_both_reports_caption_every_sample_grid_alike(tmp_path):
    from augment.samples import save_grid

    import torch

    save_grid([torch.zeros(2, 1, 4, 4)], tmp_path / "g.png")
    caption = "The same source test images, one per class; rows, top to bottom: source, cgan, cyclegan, classic, real target."
    md, page = _both(_metrics(), samples={"comparison": (tmp_path / "g.png", caption)})
    assert caption in md and caption in page and "reconstructed" not in md


def test_both_reports_say_when_intervals_leave_out_the_gans_own_randomness():
    for report in _both(_metrics(gan_seeds=(0,))):
        assert "does not include the GAN's own training randomness" in report.replace("&#x27;", "'")
    for report in _both(_metrics(gan_seeds=(0, 1))):
        assert "includes the GAN's own training randomness" in report
    for report in _both(_metrics(gan_seeds=(0,), arms=("source_only", "classic", "oracle"))):  # no GAN arm: nothing said of GANs
        assert "GAN's own training randomness" not in report.replace("&#x27;", "'")


def _with_split(target_test: int, per_class: dict[str, int], target_val: int = 9) -> dict:
    metrics = _metrics()
    metrics["run"]["target_split"] = {"target_val": target_val, "target_test": target_test, "target_test_per_class": per_class}
    return metrics


def test_both_reports_warn_when_the_target_test_set_is_too_small_to_measure_on():
    for report in _both(_with_split(41, {"a": 11, "b": 10, "c": 10, "d": 10})):
        assert "Small target test set: every target-test figure rests on 41 images" in report and "0.024" in report
        assert "evaluate.validation_fraction (9 of them are held out as target_val: any fraction above 0 holds out one" in report
    for report in _both(_with_split(41, {"a": 11, "b": 10, "c": 10, "d": 10}, target_val=0)):  # none held out: no advice to hold out fewer
        assert "rests on 41 images" in report and "validation_fraction" not in report.split("Small target test set")[1].split("Warning")[0]
    # large enough overall, but two classes with a handful of images: named, fewest first
    for report in _both(_with_split(430, {"a": 200, "b": 3, "c": 4, "d": 223})):
        assert "Small target test set" not in report
        assert "Few target test images of some classes: b (3), c (4)" in report and "0.33 or more per image" in report
    for report in _both(_with_split(430, {"a": 100, "b": 110, "c": 105, "d": 115})):
        assert "Small target test set" not in report and "Few target test images" not in report
        assert "No target test images" not in report
    # classes with no target test image at all (evaluate counts every class): named on their own, not as "few"
    for report in _both(_with_split(430, {"a": 200, "b": 0, "c": 4, "d": 226})):
        assert "No target test images of 1 of the 4 classes: b." in report and "macro-F1 averages the 3 classes" in report
        assert "Few target test images of some classes: c (4)." in report
    for report in _both(_with_split(41, {"a": 41, "b": 0, "c": 0, "d": 0})):
        assert "No target test images of 3 of the 4 classes: b, c, d." in report and "Small target test set" in report
    # a class named as HTML was rendered by report.md's viewers (report.html escapes it): shown as text
    md, page = _both(_with_split(430, {"a": 200, "<img src=x onerror=alert(1)>": 0, "c": 4, "d": 226}), markup=True)
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)>." in md and "<img" not in page and "&lt;img src=x" in page
    # a class name with a comma, listed as it was, read as two classes: "No target test images of 1 ...: x, y."
    for report in _both(_with_split(430, {"a": 200, "x, y": 0, "c": 4, "d": 226})):
        assert "No target test images of 1 of the 4 classes: 'x, y'." in report and "classes: c (4)." in report
    # a run recorded before the split was counted per class: only the total can be judged
    for report in _both(_with_split(430, {})):
        assert "Small target test set" not in report and "Few target test images" not in report
        assert "No target test images" not in report


def test_both_reports_warn_when_the_gans_or_a_class_had_few_train_images():
    def with_train(target, per_class):
        m = _metrics()
        m["run"]["train_data"] = {"target_train": target, "source_train_per_class": per_class}
        return m

    for report in _both(with_train(3, {"a": 40, "b": 1, "c": 9, "d": 10})):
        assert "Few target train images: the GANs learn the target domain from only 3." in report
        assert "Few source train images of some classes: b (1), c (9)." in report
    for report in _both(with_train(100, {"a": 10, "b": 10, "c": 10, "d": 10})):
        assert "Few target train images" not in report and "Few source train images" not in report
    for report in _both(_metrics()):  # a run recorded before the training data was counted
        assert "Few target train images" not in report and "Few source train images" not in report


def test_both_reports_say_what_prepare_found_in_the_files():
    """Files left out, target test images identical to a train image, and one image under two
    classes: prepare printed them, and the reports (where the result is read) said nothing."""
    m = _metrics()
    m["run"]["data_files"] = {"rejected": 13, "target_test_in_train": 2, "label_conflicts": 4, "source_test_in_train": 3}
    for report in _both(m):
        assert "Source test images seen in training: 3 of the source test images are identical to a train image" in report
        assert "Files not read: 13 file(s) under data.root were left out (data/prepared/rejected.csv" in report
        assert "Target test images seen in training: 2 of the target test images are identical to a train image" in report
        assert "One image, two labels: 4 labeled files are identical to a file filed under another class" in report
    # A hidden class folder (20 images, a whole class) was counted as one of "3 file(s)"
    m["run"]["data_files"] = {"rejected": 3, "folders_not_searched": ["src/train/.hidden", "src/test/.hidden"]}
    for report in _both(m):
        assert ("Files not read: 1 file(s) and 2 folder(s) not searched (src/train/.hidden, src/test/.hidden: hidden, a link "
                "not followed, a NAS's or an archive's own folder, or beside train/ and test/; a class folder among them is a class left out) "
                "under data.root") in report
    # by kind, so that broken images stand apart from notes and sidecars nobody meant as images
    m["run"]["data_files"] = {"rejected": 5, "folders_not_searched": ["src/.x"], "files_not_read": {"a text file, not an image": 3, "unreadable": 1}}
    for report in _both(m):
        assert "Files not read: 4 file(s) (a text file, not an image 3; unreadable 1) and 1 folder(s) not searched (src/.x: " in report
    m["run"]["data_files"] = {"rejected": 1, "folders_not_searched": ["src/train/.hidden"]}
    assert "Files not read: 1 folder(s) not searched (src/train/.hidden: hidden" in _both(m)[0]
    m["run"]["data_files"] = {"rejected": 0, "target_in_source": 5, "target_images": 120}
    for report in _both(m):
        assert ("Target images that are source images: 5 of the 120 target images are identical to source images "
                "(data/prepared/domain_copies.csv). Those carry no shift") in report
    m["run"]["data_files"] = {"rejected": 0, "target_in_source": 120, "target_images": 120}
    for report in _both(m):
        assert "Target images that are source images: all 120 target images are identical" in report
        assert "The target domain is a copy of the source: there is no shift to close" in report
    m["run"]["data_files"] = {"rejected": 0, "target_test_in_train": 0, "label_conflicts": 0, "target_in_source": 0, "target_images": 120}
    for runs in (m, _metrics()):  # clean files, or a run recorded before they were counted
        for report in _both(runs):
            assert "Files not read" not in report and "seen in training" not in report and "two labels" not in report
            assert "are source images" not in report


def test_the_folders_prepare_did_not_search_are_read_from_its_rejected_csv(tmp_path):
    from augment.prepare import folders_not_searched

    assert folders_not_searched(tmp_path / "rejected.csv") == []
    (tmp_path / "rejected.csv").write_text(
        "source_path,domain,split,reason\n/d/src/train/.hidden,src,train,\"hidden folder, not searched\"\n"
        "/d/tgt/test/x.png,tgt,test,not an image\n/d/tgt/train/l,tgt,train,\"symlinked folder, not followed\"\n"
        "/d/src/test/dog/.thumbnails,src,test,\"hidden folder, not searched\"\n"
        "/d/src/val,src,,folder beside train/ and test/ (the only splits the pipeline reads): not read\n"
        "/d/src/notes.txt,src,,file beside train/ and test/ (the only splits the pipeline reads): not read\n")
    # a hidden folder inside class dog was named src/test/.thumbnails, as if a class had been left out; val/ was counted as a file
    assert folders_not_searched(tmp_path / "rejected.csv", "/d") == ["src/train/.hidden", "tgt/train/l", "src/test/dog/.thumbnails", "src/val"]
    assert folders_not_searched(tmp_path / "rejected.csv") == ["src/train/.hidden", "tgt/train/l", "src/test/.thumbnails", "src/val"]
    from augment.prepare import files_not_read

    assert files_not_read(tmp_path / "rejected.csv") == {"file beside train/ and test/": 1, "not an image": 1}  # the files, not the folders
    assert files_not_read(tmp_path / "nothing.csv") == {}


def test_both_reports_call_an_arm_the_data_cannot_train_by_one_word_and_give_its_reason():
    """report.md said "not run", report.html "not available", of the same arm."""
    kw = {"arms_info": {}, "dataset": DATASET, "unavailable": {"oracle": "the target train split has no labels"}}
    md = render_report(_metrics(), samples={}, **kw)
    page = render_html(_metrics(), per_class={}, images={}, **kw)
    assert "| oracle | unavailable | | | | the target train split has no labels |" in md
    assert "<td class=na colspan=4>unavailable</td><td>the target train split has no labels</td>" in page


def test_class_names_in_the_arms_table_keep_it_one_row_per_arm():
    """A class named `a|b` split target_few's row into extra cells, cutting its training-data text short."""
    kw = {"dataset": DATASET, "unavailable": {"oracle": "no labels of class a|b\nor c"}}
    md = render_report(_metrics(), samples={}, arms_info={"cyclegan": "source + translations; classes a|b, c"}, **kw)
    rows = [line for line in md.splitlines() if line.startswith("| cyclegan |") and "translations" in line or line.startswith("| oracle |")]
    assert rows == [rows[0], "| oracle | unavailable | | | | no labels of class a\\|b or c |"] and rows[0].endswith("classes a\\|b, c |")
    assert all(line.replace("\\|", "").count("|") == 7 for line in rows)


def test_a_kid_subset_spread_of_zero_is_not_shown():
    """86 test images, no more than one subset: every subset was the whole set and the GAN table showed
    "subsets ± 0.0000", a spread that measures nothing."""
    from augment.report import kid_subsets

    assert kid_subsets({"kid": 0.01, "kid_subset_std": 0.0012}) == "; subsets ± 0.0012"
    assert kid_subsets({"kid": 0.01, "kid_subset_std": 0.0}) == "" and kid_subsets({"kid": 0.01}) == ""


def test_both_reports_warn_where_the_domains_seem_to_name_classes_differently():
    """Target digits filed under other names: source_only read the target at 0.006 (chance 0.1), and with
    4 and 9 swapped it read each as the other; neither report said a word of the names."""
    metrics = _metrics()
    metrics["run"]["target_split"] = {"target_test": 800, "target_test_per_class": {str(c): 80 for c in range(10)}}
    metrics["target_test"]["source_only"] = {**metrics["target_test"]["source_only"], "accuracy": {"mean": 0.006, "ci95": [0.002, 0.012]}}
    for report in _both(metrics):
        assert "Below chance: source_only reads the target test at 0.006 [0.002, 0.012], measurably below chance (0.100 with 10" in report
    metrics["target_test"]["source_only"]["accuracy"] = {"mean": 0.09, "ci95": [0.07, 0.11]}  # chance within its interval
    metrics["target_test"]["source_only"]["read_as_each_other"] = [{"classes": ["4", "9"], "shares": [0.92, 0.88]}]
    for report in _both(metrics):
        assert "Below chance" not in report
        assert "Classes read as each other: source_only reads the target test's 4 as 9 (92% of them) and 9 as 4 (88%)" in report


def test_both_reports_warn_where_a_domain_s_own_classifier_reads_a_class_of_its_test_as_another():
    """A target test folder of class 3 holding 8s (or a train and a test folder naming a class differently):
    the oracle, trained on the target's train labels, read most 3s as 8, and no report said so; source_only
    on its own source test likewise."""
    metrics = _metrics(arms=("source_only", "cyclegan", "oracle"))
    metrics["run"]["target_split"] = {"target_test": 800, "target_test_per_class": {str(c): 80 for c in range(10)}}
    metrics["run"]["train_data"] = {"source_train_per_class": {str(c): 500 for c in range(10)}}
    metrics["target_test"]["oracle"] = {**metrics["target_test"]["oracle"], "accuracy": {"mean": 0.88, "ci95": [0.85, 0.9], "per_seed": [0.88]},
                                        "read_as_another": [{"classes": ["3", "8"], "share": 0.81}]}
    metrics["source_test"]["source_only"] = {"accuracy": {"mean": 0.97, "ci95": [0.96, 0.98], "per_seed": [0.97]},
                                             "read_as_another": [{"classes": ["a b", "7"], "share": 0.6}]}
    for report in _both(metrics):
        assert ("Misread in its own domain: oracle, trained on the target's train labels, reads the target test's 3 as 8 (81% of them), "
                "while it reads the target test at 0.880 in all.") in report
        assert "Compare the target's train/3 and test/3 folders;" in report
        assert "source_only, trained on the source's train labels, reads the source test's a b as 7 (60% of them)" in report
    metrics["target_test"]["oracle"]["accuracy"]["mean"] = 0.4  # it reads the rest poorly too: nothing points at the folders
    metrics["source_test"]["source_only"]["read_as_another"] = []
    for report in _both(metrics):
        assert "Misread in its own domain" not in report


def test_an_interval_over_fewer_than_three_classifier_seeds_says_what_it_cannot_tell():
    """Two seeds of classic read a target at 0.860 and 0.725, and its interval, [0.701, 0.878], was about
    the span of those two draws, with no word that two seeds cannot tell how far a third would land."""
    from augment.report import interval_note

    assert "list three or more for that" in interval_note([0], [0, 1], ["source_only", "classic"])
    assert "With 1 classifier seed (classifier.seeds)" in interval_note([0], [0], ["source_only", "classic"])
    assert "classifier.seeds" not in interval_note([0], [0, 1, 2], ["source_only", "classic"])
