"""evaluate.inception_weights: FID, KID, precision and recall on the features of Inception v3 weights a
user supplies by path (nothing is downloaded), and a clear refusal of anything else by key and file."""
import pytest
import torch

from augment.gan_quality import gan_quality
from augment.inception import InceptionWeightsError, load_inception
from augment.mixing import LabeledImages
from models.classifiers import SmallCNN


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A file laid out as torchvision's ImageNet weights (with the classifier and the auxiliary head);
    random values, their batch-norm statistics measured on random images so that features differ
    between images: the pipeline cannot download the real ones, and reads any such file alike."""
    from torch import nn
    from torchvision.models.inception import Inception3

    torch.manual_seed(0)
    net = Inception3(aux_logits=True, init_weights=False)
    for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.momentum = None  # the statistics of the one batch below
    with torch.no_grad():
        net.train()(torch.rand(4, 3, 299, 299) * 2 - 1)
    path = tmp_path_factory.mktemp("weights") / "inception_v3_test.pth"
    torch.save(net.state_dict(), path)
    return path


def test_the_weights_judge_fid_kid_precision_and_recall_and_the_classifier_still_judges_labels(weights):
    net, name = load_inception(weights)
    assert name.startswith("Inception v3 pooled features (2048) of inception_v3_test.pth, sha256 ")
    torch.manual_seed(0)
    real = torch.randint(0, 256, (10, 1, 16, 16), dtype=torch.uint8)
    labels = torch.arange(10) % 3
    classifier = SmallCNN(1, 3, width=4)
    own = gan_quality(classifier, real, LabeledImages(real, labels), feature_extractor="classifier", seed=0)
    from augment.gan_quality import drawn, pooled_features

    judged = dict(feature_extractor=name, inception=net, inception_images=6, inception_real=pooled_features(net, drawn(real, 6, 0)), seed=0)
    same = gan_quality(classifier, real, LabeledImages(real, labels), **judged)
    assert same["feature_extractor"] == name and same["label_preservation"] == own["label_preservation"]  # the classifier's reading
    other = LabeledImages(255 - real, labels)
    apart = gan_quality(classifier, real, other, **judged)
    # the same 6 of each set: 0 but for the rounding of a 2048-dim covariance of 6 images
    assert apart["fid"] > 1 and abs(same["fid"]) < 1e-3 * apart["fid"] and apart["kid"] > same["kid"]


def test_wrapped_or_data_parallel_weights_load_too(weights, tmp_path):
    state = torch.load(weights, weights_only=True)
    wrapped = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, wrapped)
    net, _ = load_inception(wrapped)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), load_inception(weights)[0].state_dict().values()))


def test_anything_else_is_refused_by_key_and_file(weights, tmp_path):
    state = torch.load(weights, weights_only=True)
    cases = {"missing.pth": None, "folder": "dir", "notes.pth": b"not weights", "resnet.pth": {"conv1.weight": torch.zeros(64, 3, 7, 7)},
             "narrow.pth": {**state, "Conv2d_1a_3x3.conv.weight": torch.zeros(16, 3, 3, 3)}}
    said = {}
    for name, content in cases.items():
        path = tmp_path / name
        if content == "dir":
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            torch.save(content, path)
        with pytest.raises(InceptionWeightsError) as caught:
            load_inception(path)
        said[name] = str(caught.value)
        assert said[name].startswith(f"evaluate.inception_weights '{path}': "), said[name]
    assert "no such file;" in said["missing.pth"] and "no such file (a folder)" in said["folder"]
    assert "not a file of PyTorch weights (UnpicklingError" in said["notes.pth"]
    assert "564 of its 564 tensors missing" in said["resnet.pth"] and "1 it does not have (e.g. conv1.weight)" in said["resnet.pth"]
    assert "other shapes: Conv2d_1a_3x3.conv.weight (16, 3, 3, 3) (Inception v3: (32, 3, 3, 3))" in said["narrow.pth"]


def test_a_run_is_refused_before_any_stage_where_its_worktree_lacks_the_file(weights, tmp_path):
    from pipelines.config import ParamsError
    from pipelines.flows import check_inception_weights

    checkout, worktree = tmp_path / "checkout", tmp_path / "worktree"
    (checkout / "weights").mkdir(parents=True)
    worktree.mkdir()
    (checkout / "weights/inception.pth").write_bytes(weights.read_bytes())
    check_inception_weights(checkout, checkout, "weights/inception.pth")  # in place: read
    with pytest.raises(ParamsError, match=r"a file of your checkout .* that the run's worktree of the committed HEAD does not hold\. "
                                          r"Give its absolute path \(-S evaluate\.inception_weights=/.*/checkout/weights/inception\.pth\)"):
        check_inception_weights(checkout, worktree, "weights/inception.pth")
    with pytest.raises(ParamsError, match="no such file"):
        check_inception_weights(checkout, checkout, "weights/other.pth")
