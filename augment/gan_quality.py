"""GAN quality without downloaded weights: FID and KID on features of a classifier trained in the pipeline.

The feature network is the target-trained `oracle` classifier when it exists (it knows what
target images look like), otherwise `source_only`; `feature_extractor` in metrics.json names it.
Each image's pooled features are computed once and give FID, KID and the classifier's reading.

- FID (Heusel et al. 2017): |mu_r - mu_f|^2 + tr(S_r + S_f - 2 (S_r S_f)^1/2) of the two sets'
  feature means and covariances, in float64, with the trace of the square root taken as the sum
  of the square roots of the eigenvalues of S_r S_f.
- KID (Binkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel
  (x.y / d + 1)^3, averaged over `kid_subsets` random subsets of up to 500 images of each set
  (fewer when a set is smaller); `kid_subset_std` is their spread.

These are torchmetrics' estimators (`FrechetInceptionDistance` and `KernelInceptionDistance` with a
custom feature module), drawing the same subsets from the same seed; tests/test_metrics.py holds
them equal. Computed here because importing torchmetrics costs about 5 s and its two metrics each
run the feature network again. Label preservation is the classifier's accuracy on synthetic images
against the labels of the source images they were translated from.

All three lean on that classifier: one that never saw a target label can read very different
target-looking images alike (a source_only classifier may call every target image one class), and
a GAN that draws one pattern for every input can then score a low FID. `diversity_ratio` needs no
classifier: how far apart the translations lie, in pixels, next to the source images they came from.
`precision` and `recall` (k-nearest-neighbour manifolds on the same features) split what FID mixes:
how many translations look like some target image, and how much of the target's variety they cover.

evaluate scores the untranslated source train images the same way (`gan_reference` in metrics.json):
a translator has moved its images toward the target only where it does better than no translation,
and label preservation is only as good as the judge's reading of the source images themselves.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from augment.images import as_float
from augment.mixing import LabeledImages


@torch.inference_mode()
def features_and_predictions(model: nn.Module, images: torch.Tensor, *, batch_size: int = 512,
                             device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """A classifier's pooled features (N, D) and predicted classes (N,), computed a batch at a time
    on `device` and returned on the CPU. `images` are float in [-1, 1] or the stored uint8 (each batch
    converted on the device, so a large set is never held as float). Without autocast on every device:
    bf16 features would round what FID's covariances are computed from."""
    model.eval().to(device)
    feats, preds = [], []
    for i in range(0, len(images), batch_size):
        f = model.features(as_float(images[i : i + batch_size].to(device)))
        feats.append(f.float().cpu())
        preds.append(model.head(f).argmax(1).cpu())
    return torch.cat(feats), torch.cat(preds)


def pooled_features(net: nn.Module, images: torch.Tensor, *, batch_size: int = 64, device: str | torch.device = "cpu") -> torch.Tensor:
    """(N, D) features of a feature network (`augment.inception`) that maps images in [-1, 1] to them,
    as `features_and_predictions` computes a classifier's."""
    net.eval().to(device)
    with torch.inference_mode():
        return torch.cat([net(as_float(images[i : i + batch_size].to(device))).float().cpu() for i in range(0, len(images), batch_size)])


def drawn(images: torch.Tensor, most: int, seed: int) -> torch.Tensor:
    """At most `most` of `images`, a fixed draw of `seed`: what an expensive feature network reads of a large set."""
    if len(images) <= most:
        return images
    return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:most].sort().values]


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two (N, D) feature sets."""
    real, fake = real.double(), fake.double()
    mu_r, mu_f = real.mean(0), fake.mean(0)
    if len(real) * len(fake) < real.shape[1] ** 2:
        # Fewer images than features (Inception's 2048): with A, B the centred sets, S_r S_f = A'A B'B / c
        # has the nonzero eigenvalues of (AB')(AB')' / c, whose square roots are AB''s singular values
        # over sqrt(c): the same trace, from a matrix of images x images, exactly and without the
        # slow, inexact eigenvalues of a rank-deficient D x D product.
        a, b = real - mu_r, fake - mu_f
        scale = ((len(real) - 1) * (len(fake) - 1)) ** 0.5
        root_trace = torch.linalg.svdvals(a @ b.T).sum() / scale
        traces = a.square().sum() / (len(real) - 1) + b.square().sum() / (len(fake) - 1)
        return float((mu_r - mu_f).square().sum() + traces - 2 * root_trace)
    cov_r, cov_f = torch.cov(real.T), torch.cov(fake.T)
    root_trace = torch.linalg.eigvals(cov_r @ cov_f).sqrt().real.sum()
    return float((mu_r - mu_f).square().sum() + cov_r.trace() + cov_f.trace() - 2 * root_trace)


def _poly_mmd(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 between (m, D) sets with the kernel (x.y / D + 1)^3."""
    gamma, m = 1.0 / x.shape[1], x.shape[0]
    k_xx, k_yy, k_xy = (((a @ b.T) * gamma + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return within - 2 * k_xy.sum() / m**2


def kernel_inception_distance(real: torch.Tensor, fake: torch.Tensor, *, subsets: int, subset_size: int, seed: int) -> tuple[float, float]:
    """KID's mean and spread over `subsets` random subsets of `subset_size` features of each set."""
    if not 1 < subset_size <= min(len(real), len(fake)):
        raise ValueError(f"KID needs 1 < subset_size <= the smaller set ({min(len(real), len(fake))}), got {subset_size}")
    real, fake = real.double(), fake.double()
    with torch.random.fork_rng(devices=[]):  # torchmetrics draws its subsets from torch's global generator; so do we
        torch.manual_seed(seed)
        scores = []
        for _ in range(subsets):
            r = real[torch.randperm(len(real))[:subset_size]]
            f = fake[torch.randperm(len(fake))[:subset_size]]
            scores.append(_poly_mmd(r, f))
    scores = torch.stack(scores)
    return float(scores.mean()), float(scores.std(unbiased=False))


def diversity_ratio(translated: LabeledImages, sources: torch.Tensor, *, pairs: int = 2000, seed: int = 0) -> float | None:
    """Mean RMS pixel distance between two translations of the same label, over the same for the two
    source images they came from (the same random pairs; `sources` (N, C, H, W) aligned with
    `translated`). About 1 when the translations keep what tells their sources apart, near 0 when the
    GAN draws (nearly) one image whatever its input. Same-label pairs also catch a conditional GAN that
    draws one image per class, which pairs across classes would not; any pairs when no class has two.
    Images are float in [-1, 1] or the stored uint8 (only the paired ones are converted).

    Sources of one label that are all the same image (synthetic renders) leave the same-label ratio
    undefined: pairs of any labels then. None where every source is the same image: nothing to keep
    apart, so no ratio (not NaN, which JSON cannot hold)."""
    labels = translated.labels
    order = torch.argsort(labels, stable=True)
    counts = torch.unique_consecutive(labels[order], return_counts=True)[1]
    ratio = _paired_ratio(translated.images, sources, order, counts, pairs, seed) if (counts >= 2).any() else None
    if ratio is None:
        ratio = _paired_ratio(translated.images, sources, torch.arange(len(labels)), torch.tensor([len(labels)]), pairs, seed)
    return ratio


def _paired_ratio(translated: torch.Tensor, sources: torch.Tensor, order: torch.Tensor, counts: torch.Tensor, pairs: int,
                  seed: int) -> float | None:
    """The diversity ratio over random pairs within the groups `counts` of `order`; None where the
    paired sources do not differ at all."""
    size = counts.repeat_interleave(counts)  # (N,) size of the class of each image, in sorted order
    start = (torch.cumsum(counts, 0) - counts).repeat_interleave(counts)  # (N,) where its class starts
    g = torch.Generator().manual_seed(seed)
    pairable = torch.nonzero(size >= 2).squeeze(1)
    a = pairable[torch.randint(len(pairable), (pairs,), generator=g)]
    step = 1 + (torch.rand(pairs, generator=g) * (size[a] - 1)).long()  # another member of a's class, uniformly
    b = start[a] + (a - start[a] + step) % size[a]
    i, j = order[a], order[b]
    apart = _pair_distance(sources, i, j)
    return float(_pair_distance(translated, i, j) / apart) if apart > 0 else None


def _pair_distance(x: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """Mean RMS pixel distance between images x[i] and x[j] (only the paired ones converted to float)."""
    return (as_float(x[i]) - as_float(x[j])).flatten(1).square().mean(1).sqrt().mean()


def domain_spread_ratio(target: torch.Tensor, source: torch.Tensor, *, pairs: int = 2000, seed: int = 0) -> float | None:
    """Mean RMS pixel distance between two random target images over the same for two random source
    images (any classes): how far apart the target domain's own images lie next to the source's. A
    shift that lowers contrast (fog, night, a faded scan) brings it below 1, and translations that
    follow their inputs faithfully then have a `diversity_ratio` near it, not near 1. None where
    either set has fewer than two images, or the source's are all one image."""
    if min(len(target), len(source)) < 2:
        return None
    g = torch.Generator().manual_seed(seed)

    def spread(x: torch.Tensor) -> torch.Tensor:
        i = torch.randint(len(x), (pairs,), generator=g)
        return _pair_distance(x, i, (i + 1 + torch.randint(len(x) - 1, (pairs,), generator=g)) % len(x))  # another image

    own, apart = spread(target), spread(source)  # in this order: the draws come from one generator
    return float(own / apart) if apart > 0 else None


def _knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Each point's distance to its k-th nearest other point of the same set."""
    return torch.cdist(x, x).kthvalue(k + 1, dim=1).values  # the nearest is the point itself


PR_NEIGHBOURS = 3  # the k of precision and recall's k-nearest-neighbour balls


def precision_recall(real: torch.Tensor, fake: torch.Tensor, *, k: int = PR_NEIGHBOURS, most: int = 2000, seed: int = 0) -> tuple[float, float] | None:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of two (N, D) feature sets: the share of
    `fake` inside the real images' manifold (each real point's ball reaches its k-th nearest real
    neighbour), and the share of `real` inside the fake images' manifold. Recall is how much of the
    target's variety the translations cover: a GAN that draws only the target's dark backgrounds has a
    good precision and a poor recall. Each set is subsampled to `most` points (a fixed draw).

    None where the real images' features all lie on one point (a target of one flat image, say): the
    real manifold is then that point, and a translation a rounding error away from it would count as
    outside it. Precision 0 would read as "no translation looks like the target"."""
    g = torch.Generator().manual_seed(seed)
    real, fake = (x[torch.randperm(len(x), generator=g)[:most]].double() for x in (real, fake))
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision and recall need more than k={k} images of each set, got {len(real)} and {len(fake)}")
    real_radii = _knn_radii(real, k)
    if real_radii.max() <= 1e-6 * real.norm(dim=1).mean():
        return None
    d = torch.cdist(real, fake)
    precision = (d <= real_radii[:, None]).any(0).double().mean()
    recall = (d <= _knn_radii(fake, k)[None, :]).any(1).double().mean()
    return float(precision), float(recall)


def gan_quality(model: nn.Module, real_target: torch.Tensor, synthetic: LabeledImages, *, feature_extractor: str, seed: int = 0,
                kid_subsets: int = 50, kid_subset_size: int = 500, batch_size: int = 512, sources: torch.Tensor | None = None,
                device: str | torch.device = "cpu", inception: nn.Module | None = None, inception_images: int = 2000,
                inception_real: torch.Tensor | None = None) -> dict:
    """FID, KID and label preservation on `model`'s features (computed on `device`); `diversity_ratio`
    too when given the `sources` (N, C, H, W) that `synthetic` was translated from. Images may be
    float in [-1, 1] or the stored uint8. With an `inception` feature network (augment/inception.py;
    `feature_extractor` then names it), FID, KID, precision and recall are judged on its features of
    at most `inception_images` of each set (a fixed draw), and label preservation still by `model`;
    `inception_real`: its features of `real_target`, where computed once for several calls.

    What a set too small cannot measure is not made up: FID and KID are None (null in metrics.json)
    below 2 images of either set (a covariance, a pair), precision and recall are left out at 3 or
    fewer (their 3 nearest neighbours), the diversity ratio below 2 translations. A filter that
    kept one translation, or a target test set of a few images, then still gets its report."""
    if not len(synthetic.images) or not len(real_target):  # a filter that kept nothing
        return {"fid": None, "kid": None, "feature_extractor": feature_extractor, "label_preservation": None}
    fake, preds = features_and_predictions(model, synthetic.images, batch_size=batch_size, device=device)
    if inception is None:
        real, _ = features_and_predictions(model, real_target, batch_size=batch_size, device=device)
    else:
        real = inception_real if inception_real is not None else pooled_features(inception, drawn(real_target, inception_images, seed), device=device)
        fake = pooled_features(inception, drawn(synthetic.images, inception_images, seed), device=device)
    fewest = min(len(real), len(fake))
    out = {"fid": None, "kid": None}
    if fewest >= 2:
        out["fid"] = frechet_distance(real, fake)
        out["kid"], out["kid_subset_std"] = kernel_inception_distance(real, fake, subsets=kid_subsets, seed=seed,
                                                                      subset_size=min(kid_subset_size, fewest))
    out["feature_extractor"] = feature_extractor
    out["label_preservation"] = float((preds == synthetic.labels.cpu()).float().mean())
    both = precision_recall(real, fake, seed=seed) if fewest > PR_NEIGHBOURS else None
    if both is not None:  # None also on a target whose images are all alike: left out, shown as "-"
        out["precision"], out["recall"] = both
    ratio = diversity_ratio(synthetic, sources, seed=seed) if sources is not None and len(fake) >= 2 else None
    if ratio is not None:  # left out (shown as "-") where the sources are all one image
        out["diversity_ratio"] = ratio
    return out


def summarize_gan_seeds(per_seed: dict[int, dict]) -> dict:
    """One GAN kind's quality over its seeds: the mean of each figure (the contract's keys), its
    spread over GAN seeds (`<key>_seed_std`, 0 with one seed), and every seed's own figures. A figure
    no seed could measure (None) stays None; one some seeds could not is their mean over the others."""
    first = next(iter(per_seed.values()))
    out: dict = {}
    for key in ("fid", "kid", "kid_subset_std", "label_preservation", "precision", "recall", "kept_fraction", "diversity_ratio",
                "pseudo_moved"):
        if not all(key in q for q in per_seed.values()):  # pseudo_moved: a seed whose C never labelled the target
            continue
        values = np.array([q[key] for q in per_seed.values() if q[key] is not None], dtype=float)
        out[key] = float(values.mean()) if len(values) else None
        if key != "kid_subset_std" and len(values):
            out[f"{key}_seed_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    out["feature_extractor"] = first["feature_extractor"]
    out["per_seed"] = {str(seed): {k: v for k, v in q.items() if k != "feature_extractor"} for seed, q in per_seed.items()}
    return out

