"""The classic arm: albumentations weather and lighting transforms from params, checked strictly,
each visibly changing images at the pipeline's size and channel count."""
import numpy as np
import pytest
import torch

from augment.arms import ARMS, training_parts, transformed_parts
from augment.classic import apply_pipeline, build_pipeline, classic_transform
from augment.mixing import LabeledImages, MixedBatches
from pipelines.config import ParamsError, load_params, parse_params
from pipelines.config import read_yaml
from tests.conftest import REPO


def _images(channels: int, size: int, n: int = 6) -> torch.Tensor:
    """Mid-tone images with structure (a bright square on a darker ground), as a sign or digit has."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, channels, size, size, generator=g) * 0.4 - 0.4
    x[:, :, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] += 0.9
    return x.clamp(-1, 1)


def _configured():
    """(name, transforms, channels, size) for params.yaml and every preset."""
    p = load_params(REPO / "params.yaml")
    yield "params.yaml", p.classic.transforms, p.data.channels, p.data.image_size
    for preset in sorted((REPO / "presets").glob("*.yaml")):
        raw = read_yaml(preset, "preset not found")
        data = raw.get("data", {})
        transforms = raw.get("classic", {}).get("transforms", p.classic.transforms)
        yield preset.name, transforms, data.get("channels", p.data.channels), data.get("image_size", p.data.image_size)


@pytest.mark.parametrize("where, transforms, channels, size", list(_configured()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_configured_transform_changes_images_at_the_pipeline_size(where, transforms, channels, size):
    x = _images(channels, size)
    for spec in transforms:
        pipeline = build_pipeline([{**spec, "p": 1.0}], seed=0)  # forced on: the arguments must take effect
        out = apply_pipeline(pipeline, x)
        assert out.shape == x.shape and out.dtype == torch.float32
        assert out.min() >= -1 and out.max() <= 1
        change = (out - x).abs().mean().item()
        assert change > 0.01, f"{where}: {spec['name']} barely changes {channels}-channel {size} px images ({change:.4f})"


@pytest.mark.parametrize("where, transforms, channels, size", list(_configured()), ids=lambda v: v if isinstance(v, str) else "")
def test_no_configured_transform_blanks_a_dark_but_legible_image(where, transforms, channels, size):
    """The darkening entry took 0.2-0.5 of white off every pixel (albumentations' brightness_by_max):
    a quarter of a set of dark sign photos came out black, and the classic arm learned from blanks."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, channels, size, size, generator=g) * 0.2 - 0.8  # a dark ground, about 0.1 of white
    x[:, :, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] += 0.5  # a sign on it, plainly visible
    for spec in transforms:
        out = apply_pipeline(build_pipeline([{**spec, "p": 1.0}], seed=0), x)
        centre = out[:, :, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4].mean(dim=(1, 2, 3))
        ground = out[:, :, : size // 8].mean(dim=(1, 2, 3))
        assert ((centre - ground) > 0.05).all(), f"{where}: {spec['name']} leaves no sign on a dark image: {(centre - ground).tolist()}"


def test_wrong_argument_names_are_refused_by_name():
    with pytest.raises(ParamsError, match=r"classic.transforms\[1\]: RandomFog: .*fog_coef"):
        parse_params({"classifier": {"arms": ["classic"]},
                      "classic": {"transforms": [{"name": "GaussNoise"}, {"name": "RandomFog", "fog_coef": 0.5}]}})
    with pytest.raises(ParamsError, match=r"classic.transforms\[0\]: 'Snow' is not an albumentations image transform"):
        parse_params({"classifier": {"arms": ["cyclegan_classic"]}, "classic": {"transforms": [{"name": "Snow"}]}})
    with pytest.raises(ParamsError, match="needs a 'name'"):
        parse_params({"classifier": {"arms": ["classic"]}, "classic": {"transforms": [{"p": 0.5}]}})
    # With no arm that applies them a run does not build them; check-params does, so an entry is named before the arm is added
    unused = {"classifier": {"arms": ["source_only"]}, "classic": {"transforms": [{"name": "RandomGamma", "p": 2}]}}
    assert parse_params(unused).classic.transforms[0]["p"] == 2
    with pytest.raises(ParamsError, match=r"classic.transforms\[0\]: RandomGamma: p: .*\(got 2\)"):
        parse_params(unused, build_transforms="always")


def test_a_transform_that_does_not_return_the_images_pixels_is_refused():
    """Normalize and ToFloat passed the check and returned floats near 0 that the arm read as 0-255
    pixels: every transformed image came out black, and the classic arm was measured as a harm."""
    for name in ("Normalize", "ToFloat"):
        with pytest.raises(ParamsError, match=rf"classic.transforms\[0\]: {name} turns a 16x16 px image \(data.image_size\) into float32 "
                                              r"16x16x3: the classic arms take transforms that keep an image's size and its 0-255 pixels"):
            parse_params({"classifier": {"arms": ["classic"]}, "classic": {"transforms": [{"name": name, "p": 0.5}]}})


def test_a_transform_that_needs_too_much_memory_or_time_is_refused_by_entry(monkeypatch):
    """Arguments far beyond the image's size passed the check's draws only by taking the machine
    down: GaussianBlur(blur_limit=2147483647) asked for 9 GiB and check-params was OOM-killed with
    no word; MedianBlur(blur_limit=100001) ran for minutes. The draws run in a child held to a
    memory and time budget (lowered here to keep the test quick), and the parent is left as it was."""
    import resource

    import augment.classic_spec as spec

    limits = resource.getrlimit(resource.RLIMIT_AS)
    monkeypatch.setattr(spec, "PROBE_MEMORY", 2**28)
    monkeypatch.setattr(spec, "PROBE_SECONDS", 2.0)

    def with_entry(entry):
        return {"classifier": {"arms": ["classic"]}, "classic": {"transforms": [{"name": "RandomGamma"}, entry]}}

    for _ in range(3):  # a draw of its kernel size decides whose allocation fails first (numpy's, OpenCV's, C++'s bad_alloc): said alike
        with pytest.raises(ParamsError, match=r"classic.transforms\[1\]: MotionBlur fails on a 16x16 px image \(data.image_size\): "
                                              r"it asked for more memory than the check allows it \(0.25 GiB(, [\d.,]+ [MGT]iB at once)?\); "
                                              r"its arguments \(blur_limit=20001\) are likely far beyond that size"):
            parse_params(with_entry({"name": "MotionBlur", "p": 0.1, "blur_limit": 20001}))
    with pytest.raises(ParamsError, match=r"classic.transforms\[1\]: MedianBlur did not finish 4 images of 16x16 px \(data.image_size\) "
                                          r"in 2 s: .* \(blur_limit=100001\) are likely far beyond that size"):
        parse_params(with_entry({"name": "MedianBlur", "p": 0.1, "blur_limit": 100001}))
    assert resource.getrlimit(resource.RLIMIT_AS) == limits
    assert parse_params(with_entry({"name": "MedianBlur", "p": 0.1, "blur_limit": 5})).classic.transforms[1]["blur_limit"] == 5


def test_the_memory_a_refused_transform_asked_for_is_read_from_numpys_or_opencvs_words():
    """Which allocator fails first depends on a draw of the transform's random parameters: both are said alike."""
    from augment.classic_spec import memory_asked

    assert memory_asked("Unable to allocate 851. MiB for an array with shape (14937, 14937) and data type float32") == "851 MiB"
    assert memory_asked("Unable to allocate 1.49 GiB for an array with shape (20001, 20001)") == "1.49 GiB"
    assert memory_asked("OpenCV(5.1.0) /io/opencv/modules/core/src/alloc.cpp:73: error: (-4:Insufficient memory) "
                        "Failed to allocate 116640000 bytes in function 'OutOfMemoryError'") == "111 MiB"
    assert memory_asked("std::bad_alloc") is None


def test_a_transform_that_kills_the_check_is_named(monkeypatch):
    """A crash in native code (or the kernel's OOM killer) ends the child without a word: the
    entry it was applying is named with the signal, and the parent goes on to say so."""
    import os
    import signal

    import augment.classic_spec as spec

    real = spec._probe

    def crash_on_gamma(where, name, args, size):
        if name == "RandomGamma":
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer ends a process
        real(where, name, args, size)

    monkeypatch.setattr(spec, "_probe", crash_on_gamma)
    with pytest.raises(ParamsError, match=r"classic.transforms\[1\]: RandomGamma crashed the process applying it to a 16x16 px image "
                                          r"\(data.image_size; signal 9\)"):
        parse_params({"classifier": {"arms": ["classic"]}, "classic": {"transforms": [{"name": "GaussNoise"}, {"name": "RandomGamma"}]}})


def test_stages_that_apply_no_transform_skip_building_them_and_the_others_do_not(tmp_path):
    """few_labels, arm_inputs and the test_time arm load params without albumentations (and torch);
    prepare, which runs first, and every classic arm's stage still refuse a bad transform by name."""
    import subprocess
    import sys

    import yaml

    from tests.conftest import REPO

    bad = {"classifier": {"arms": ["source_only", "classic", "test_time"]}, "classic": {"transforms": [{"name": "RandomFog", "fog_coef": 0.5}]}}
    assert parse_params(bad, build_transforms=False).classic.transforms[0]["name"] == "RandomFog"
    with pytest.raises(ParamsError, match="fog_coef"):
        parse_params(bad)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(bad))
    probe = ("import sys; from pipelines.config import load_params; load_params(sys.argv[1], build_transforms=False); "
             "print('torch' in sys.modules, 'albumentations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "params.yaml")], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    for stage in (["prepare"], ["train_classifier", "--arm", "classic", "--seed", "0"]):
        proc = subprocess.run([sys.executable, "-m", f"pipelines.stages.{stage[0]}", *stage[1:], "--params", str(tmp_path / "params.yaml")],
                              cwd=tmp_path, env={**__import__("os").environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
        assert proc.returncode == 2 and "classic.transforms[0]: RandomFog" in proc.stderr and "Traceback" not in proc.stderr, stage


def test_classic_arms_transform_only_their_added_share():
    src = LabeledImages(_images(1, 16, n=20), torch.arange(20) % 2)
    syn = LabeledImages(_images(1, 16, n=20) * 0.5, torch.arange(20) % 2)
    spec = [{"name": "RandomBrightnessContrast", "p": 1.0, "brightness_limit": [-0.5, -0.4], "contrast_limit": [0, 0]}]
    for arm, added in (("classic", src), ("cyclegan_classic", syn)):
        parts = training_parts(ARMS[arm], source=src, target=None, synthetic=syn, synthetic_fraction=0.5)
        names = transformed_parts(ARMS[arm], parts)
        assert len(names) == 1 and parts[names[0]][0] is added and parts[names[0]][1] == 0.5
        batches = MixedBatches(parts=parts, batch_size=8, seed=0, transforms={n: classic_transform(spec, seed=0) for n in names})
        x, _ = batches.next()
        plain, darkened = x[:4], x[4:]  # "source" rows first, then the added share
        assert any(torch.allclose(row, s, atol=1e-6) for row in plain for s in src.images)
        assert not any(torch.allclose(row, a, atol=1e-3) for row in darkened for a in added.images)
    assert transformed_parts(ARMS["cyclegan"], {"source": None, "cyclegan": None}) == []


def test_classic_transform_is_seeded():
    x = _images(3, 16)
    spec = load_params(REPO / "params.yaml").classic.transforms
    a = classic_transform(spec, seed=3)(x, np.random.default_rng(0))
    b = classic_transform(spec, seed=3)(x, np.random.default_rng(1))
    assert torch.equal(a, b)


def test_the_reports_classic_row_shows_a_draw_that_changed_each_image():
    """comparison.png's classic row was one draw, each transform at its own p: 9 of 10 images untouched."""
    from augment.classic import changed_draw
    from augment.classic_spec import DEFAULT_TRANSFORMS

    from augment.images import as_float, quantize

    x = as_float(quantize(_images(3, 16, n=10)))  # as stored images are: an unchanged image comes back equal
    once = apply_pipeline(build_pipeline(list(DEFAULT_TRANSFORMS), seed=0), x)
    assert (once == x).flatten(1).all(1).sum() >= 3  # one draw leaves several as they are
    shown = changed_draw(list(DEFAULT_TRANSFORMS), x, seed=0)
    assert not (shown == x).flatten(1).all(1).any() and torch.equal(shown, changed_draw(list(DEFAULT_TRANSFORMS), x, seed=0))
