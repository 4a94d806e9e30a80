"""FID features from Inception v3 weights a user supplies by path (`evaluate.inception_weights`).

Nothing is downloaded: the pipeline's own FID judges with a classifier it trained (augment/gan_quality.py).
A team that compares its FIDs with published ones, or across data sets, gives a file of Inception v3
weights instead: torchvision's ImageNet weights (`inception_v3_google-*.pth`), or pytorch-fid's
(`pt_inception-2015-12-05-*.pth`, the TensorFlow FID network's weights under torchvision's names). The
network is torchvision's `Inception3`; its pooled 2048 features (the classifier layer and the auxiliary
head are not used) judge FID, KID, precision and recall. Images are read in [-1, 1], grey repeated to
three channels and resized to 299 px bilinearly, as pytorch-fid feeds them; pytorch-fid's blocks pool
a little differently from torchvision's, so its weights give FIDs close to, not equal to, the published ones.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from augment.io import BadInputFile, sha256_file

INCEPTION_SIZE = 299
UNUSED = ("fc.", "AuxLogits.")  # the ImageNet classifier and the auxiliary head: not features


class InceptionWeightsError(BadInputFile):
    """evaluate.inception_weights names no file of Inception v3 weights."""


class InceptionFeatures(nn.Module):
    """(N, 1 or 3, H, W) images in [-1, 1] -> (N, 2048) pooled Inception v3 features."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net(F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False))


def load_inception(path: str | Path) -> tuple[InceptionFeatures, str]:
    """The feature network of the weights at `path`, in eval mode on the CPU, and its name for
    metrics.json (`feature_extractor`): the file's name and the start of its sha256. Raises
    InceptionWeightsError, naming the key and the file, for anything else."""
    from torchvision.models.inception import Inception3

    path = Path(path)
    said = f"evaluate.inception_weights {str(path)!r}"
    if not path.is_file():
        raise InceptionWeightsError(f"{said}: no such file{' (a folder)' if path.is_dir() else ''}; give the file of Inception v3 "
                                    "weights (a .pth of torchvision's or pytorch-fid's), or '' for the pipeline's own judge")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file, a pickle of code, a truncated download
        first = (str(exc).splitlines() or [""])[0].split(". ")[0][:200]  # not torch's advice to load code from the file
        raise InceptionWeightsError(f"{said}: not a file of PyTorch weights ({type(exc).__name__}: {first})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InceptionWeightsError(f"{said}: holds no weights (a mapping of tensor names to tensors, a state_dict)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(UNUSED)}
    net = Inception3(aux_logits=False, init_weights=False)
    net.fc = nn.Identity()
    mine = net.state_dict()
    missing = [k for k in mine if k not in state]
    unknown = [k for k in state if k not in mine]
    shapes = [f"{k} {tuple(v.shape)} (Inception v3: {tuple(mine[k].shape)})" for k, v in state.items() if k in mine and v.shape != mine[k].shape]
    if missing or unknown or shapes:
        what = "; ".join(part for part in (
            f"{len(missing)} of its {len(mine)} tensors missing (e.g. {', '.join(missing[:3])})" if missing else "",
            f"{len(unknown)} it does not have (e.g. {', '.join(unknown[:3])})" if unknown else "",
            f"other shapes: {', '.join(shapes[:2])}" if shapes else "") if part)
        raise InceptionWeightsError(f"{said}: not Inception v3 weights as torchvision's Inception3 names them ({what})")
    net.load_state_dict(state)
    return InceptionFeatures(net).eval(), f"Inception v3 pooled features (2048) of {path.name}, sha256 {sha256_file(path)[:12]}"
