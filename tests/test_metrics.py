"""Metrics: macro-F1, bootstrap intervals, paired benefit, FID/KID, and the metrics.json shape."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from augment.metrics import macro_f1, paired_delta, summarize
from augment.report import arm_metrics, mark_unavailable


def test_macro_f1_matches_sklearn():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 5, 300), rng.integers(0, 6, 300)
    assert macro_f1(y, p, 6) == pytest.approx(f1_score(y, p, average="macro", labels=np.unique(y)))


def test_summary_interval_brackets_the_mean():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400)
    preds = np.where(rng.random((3, 400)) < 0.7, labels, (labels + 1) % 10)
    s = summarize(preds, labels, num_classes=10, samples=500)
    acc = s["accuracy"]
    assert acc["ci95"][0] < acc["mean"] < acc["ci95"][1]
    assert acc["mean"] == pytest.approx(0.7, abs=0.05) and len(acc["per_seed"]) == 3
    assert 0.6 < acc["ci95"][0] and acc["ci95"][1] < 0.8


def test_paired_delta_is_zero_for_identical_and_signed_for_better():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 300)
    base = np.where(rng.random((2, 300)) < 0.3, labels, (labels + 1) % 10)
    same = paired_delta(base, base, labels, samples=300)
    assert same == {"mean": 0.0, "ci95": [0.0, 0.0]}
    better = np.where(rng.random((2, 300)) < 0.8, labels, (labels + 1) % 10)
    d = paired_delta(better, base, labels, samples=300)
    assert d["ci95"][0] > 0.3 and d["mean"] == pytest.approx(0.5, abs=0.1)
    with pytest.raises(ValueError, match="same seeds and images"):
        paired_delta(better[:1], base, labels)


def test_fid_and_kid_on_the_pipelines_own_features():
    import torch

    from augment.gan_quality import gan_quality
    from augment.mixing import LabeledImages
    from models.classifiers import SmallCNN

    torch.manual_seed(0)
    model = SmallCNN(1, 3, width=4)
    real = torch.rand(120, 1, 8, 8) * 2 - 1
    near = LabeledImages((real + 0.05 * torch.randn_like(real)).clamp(-1, 1), torch.zeros(120, dtype=torch.long))
    far = LabeledImages((torch.rand(120, 1, 8, 8) * 0.5 + 0.5), torch.zeros(120, dtype=torch.long))
    q_near = gan_quality(model, real, near, feature_extractor="test", seed=0)
    q_far = gan_quality(model, real, far, feature_extractor="test", seed=0)
    assert 0 <= q_near["fid"] < q_far["fid"] and q_near["kid"] < q_far["kid"]
    assert q_far["kid_subset_std"] >= 0 and q_far == gan_quality(model, real, far, feature_extractor="test", seed=0)  # seeded subsets
    assert set(q_far) == {"fid", "kid", "kid_subset_std", "feature_extractor", "label_preservation", "precision", "recall"}
    assert q_near["recall"] > q_far["recall"]


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save all extracted features")
def test_fid_and_kid_equal_torchmetrics_on_the_same_features():
    """The pipeline's FID and KID are torchmetrics' estimators (same subsets from the same seed)."""
    import torch
    from torch import nn
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    from augment.gan_quality import frechet_distance, kernel_inception_distance

    class Given(nn.Module):  # the features are the "images": torchmetrics passes a custom module's input straight in
        num_features = 16

        def forward(self, x):
            return x

    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, 16, generator=g)
    fake = torch.randn(260, 16, generator=g) * 1.3 + 0.4
    fid = FrechetInceptionDistance(feature=Given())
    kid = KernelInceptionDistance(feature=Given(), subsets=20, subset_size=100)
    for metric in (fid, kid):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        kid_mean, kid_std = kid.compute()
    assert frechet_distance(real, fake) == pytest.approx(float(fid.compute()), rel=1e-5)
    mine = kernel_inception_distance(real, fake, subsets=20, subset_size=100, seed=3)
    assert mine == pytest.approx((float(kid_mean), float(kid_std)), rel=1e-4)
    assert frechet_distance(real, real) == pytest.approx(0, abs=1e-6)
    # fewer images than features (Inception's 2048 against a few hundred images): the images x images route
    wide = FrechetInceptionDistance(feature=type("Wide", (Given,), {"num_features": 64})())
    few_real, few_fake = torch.randn(40, 64, generator=g), torch.randn(30, 64, generator=g) * 0.7 + 0.2
    wide.update(few_real, real=True)
    wide.update(few_fake, real=False)
    assert frechet_distance(few_real, few_fake) == pytest.approx(float(wide.compute()), rel=1e-5)
    assert frechet_distance(few_real, few_real) == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="subset_size"):
        kernel_inception_distance(real, fake[:50], subsets=2, subset_size=100, seed=0)


def _frame(preds, labels):
    n = len(labels)
    return pd.DataFrame({
        "eval_set": ["target_test"] * n + ["source_test"] * n,
        "path": [f"t{i}" for i in range(n)] + [f"s{i}" for i in range(n)],
        "label_index": np.concatenate([labels, labels]),
        "pred": np.concatenate([preds, labels]),
    })


def test_arm_metrics_has_the_contract_shape():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 100)
    preds = {
        "source_only": {s: _frame((labels + 1) % 4, labels) for s in (0, 1)},
        "cyclegan": {s: _frame(labels, labels) for s in (0, 1)},
    }
    m = arm_metrics(preds, num_classes=4, samples=200, seed=0)
    assert set(m) == {"target_test", "source_test", "benefit"}
    assert set(m["target_test"]["cyclegan"]) == {"accuracy", "macro_f1", "majority_prediction_share", "majority_prediction_class"}
    assert set(m["target_test"]["cyclegan"]["accuracy"]) == {"mean", "ci95", "per_seed"}
    assert set(m["source_test"]["cyclegan"]) == {"accuracy"}
    assert list(m["benefit"]) == ["cyclegan"]
    assert m["benefit"]["cyclegan"]["accuracy_delta"]["mean"] == 1.0


def test_majority_prediction_share_shows_a_classifier_that_reads_every_image_as_one_class():
    """Two arms stuck on class 0 have a benefit of exactly 0 [0, 0]; the share says why."""
    labels = np.arange(100) % 4
    stuck = {s: _frame(np.zeros(100, int), labels) for s in (0, 1)}
    m = arm_metrics({"source_only": stuck, "cyclegan": stuck, "oracle": {s: _frame(labels, labels) for s in (0, 1)}},
                    num_classes=4, samples=200, seed=0)
    assert m["benefit"]["cyclegan"]["accuracy_delta"] == {"mean": 0.0, "ci95": [0.0, 0.0]}
    assert m["target_test"]["cyclegan"]["majority_prediction_share"] == 1.0
    assert m["target_test"]["oracle"]["majority_prediction_share"] == 0.25  # a balanced test set read right
    assert m["target_test"]["cyclegan"]["majority_prediction_class"] == 0  # the class it reads them all as


def test_an_unavailable_arm_is_marked_in_benefit_as_in_target_test():
    labels = np.arange(20) % 2
    m = arm_metrics({a: {0: _frame(labels, labels)} for a in ("source_only", "cyclegan")}, num_classes=2, samples=50, seed=0)
    mark_unavailable(m, {"oracle": "the target train split has no labels (it is flat)"})
    gone = {"status": "unavailable", "reason": "the target train split has no labels (it is flat)"}
    assert m["benefit"]["oracle"] == m["target_test"]["oracle"] == m["source_test"]["oracle"] == gone
    assert "accuracy_delta" in m["benefit"]["cyclegan"] and "source_only" not in m["benefit"]


def test_diversity_ratio_sees_a_collapsed_gan_without_any_classifier():
    """A darker, noisier translation keeps its sources' spread; one pattern for every input, or
    one image per class (a conditional GAN's collapse), has almost none."""
    import torch

    from augment.gan_quality import diversity_ratio, gan_quality, summarize_gan_seeds
    from augment.mixing import LabeledImages
    from models.classifiers import SmallCNN

    g = torch.Generator().manual_seed(0)
    sources = torch.rand(200, 1, 8, 8, generator=g) * 2 - 1
    labels = torch.arange(200) % 4
    night = LabeledImages(sources * 0.5 - 0.4 + 0.05 * torch.randn(200, 1, 8, 8, generator=g), labels)
    stripes = torch.zeros(1, 1, 8, 8)
    stripes[..., ::2, :] = 1.0
    collapsed = LabeledImages(stripes.expand(200, -1, -1, -1) + 0.01 * torch.randn(200, 1, 8, 8, generator=g), labels)
    per_class = LabeledImages(sources[labels], labels)  # class c always draws source image c
    assert 0.45 < diversity_ratio(night, sources) < 0.6
    assert diversity_ratio(collapsed, sources) < 0.05 and diversity_ratio(per_class, sources) == 0.0
    assert diversity_ratio(night, sources, seed=1) == pytest.approx(diversity_ratio(night, sources, seed=1))
    model = SmallCNN(1, 4, width=4)
    q = gan_quality(model, sources, collapsed, feature_extractor="test", sources=sources)
    assert q["diversity_ratio"] == diversity_ratio(collapsed, sources)
    assert summarize_gan_seeds({0: q, 1: {**q, "diversity_ratio": 0.5}})["diversity_ratio"] == pytest.approx((q["diversity_ratio"] + 0.5) / 2)


def test_sources_alike_within_a_class_and_a_one_image_target_give_ratios_or_none_never_nan_or_a_crash():
    """Synthetic renders (one image per class, repeated) gave `diversity_ratio` NaN, a bare NaN in
    metrics.json; a target train of one image crashed evaluate in `domain_spread_ratio`."""
    import torch

    from augment.gan_quality import diversity_ratio, domain_spread_ratio, gan_quality
    from augment.mixing import LabeledImages
    from models.classifiers import SmallCNN

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % 4
    sources = (torch.rand(4, 1, 8, 8, generator=g) * 2 - 1)[labels]  # every source of a class is one image
    kept = LabeledImages(sources * 0.5 + 0.01 * torch.randn(40, 1, 8, 8, generator=g), labels)
    collapsed = LabeledImages(torch.zeros(40, 1, 8, 8) + 0.01 * torch.randn(40, 1, 8, 8, generator=g), labels)
    assert 0.45 < diversity_ratio(kept, sources) < 0.55  # pairs of any labels: the classes stay apart at half contrast
    assert diversity_ratio(collapsed, sources) < 0.05
    one = sources[:1].expand(40, -1, -1, -1)
    assert diversity_ratio(LabeledImages(one.clone(), labels), one) is None  # nothing to keep apart
    q = gan_quality(SmallCNN(1, 4, width=4), sources, LabeledImages(one.clone(), labels), feature_extractor="test", sources=one)
    assert "diversity_ratio" not in q
    assert domain_spread_ratio(sources[:1], sources) is None and domain_spread_ratio(sources, sources[:1]) is None
    assert domain_spread_ratio(sources, one) is None and domain_spread_ratio(sources * 0.5, sources) == pytest.approx(0.5, rel=0.05)


def test_precision_and_recall_tell_a_gan_that_covers_part_of_the_target_from_one_that_covers_it_all():
    """FID mixes the two; a GAN that draws only the target's dark backgrounds is precise but covers little."""
    import torch

    from augment.gan_quality import precision_recall

    g = torch.Generator().manual_seed(0)
    real = torch.randn(800, 8, generator=g)
    alike = torch.randn(800, 8, generator=g)  # another draw of the same distribution
    p, r = precision_recall(real, alike)
    assert p > 0.85 and r > 0.85
    half = alike[alike[:, 0] > 0]  # only one side of the target
    p, r = precision_recall(real, half)
    assert p > 0.85 and 0.3 < r < 0.7
    collapsed = real[:1] + 0.01 * torch.randn(800, 8, generator=g)  # one image, whatever the input
    p, r = precision_recall(real, collapsed)
    assert r < 0.05
    elsewhere = torch.randn(800, 8, generator=g) + 10  # nothing like the target
    assert precision_recall(real, elsewhere) == (0.0, 0.0)
    with pytest.raises(ValueError, match="more than k=3 images"):
        precision_recall(real, real[:3])


def test_precision_and_recall_are_left_out_where_the_target_images_are_all_alike():
    """A flat one-colour target: its manifold is one point, so translations a rounding error away from
    it read as precision 0.00, "no translation looks like the target". The figures are left out (the
    reports show "-")."""
    import torch

    from augment.gan_quality import gan_quality, precision_recall
    from augment.mixing import LabeledImages

    flat = torch.ones(50, 8)
    assert precision_recall(flat, flat + 1e-4 * torch.randn(50, 8, generator=torch.Generator().manual_seed(0))) is None  # was 0.00 / 1.00
    assert precision_recall(flat + 1e-3 * torch.randn(50, 8, generator=torch.Generator().manual_seed(1)), flat) is not None
    net = torch.nn.Module()
    net.features = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 8))
    net.head = torch.nn.Linear(8, 2)
    target = torch.full((12, 3, 4, 4), 0.25)
    q = gan_quality(net, target, LabeledImages(target.clone(), torch.zeros(12, dtype=torch.long)), feature_extractor="t")
    assert "precision" not in q and "recall" not in q and q["fid"] == pytest.approx(0, abs=1e-6)


def test_gan_quality_reads_stored_uint8_sets_as_it_reads_their_float_values():
    """evaluate holds the synthetic set, its sources and the real target as the stored uint8 (a
    quarter of float32's memory) and converts a batch at a time: every figure is the float one."""
    import torch

    from augment.gan_quality import gan_quality
    from augment.images import to_tensor, to_uint8_tensor
    from augment.mixing import LabeledImages
    from models.classifiers import SmallCNN

    rng = np.random.default_rng(0)
    real, fake, src = (rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8) for n in (90, 130, 130))
    fake[:100] = fake[0]  # a mostly collapsed GAN: diversity well below 1
    labels = torch.as_tensor(rng.integers(0, 3, 130))
    torch.manual_seed(0)
    model = SmallCNN(3, 3, width=4)
    as_float = gan_quality(model, to_tensor(real), LabeledImages(to_tensor(fake), labels), feature_extractor="t",
                           sources=to_tensor(src), batch_size=32)
    stored = gan_quality(model, to_uint8_tensor(real), LabeledImages(to_uint8_tensor(fake), labels), feature_extractor="t",
                         sources=to_uint8_tensor(src), batch_size=32)
    assert to_uint8_tensor(fake).dtype == torch.uint8 and set(stored) == set(as_float)
    assert stored["label_preservation"] == as_float["label_preservation"] and stored["diversity_ratio"] < 0.9
    for key in ("fid", "kid", "kid_subset_std", "diversity_ratio"):
        assert stored[key] == pytest.approx(as_float[key], rel=1e-5), key


def test_arm_metrics_refuses_unpaired_seeds():
    labels = np.zeros(10, int)
    preds = {"source_only": {0: _frame(labels, labels)}, "cyclegan": {1: _frame(labels, labels)}}
    with pytest.raises(ValueError, match="paired by seed"):
        arm_metrics(preds, num_classes=2, samples=100, seed=0)


def test_intervals_resample_gan_seeds_when_classifiers_are_grouped_by_gan():
    """Six classifier seeds over two GANs: one GAN's classifiers are all right, the other's all
    wrong. Resampling GAN seeds must let the interval reach both extremes; resampling only
    classifier seeds (six of them) keeps it narrower."""
    labels = np.zeros(200, dtype=int)
    good, bad = np.zeros(200, dtype=int), np.ones(200, dtype=int)
    preds = np.stack([good, bad] * 3)  # seed s learned from GAN s % 2
    groups = np.array([0, 1] * 3)
    flat = summarize(preds, labels, num_classes=2, samples=2000, seed=0, with_f1=False)["accuracy"]["ci95"]
    grouped = summarize(preds, labels, num_classes=2, samples=2000, seed=0, with_f1=False, groups=groups)["accuracy"]["ci95"]
    assert grouped[0] == 0.0 and grouped[1] == 1.0  # a replicate can draw GAN 1 twice, or GAN 0 twice
    assert flat[0] > 0.0 and flat[1] < 1.0
    base = np.stack([good] * 6)
    delta = paired_delta(preds, base, labels, samples=2000, seed=0, groups=groups)["ci95"]
    assert delta[0] == -1.0 and delta[1] == 0.0


def test_arm_metrics_resample_the_same_gan_seeds_for_every_arm():
    """gan_seed_of groups every arm's seeds the same way, so a non-GAN arm keeps its interval
    shape and the benefit stays paired; one GAN seed (a single group) changes nothing."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 60)

    def frame(p):
        return pd.DataFrame({"eval_set": ["target_test"] * 60 + ["source_test"] * 60, "path": [f"{i}" for i in range(120)],
                             "label_index": np.concatenate([labels, labels]), "pred": np.concatenate([p, p])})

    predictions = {arm: {s: frame(np.where(rng.random(60) < q, labels, (labels + 1) % 3)) for s in range(4)}
                   for arm, q in (("source_only", 0.4), ("cyclegan", 0.7))}
    plain = arm_metrics(predictions, num_classes=3, samples=300, seed=0)
    one_gan = arm_metrics(predictions, num_classes=3, samples=300, seed=0, gan_seed_of={s: 0 for s in range(4)})
    assert one_gan == plain
    two = arm_metrics(predictions, num_classes=3, samples=300, seed=0, gan_seed_of={s: s % 2 for s in range(4)})
    assert two["target_test"]["cyclegan"]["accuracy"]["mean"] == plain["target_test"]["cyclegan"]["accuracy"]["mean"]
    assert two["benefit"]["cyclegan"]["accuracy_delta"]["ci95"] != plain["benefit"]["cyclegan"]["accuracy_delta"]["ci95"]


def test_validation_split_is_stratified_fixed_and_leaves_every_class_in_test():
    from augment.validation import VAL_SET, hold_out, validation_count, validation_paths

    rows = pd.DataFrame({"path": [f"t/{c}/{i}.png" for c in range(3) for i in range(10 if c else 1)],
                         "label_index": [c for c in range(3) for _ in range(10 if c else 1)]})
    val = validation_paths(rows, 0.2, seed=0)
    assert val == validation_paths(rows, 0.2, seed=0) and val != validation_paths(rows, 0.2, seed=1)
    per_class = rows[rows.path.isin(val)].label_index.value_counts().to_dict()
    assert per_class == {1: 2, 2: 2}  # 20% of ten; a class of one image stays wholly in test
    assert [validation_count(n, 0.2) for n in (0, 1, 10)] == [0, 0, 2]  # what check-data counts before a run, without the files
    assert [validation_count(n, f) for n, f in ((2, 0.2), (3, 0.9), (5, 0.0))] == [1, 2, 0]
    assert validation_paths(rows, 0.0, seed=0) == set()
    frame = pd.DataFrame({"eval_set": ["target_test"] * len(rows) + ["source_test"], "path": [*rows.path, "s/0.png"],
                          "label_index": [*rows.label_index, 0], "pred": 0})
    moved = hold_out(frame, val | {"s/0.png"})
    assert (moved.eval_set == VAL_SET).sum() == 4 and moved.eval_set.iloc[-1] == "source_test"  # source test untouched

    def frames(q):
        rng = np.random.default_rng(int(q * 10))
        return {s: hold_out(frame.assign(pred=np.where(rng.random(len(frame)) < q, frame.label_index, 1)), val) for s in (0, 1)}

    m = arm_metrics({"source_only": frames(0.3), "cyclegan": frames(0.9)}, num_classes=3, samples=200, seed=0)
    assert set(m[VAL_SET]) == {"source_only", "cyclegan"} and "accuracy_delta" in m[VAL_SET]["cyclegan"]
    assert len(m["target_test"]["cyclegan"]["accuracy"]["per_seed"]) == 2


def test_what_the_balancing_moved_is_the_training_logs_last_figure_and_kept_only_where_every_seed_logged_it(tmp_path):
    """`gan.<gan>.pseudo_moved`: the share of target images the CycleGAN's balanced pseudo-labels gave
    another class than C's own reading at its last labelling (the label-shift warning cites it)."""
    from augment.gan_quality import summarize_gan_seeds
    from pipelines.stages.evaluate import last_logged

    log = tmp_path / "history.csv"
    log.write_text("step,loss_cycle,pseudo_moved\n50,1.0,\n100,0.7,0.19\n150,0.5,0.03\n200,0.4,\n")  # logged from the first labelling on
    assert last_logged(log, "pseudo_moved") == pytest.approx(0.03)
    assert last_logged(log, "loss_c") is None and last_logged(tmp_path / "absent.csv", "pseudo_moved") is None
    log.write_text("step,loss_cycle,pseudo_moved\n50,1.0,\n")  # C never became competent enough to label
    assert last_logged(log, "pseudo_moved") is None
    q = {"fid": 1.0, "label_preservation": 0.9, "feature_extractor": "test"}
    both = summarize_gan_seeds({0: {**q, "pseudo_moved": 0.02}, 1: {**q, "pseudo_moved": 0.06}})
    assert both["pseudo_moved"] == pytest.approx(0.04) and both["per_seed"]["1"]["pseudo_moved"] == 0.06
    one = summarize_gan_seeds({0: {**q, "pseudo_moved": 0.02}, 1: q})  # a mean over some seeds would not be the kind's figure
    assert "pseudo_moved" not in one and one["per_seed"]["0"]["pseudo_moved"] == 0.02


def test_two_classes_read_as_each_other_are_found_and_one_way_confusions_are_not():
    import numpy as np

    from augment.metrics import read_as_each_other

    labels = np.repeat(np.arange(4), 10)
    preds = labels.copy()
    preds[labels == 1], preds[labels == 3] = 3, 1  # 1 and 3 swapped both ways
    one_way = labels.copy()
    one_way[labels == 0] = 2  # 0 read as 2, 2 read right: a change of look, no swap
    assert read_as_each_other(np.stack([preds, preds]), labels, 4) == [(1, 3, 1.0, 1.0)]
    assert read_as_each_other(one_way[None], labels, 4) == []


def test_a_class_read_as_one_other_is_found_one_way_and_not_among_a_handful_of_images():
    """A classifier tested in its own domain that reads most of a class as one other: a train and a
    test folder that name the class differently. Four images of a class say nothing either way."""
    import numpy as np

    from augment.metrics import read_as_another

    labels = np.repeat(np.arange(4), [10, 10, 10, 4])
    preds = labels.copy()
    preds[np.flatnonzero(labels == 0)[:6]] = 2  # 0 read as 2 for 6 of 10 images, 2 read right
    preds[labels == 3] = 1  # all 4 images of class 3 read as 1: too few to tell
    other = preds.copy()
    other[np.flatnonzero(labels == 0)[:4]] = 0  # a second seed reads only 2 of 10 as 2: 8 of 20 in all
    assert read_as_another(preds[None], labels, 4) == [(0, 2, 0.6)]
    assert read_as_another(np.stack([preds, other]), labels, 4) == []
    spread = labels.copy()
    spread[labels == 0] = np.array([1, 1, 1, 2, 2, 2, 3, 3, 3, 0])  # most of class 0 misread, but as no one class
    assert read_as_another(spread[None], labels, 4) == []
    swapped = labels.copy()
    swapped[labels == 1], swapped[labels == 2] = 2, 1
    assert read_as_another(swapped[None], labels, 4) == [(1, 2, 1.0), (2, 1, 1.0)]
