"""Which image sizes the networks can take: pure arithmetic, no torch, so params can be checked
before any stage runs (pipelines/config.py) without making every stage depend on the networks' code.

tests/test_models.py checks both functions against real forwards over a grid of sizes.
"""
from __future__ import annotations

GENERATOR_NAMES = ("resnet", "unet")
UNET_DOWNS = 4  # UnetGenerator's default num_downs


def check_generator_name(name: str) -> None:
    if name not in GENERATOR_NAMES:
        raise ValueError(f"Unknown generator {name!r}. Valid: {', '.join(sorted(GENERATOR_NAMES))}")


def generator_size_problem(name: str, size: int, **arch) -> str | None:
    """Why a square `size`-px image cannot go through generator `name` built with `arch`, or None.

    Pure arithmetic, no network is built, so configs can be checked before any training starts.
    `arch` takes the constructor's keyword arguments; those that do not affect sizes are ignored.
    tests/test_models.py checks it against real forwards over a grid of sizes.
    """
    check_generator_name(name)
    if size < 1:
        return f"the {name} generator needs a positive image size, got {size}"
    if name == "resnet":
        # Two stride-2 downsamplings: divisible by 4. At 4 px the second one leaves a 1x1 map,
        # which instance norm rejects (and the residual blocks' reflection padding of 1 needs
        # more than 1 px too), so 8 px is the smallest that works; the outer ReflectionPad2d(3)
        # (which needs more than 3 px) is then never the binding limit.
        if size % 4 or size < 8:
            return f"the resnet generator needs an image size divisible by 4 and at least 8, got {size}"
        return None
    num_downs = arch.get("num_downs", UNET_DOWNS)
    if num_downs < 1:
        return f"the unet generator needs num_downs >= 1, got {num_downs}"
    # The innermost map is size / 2**num_downs and has no norm, so 1x1 is fine; every normed map
    # is at least 2x2 then.
    factor = 2**num_downs
    if size % factor:
        return f"the unet generator with num_downs={num_downs} needs an image size divisible by {factor}, got {size}"
    return None


def _conv_out(size: int, stride: int) -> int:
    # A 4x4 conv with padding 1 (every conv here); <= 0 means torch refuses the input.
    return (size + 2 - 4) // stride + 1


def _patch_fits(size: int, n_layers: int) -> bool:
    """Whether a square size-px input gets through an n_layers PatchDiscriminator."""
    size = _conv_out(size, 2)  # first conv: no norm after it
    if size < 1:
        return False
    # n_layers - 1 stride-2 convs and one stride-1 conv, each followed by an instance norm,
    # which needs more than one spatial element.
    for stride in [2] * (n_layers - 1) + [1]:
        size = _conv_out(size, stride)
        if size < 2:
            return False
    return _conv_out(size, 1) >= 1  # the logit conv


def patch_size_problem(size: int, n_layers: int) -> str | None:
    """Why a square `size`-px image cannot go through an n_layers PatchDiscriminator, or None.

    Pure arithmetic (the sizes do not depend on ndf, spectral norm or labels).
    tests/test_models.py checks it against real forwards over a grid of sizes.
    """
    if n_layers < 1:
        return f"a PatchGAN discriminator needs n_layers >= 1, got {n_layers}"
    if _patch_fits(size, n_layers):
        return None
    # Every step is monotone in the size, so the sizes that fit are those from the smallest up.
    smallest = next(s for s in range(1, 2 ** (n_layers + 3)) if _patch_fits(s, n_layers))
    most = 0
    while _patch_fits(size, most + 1):
        most += 1
    hint = f"{size} px allows at most {most} layers" if most else f"no PatchGAN depth fits {size} px"
    return f"a {n_layers}-layer PatchGAN discriminator needs images of at least {smallest} px, got {size} ({hint})"
