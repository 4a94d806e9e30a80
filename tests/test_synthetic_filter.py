"""synthesize.filter: translations whose label a source-trained classifier does not confirm are dropped."""
import pytest
import torch

from augment.arms import ARMS, ArmUnavailable, training_parts
from augment.mixing import LabeledImages
from augment.synthetic_filter import FilterConfig, keep_mask


def _bars(labels: torch.Tensor, size: int = 8) -> torch.Tensor:
    """Class c: a bright vertical bar in column block c, on a dark noisy background."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(len(labels), 1, size, size, generator=g) * 0.2 - 1
    for i, c in enumerate(labels.tolist()):
        x[i, :, :, 2 * c : 2 * c + 2] = 1.0
    return x


def test_confirmed_keeps_translations_that_kept_their_class_and_drops_flipped_ones():
    labels = torch.arange(4).repeat(40)
    source = LabeledImages(_bars(labels), labels)
    fake_labels = torch.arange(4).repeat(10)
    flipped = torch.arange(40) % 2 == 1  # classes 1 and 3 always drew another class's bar, 0 and 2 never
    drawn = torch.where(flipped, (fake_labels + 1) % 4, fake_labels)
    fake = _bars(drawn)
    keep, summary = keep_mask(source, fake, fake_labels, FilterConfig(kind="confirmed", judge_steps=60, judge_width=8),
                              num_classes=4, seed=0)
    assert keep.tolist() == (~flipped).tolist()
    assert summary["kept"] == 20 and summary["total"] == 40 and summary["kept_fraction"] == 0.5
    assert summary["per_class"][0] == {"total": 10, "kept": 10} and summary["per_class"][1] == {"total": 10, "kept": 0}
    assert summary["classes_with_none_kept"] == [1, 3]
    keep_all, none = keep_mask(source, fake, fake_labels, FilterConfig(kind="none"), num_classes=4, seed=0)
    assert keep_all.all() and none["kept_fraction"] == 1.0
    with pytest.raises(ValueError, match="synthesize.filter must be one of"):
        keep_mask(source, fake, fake_labels, FilterConfig(kind="strict"), num_classes=4, seed=0)


def test_a_gan_arm_whose_filter_kept_nothing_is_unavailable_with_the_reason():
    source = LabeledImages(torch.zeros(4, 1, 8, 8), torch.arange(4))
    empty = LabeledImages(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ArmUnavailable, match="synthesize.filter kept none of the cyclegan translations"):
        training_parts(ARMS["cyclegan"], source=source, target=None, synthetic=empty, synthetic_fraction=0.5)
