"""params.yaml parsed once into typed, frozen models.

Each field's default is the value params.yaml sets (tests/test_config.py holds the two together): a
params file that leaves a key out, an older one or one written by hand, runs as the documented
default would, not with some other value.

Unknown keys and bad values are rejected with a message naming the dotted key, e.g.
`params.yaml: gan.cyclegan.steps: Input should be greater than 0 (got -5)`.
"""
from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, ValidationInfo, field_validator, model_validator

from augment.arms import ARMS, batch_rows, gan_seed_for, part_fractions
from augment.classic_spec import DEFAULT_TRANSFORMS
from models.sizes import generator_size_problem, patch_size_problem

# Only torch-free modules above: every stage loads params, so what this file imports is code every
# stage depends on (dvc.yaml). The training settings are built where they are used, with `as_config`.

PARAMS_FILE = "params.yaml"
MAX_INT = 2**31 - 1  # the largest count, size or seed a params key takes (seeds: numpy's and torch's take it)
MAX_WIDTH = 1024  # the widest network a width key takes (the reference CycleGAN's is 64): 65536 passed, then asked for 512 GB
DIGITS_DOMAINS = ("mnist", "optdigits")
DIGITS_CLASSES = tuple(str(d) for d in range(10))


# Keys that moved, with where to: a user's old params file gets told instead of only refused.
MOVED = {"gan.seed": "GAN seeds are the list gan.seeds (one GAN of each kind per seed)"}


class ParamsError(ValueError):
    """params.yaml is missing, malformed, or has an unknown key or a bad value."""


class _Strict(BaseModel):
    # inf is refused where a field does not ask for it: `gan.cyclegan.lr: inf` passed `gt=0` and
    # turned the weights into NaN at the first step.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        # true and false are 1 and 0 to pydantic: `classifier.steps: true` trained one step, and
        # `mix.synthetic_fraction: true` drew every row from the added part, without a word.
        if isinstance(v, bool) and _is_number(cls.model_fields[info.field_name].annotation):
            raise ValueError("must be a number, not true/false")
        return v

    @field_validator("*")
    @classmethod
    def _not_absurd(cls, v: Any) -> Any:
        # No count, size or seed here needs more: `gan.seeds: [10**20]` passed and overflowed in torch.manual_seed.
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
            raise ValueError(f"must be at most {MAX_INT}")
        return v


def _is_number(annotation: Any) -> bool:
    """An int or float field, or a Literal of numbers (data.channels)."""
    if annotation in (int, float):
        return True
    return get_origin(annotation) is Literal and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in get_args(annotation))


class DataParams(_Strict):
    dataset: Literal["digits", "folders"] = "digits"
    root: str = "data/raw"
    source: str = "mnist"
    target: str = "optdigits"
    image_size: int = Field(16, ge=8, le=1024)
    channels: Literal[1, 3] = 1
    target_labels_per_class: int = Field(10, ge=0)
    split_seed: int = Field(0, ge=0)
    test_fraction_source: float = Field(0.2, gt=0, lt=1)
    test_fraction_target: float = Field(0.3, gt=0, lt=1)
    max_image_pixels: int = Field(250_000_000, gt=0)  # augment.images.DEFAULT_MAX_PIXELS (that module imports numpy and PIL)
    resize: Literal["stretch", "crop", "pad"] = "stretch"
    colour_profiles: Literal["as_stored", "srgb"] = "as_stored"  # srgb: files that embed a colour profile are converted to sRGB
    classes: list[str] = []  # the source train classes the run keeps ([] = all); the other class folders are not read

    @field_validator("classes", mode="before")
    @classmethod
    def _class_names(cls, v: Any) -> Any:
        # YAML reads `[3, 8]` (the digits' class names) as numbers; a class folder's name is text, and a
        # label is in Unicode's composed form (augment.contract.class_label), however the name was typed.
        if isinstance(v, list):
            v = [str(c) if isinstance(c, int) and not isinstance(c, bool) else c for c in v]
            return [unicodedata.normalize("NFC", c) if isinstance(c, str) else c for c in v]
        return v

    @field_validator("classes")
    @classmethod
    def _kept_classes(cls, v: list[str]) -> list[str]:
        if len(v) == 1:
            raise ValueError(f"keeps one class ({v[0]!r}); a classifier needs at least 2 to tell apart ([] keeps all)")
        repeated = sorted({c for c in v if v.count(c) > 1})
        if repeated:
            raise ValueError(f"names {repeated} more than once")
        bad = [c for c in v if not c.strip() or "/" in c or "\\" in c or "\0" in c]
        if bad:
            raise ValueError(f"{bad}: a class is a folder name (not empty, no '/', '\\' or NUL byte)")
        return v

    @field_validator("image_size")
    @classmethod
    def _divisible_by_4(cls, v: int) -> int:
        if v % 4:
            raise ValueError("must be divisible by 4 (the generators downsample twice)")
        return v

    @field_validator("source", "target")
    @classmethod
    def _folder_name(cls, v: str) -> str:
        # Joined to data.root to read and to data/prepared/images/ to write: '/abs', '..' or 'a/b' would
        # read from and write into folders outside both.
        if v in ("", ".", "..") or "/" in v or "\\" in v or "\0" in v:
            raise ValueError("must be a plain folder name inside data.root (no '/', '\\' or NUL byte, not empty, '.' or '..')")
        return v

    @field_validator("root")
    @classmethod
    def _path(cls, v: str) -> str:
        if "\0" in v:
            raise ValueError("has a NUL byte (\\0), which no path can hold")
        if not v.strip():
            raise ValueError("is empty: give the folder that holds <data.source>/ and <data.target>/ (a path relative to the "
                             "repository, or an absolute one)")
        if v.startswith("~"):  # read as written by the stages and by DVC: no shell expands it
            raise ValueError("starts with '~', which nothing here expands to a home folder: give the full path (e.g. /home/you/photos)")
        return v

    @model_validator(mode="after")
    def _domains(self):
        if self.source == self.target:
            raise ValueError(f"data.source and data.target must differ, both are {self.source!r}")
        if self.dataset == "digits" and (self.source, self.target) != DIGITS_DOMAINS:
            raise ValueError(
                f"data.dataset 'digits' has domains source 'mnist' and target 'optdigits', got "
                f"data.source={self.source!r}, data.target={self.target!r}; use data.dataset 'folders' for your own images"
            )
        unknown = [c for c in self.classes if c not in DIGITS_CLASSES]
        if self.dataset == "digits" and unknown:
            raise ValueError(f"data.classes has {unknown}, which data.dataset 'digits' lacks: its classes are {', '.join(DIGITS_CLASSES)}")
        return self


class CycleGANParams(_Strict):
    steps: int = Field(800, gt=0)
    batch_size: int = Field(16, gt=0, le=65536)
    generator: Literal["resnet", "unet"] = "unet"
    ngf: int = Field(32, gt=0, le=MAX_WIDTH)
    n_blocks: int = Field(3, ge=0, le=64)
    unet_downs: int = Field(4, ge=1, le=8)
    warp: Literal["none", "affine"] = "affine"
    ndf: int = Field(32, gt=0, le=MAX_WIDTH)
    d_layers: int = Field(2, ge=1, le=5)
    spectral_norm: bool = False
    lr: float = Field(2e-4, gt=0)
    lr_batch: int = Field(16, gt=0)
    lr_scaling: Literal["sqrt", "linear", "none"] = "sqrt"
    beta1: float = Field(0.5, ge=0, lt=1)
    decay_from: float = Field(0.5, ge=0, le=1)
    lambda_cycle: float = Field(10.0, ge=0)
    lambda_identity: float = Field(0.5, ge=0)
    lambda_semantic: float = Field(1.0, ge=0)
    semantic_threshold: float = Field(1.0, gt=0)
    semantic_lr: float = Field(1e-3, gt=0)
    semantic_width: int = Field(16, gt=0, le=MAX_WIDTH)
    semantic_batch_size: int = Field(64, gt=1, le=65536)
    semantic_warmup: int = Field(300, ge=0)
    semantic_views: bool = True
    semantic_judge_views: bool = True
    semantic_self_training: bool = True
    pseudo_label_threshold: float = Field(0.9, gt=0, le=1)
    pseudo_labels: Literal["confident", "balanced"] = "balanced"
    class_discriminator: bool = True
    relabel_every: int = Field(50, gt=0)
    relabel_pool: int = Field(4096, ge=16)
    balance_strength: float = Field(3.0, gt=0, allow_inf_nan=True)  # inf: the totals exactly
    pool_size: int = Field(50, ge=0)
    loss: Literal["lsgan", "vanilla", "hinge"] = "lsgan"
    log_every: int = Field(50, gt=0)
    checkpoint_every: int = Field(200, ge=0)
    sample_count: int = Field(16, gt=0, le=1024)

    conditional: ClassVar[bool] = False  # the cgan's generator is told each image's class

    def size_problems(self, image_size: int) -> list[tuple[str, str]]:
        """(key, why) for each network of these settings that cannot run on `image_size` px images."""
        arch = {"n_blocks": self.n_blocks} if self.generator == "resnet" else {"num_downs": self.unet_downs}
        found = [("generator" if self.generator == "resnet" else "unet_downs", generator_size_problem(self.generator, image_size, **arch)),
                 ("d_layers", patch_size_problem(image_size, self.d_layers))]
        return [(key, why) for key, why in found if why]


class CGANParams(CycleGANParams):
    """The class-conditional translator: the CycleGAN's settings, with its own defaults where params.yaml
    gives it other values."""

    steps: int = Field(400, gt=0)
    semantic_warmup: int = Field(0, ge=0)
    semantic_self_training: bool = False
    pseudo_labels: Literal["confident", "balanced"] = "confident"  # the few visible target labels give it its class signal
    conditional: ClassVar[bool] = True

    @field_validator("class_discriminator")
    @classmethod
    def _always_judges_classes(cls, v: bool) -> bool:
        # false was taken and ignored: a conditional generator makes each image for a label, so its
        # discriminators judge each image as a member of that class whatever this says
        if not v:
            raise ValueError("the cgan's discriminators always judge each image as a member of its class (its generator makes "
                             "every image for a label); false has no effect here: leave the key out, or use the cyclegan")
        return v


def _distinct_non_negative(v: list[int]) -> list[int]:
    if len(set(v)) != len(v):
        raise ValueError("seeds must not repeat")
    if any(s < 0 for s in v):
        raise ValueError("seeds must be >= 0 (numpy's generators take no negative seed)")
    if any(s > MAX_INT for s in v):
        raise ValueError(f"seeds must be at most {MAX_INT}")
    return v


# Seeds name DVC's stages and output folders (dvc.yaml's foreach), from the text DVC reads: 1.0 or
# true would run as seed 1 and be named 1.0 or True, so only whole numbers written as such pass.
Seeds = list[StrictInt]


class GanParams(_Strict):
    # The kinds trained (dvc.yaml's train_gan and synthesize matrix), one GAN of each per seed;
    # classifier seed i of a GAN arm learns from GAN seeds[i % len(seeds)].
    kinds: list[Literal["cyclegan", "cgan"]] = Field(default_factory=lambda: ["cyclegan", "cgan"])
    seeds: Seeds = Field(default_factory=lambda: [0, 1], min_length=1)
    cyclegan: CycleGANParams = CycleGANParams()
    cgan: CGANParams = CGANParams()

    _seeds = field_validator("seeds")(classmethod(lambda cls, v: _distinct_non_negative(v)))

    @field_validator("kinds")
    @classmethod
    def _distinct_kinds(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("kinds must not repeat")
        return v


class SynthesizeParams(_Strict):
    filter: Literal["none", "confirmed"] = "none"
    judge_steps: int = Field(400, gt=0)
    judge_width: int = Field(32, gt=0, le=MAX_WIDTH)


class MixParams(_Strict):
    synthetic_fraction: float = Field(0.5, ge=0, le=1)
    target_fraction: float = Field(0.5, ge=0, le=1)


class ClassicParams(_Strict):
    # Each: {name: <albumentations transform>, p: <probability>, <its 2.x arguments>}; built strictly.
    transforms: list[dict[str, Any]] = Field(default_factory=lambda: [dict(t) for t in DEFAULT_TRANSFORMS], min_length=1)


class ClassifierParams(_Strict):
    arms: list[str] = Field(default_factory=lambda: [name for name, arm in ARMS.items() if arm.by_default], min_length=1)
    seeds: Seeds = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    model: Literal["small_cnn"] = "small_cnn"
    width: int = Field(32, gt=0, le=MAX_WIDTH)
    steps: int = Field(300, gt=0)
    batch_size: int = Field(64, gt=1, le=65536)
    lr: float = Field(1e-3, gt=0)
    lr_scaling: Literal["sqrt", "linear", "none"] = "sqrt"  # with N processes (runtime.classifier_launcher)
    weight_decay: float = Field(5e-4, ge=0)

    @field_validator("arms")
    @classmethod
    def _known_arms(cls, v: list[str]) -> list[str]:
        unknown = [a for a in v if a not in ARMS]
        if unknown:
            import difflib

            close = {a: difflib.get_close_matches(a, list(ARMS), n=1) for a in unknown}
            meant = ", ".join(c[0] + (f" for {a!r}" if len(unknown) > 1 else "") for a, c in close.items() if c)
            raise ValueError(f"unknown arm(s) {unknown}" + (f" (did you mean {meant}?)" if meant else "") + f". Valid: {', '.join(ARMS)}")
        if len(set(v)) != len(v):
            raise ValueError("arms must not repeat")
        for arm in v:
            if ARMS[arm].test_time and "source_only" not in v:  # it trains nothing: its readings are source_only's
                raise ValueError(f"{arm} needs source_only in arms too: it trains nothing, and its predictions are the "
                                 "source_only classifiers', adapted to the target at test time")
        return v

    _seeds = field_validator("seeds")(classmethod(lambda cls, v: _distinct_non_negative(v)))


class EvaluateParams(_Strict):
    bootstrap_samples: int = Field(2000, ge=100, le=100_000)  # each resample is an index array of the target test set
    bootstrap_seed: int = Field(0, ge=0)
    validation_fraction: float = Field(0.2, ge=0, lt=1)
    validation_seed: int = Field(0, ge=0)
    inception_weights: str = ""  # a file of Inception v3 weights: FID, KID, precision and recall on its features
    inception_images: int = Field(2000, ge=10, le=1_000_000)  # at most this many images of each set read by Inception (a fixed draw)

    @field_validator("inception_weights")
    @classmethod
    def _weights_path(cls, v: str) -> str:
        if "\0" in v:
            raise ValueError("has a NUL byte (\\0), which no path can hold")
        if v.startswith("~"):  # read as written by the evaluate stage: no shell expands it
            raise ValueError("starts with '~', which nothing here expands to a home folder: give the full path")
        return v


class RuntimeParams(_Strict):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(0, ge=0, le=1024)
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    compile: Literal["auto"] | bool = "auto"
    launcher: str = Field("python", min_length=1)  # starts train_gan
    classifier_launcher: str = Field("python", min_length=1)  # starts train_classifier

    @field_validator("compile", mode="before")
    @classmethod
    def _auto_or_bool(cls, v: Any) -> Any:
        # one line naming the key, not one per member of the union (runtime.compile.literal['auto'], runtime.compile.bool)
        if v != "auto" and not isinstance(v, bool):
            raise ValueError("must be auto, true or false")
        return v

    @field_validator("launcher", "classifier_launcher")
    @classmethod
    def _python_or_torchrun(cls, v: str, info: ValidationInfo) -> str:
        words = v.split()
        if not words or words[0] not in ("python", "torchrun"):
            raise ValueError("must start with 'python' or 'torchrun' (e.g. 'torchrun --standalone --nproc_per_node=4')")
        # dvc.yaml runs `<launcher> -m pipelines.stages.<stage> ...` through the shell
        shell = sorted({c for c in v if c in ";|&<>`\n"})
        if shell:
            raise ValueError(f"has {''.join(shell)!r}: the launcher is a program and its options, and the shell would split the stage's "
                             "command there (it would not run, or not alone)")
        stage = "train_gan" if info.field_name == "launcher" else "train_classifier"
        problem = _python_option_problem(words[1:], stage) if words[0] == "python" else _torchrun_option_problem(words[1:], stage)
        if problem:
            raise ValueError(problem)
        return v


# Options of python that leave `-m pipelines.stages.<stage> ...` to run as it does: single letters,
# alone or together (-u, -OO, -uB), and -X/-W with their value. Others end the run before the stage
# (-V, -h), run something else (-c, -m, a script), or hide the project's packages (-S, -I, -P).
_PYTHON_FLAGS = set("uBOEsbqRdv")


def _takes_over(word: str, stage: str) -> str:
    return f"{word!r}: the launcher takes options only; {stage}'s `-m pipelines.stages.{stage}` follows it, and a program named here would run instead"


def _python_option_problem(words: list[str], stage: str) -> str | None:
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("-X", "-W"):
            if i + 1 == len(words) or words[i + 1].startswith("-"):
                return f"{word!r} needs its value next to it (e.g. -X importtime, -W ignore): it would take the stage's `-m` instead"
            i += 2
            continue
        attached = word.startswith(("-X", "-W")) and len(word) > 2  # -Xdev, -Wignore
        flags = len(word) > 1 and word[0] == "-" and word[1] != "-" and set(word[1:]) <= _PYTHON_FLAGS  # -u, -OO, -uB
        if attached or flags:
            i += 1
            continue
        if word in ("-c", "-m", "--module") or not word.startswith("-"):
            return _takes_over(word, stage)
        return (f"{word!r}: not an option the stage runs under (python's -u, -B, -O, -E, -s, -X <option> and -W <filter> are; "
                "-V and -h end before the stage runs, -S, -I and -P leave the project's packages out)")
    return None


def _torchrun_option_problem(words: list[str], stage: str) -> str | None:
    taken = [w for w in words if w in ("-m", "--module", "--no-python", "--no_python")]
    if taken:
        return _takes_over(taken[0], stage)
    for i, word in enumerate(words):
        name, eq, value = word.partition("=")
        if name in ("--nproc_per_node", "--nproc-per-node"):
            value = value if eq else (words[i + 1] if i + 1 < len(words) else "")
            if value.isdigit() and int(value) < 1 or not value:
                return f"{name} {value or '(no value)'}: one training process at least (a number, or auto, cpu or gpu)"
    return None


class Params(_Strict):
    data: DataParams = DataParams()
    gan: GanParams = GanParams()
    synthesize: SynthesizeParams = SynthesizeParams()
    mix: MixParams = MixParams()
    classic: ClassicParams = ClassicParams()
    classifier: ClassifierParams = ClassifierParams()
    evaluate: EvaluateParams = EvaluateParams()
    runtime: RuntimeParams = RuntimeParams()

    @model_validator(mode="after")
    def _networks_fit_the_images(self):
        # Checked here, before any stage runs, instead of crashing inside a network after prepare.
        size = self.data.image_size
        found = [(name, key, why) for name in self.gan.kinds for key, why in getattr(self.gan, name).size_problems(size)]  # a kind not trained need not fit
        if found:
            said = "; ".join(f"gan.{name}.{key}: {why}" for name, key, why in found)
            raise ValueError(f"{said} (data.image_size is {size})"
                             f"{self._unet_fix(size, [n for n, k, _ in found if k == 'unet_downs'], small=any(k == 'd_layers' for _, k, _ in found))}")
        return self

    def _unet_fix(self, size: int, kinds: list[str], *, small: bool = False) -> str:
        """The ways out of U-Nets too deep for `size`: the nearest sizes they take (and every trained kind's
        discriminator), or the depth `size` takes, unless `size` is also too small for a discriminator
        (`small`), which no depth mends."""
        if not kinds:
            return ""
        factor = max(2 ** getattr(self.gan, k).unet_downs for k in kinds)
        fits = [s for s in range(factor, max(size, factor) * 4 + factor, factor)
                if not any(getattr(self.gan, k).size_problems(s) for k in self.gan.kinds)]
        sizes = sorted({max((s for s in fits if s < size), default=None), min((s for s in fits if s > size), default=None)} - {None})
        depth = next((d for d in range(max(getattr(self.gan, k).unet_downs for k in kinds), 0, -1) if size % 2**d == 0), None)
        fixes = [f"data.image_size {' or '.join(map(str, sizes))}"] if sizes else []
        if depth and not small:
            fixes.append(" ".join(f"-S gan.{k}.unet_downs={depth}" for k in kinds))
        return ": use " + ", or ".join(fixes) if fixes else ""

    @model_validator(mode="after")
    def _classic_transforms_build(self, info: ValidationInfo):
        # Only when an arm uses them: building imports albumentations, and with it torch (about 3 s
        # in a process that does not load torch anyway). `load_params(..., build_transforms=False)`
        # skips it for stages that neither apply them nor run first; "always" (check-params) builds
        # them with no classic arm too, so a bad entry is named before an arm that applies it is added.
        build = (info.context or {}).get("build_transforms", True)
        if build == "always" or (build and any(ARMS[a].classic for a in self.classifier.arms)):
            from augment.classic_spec import check_transforms

            check_transforms(self.classic.transforms, self.data.image_size)  # raises naming the entry and argument
        return self

    @model_validator(mode="after")
    def _every_gan_seed_has_classifiers(self):
        if any(ARMS[a].gan for a in self.classifier.arms):
            used = {gan_seed_for(s, self.gan.seeds) for s in self.classifier.seeds}
            idle = [g for g in self.gan.seeds if g not in used]
            if idle:
                raise ValueError(
                    f"gan.seeds {idle} would train GANs that no classifier uses: a GAN arm's classifier seed s learns from "
                    f"gan.seeds[s % {len(self.gan.seeds)}], and classifier.seeds is {self.classifier.seeds} "
                    "(use at least as many consecutive classifier seeds as GAN seeds)")
        return self

    @model_validator(mode="after")
    def _arms_have_their_gan(self):
        for arm in self.classifier.arms:
            gan = ARMS[arm].gan
            if gan is not None and not hasattr(self.gan, gan):
                raise ValueError(f"classifier.arms has {arm!r}, which needs gan.{gan}, but gan.{gan} is not configured")
            if gan is not None and gan not in self.gan.kinds:
                raise ValueError(f"classifier.arms has {arm!r}, which reads the {gan} GAN, but gan.kinds is {list(self.gan.kinds)}: "
                                 f"add {gan} to gan.kinds, or leave {arm} out of classifier.arms")
        return self

    @model_validator(mode="after")
    def _added_parts_draw_rows(self):
        # A fraction so small that it rounds to no row of a batch trained the arm on what its base arm
        # learns from (source alone, or source and its GAN share), and reported a benefit of +0.000
        # "by construction" with no word: refused here, naming the key.
        batch = self.classifier.batch_size
        for name in self.classifier.arms:
            arm = ARMS[name]
            fractions = part_fractions(arm, self.mix.synthetic_fraction, self.mix.target_fraction)
            rows = batch_rows(fractions, batch)
            for part, frac in fractions.items():
                if part in ("source", "target") or frac <= 0 or rows[part] > 0:
                    continue
                key = "mix.target_fraction" if part == "target_few" else "mix.synthetic_fraction"
                value = getattr(self.mix, key.split(".")[1])
                least = value * 0.5 / (frac * batch)  # gives the part half a row, which rounds to none: a little more
                step = 10.0 ** (math.floor(math.log10(least)) - 2)
                least = (math.floor(least / step) + 1) * step
                raise ValueError(
                    f"{key}: {value} gives the {name} arm's {part} part {frac:.4g} of each batch of classifier.batch_size {batch}: "
                    f"no row, so {name} would learn from what it would without it. Use 0 for none, or at least {least:.3g}, "
                    "or a larger classifier.batch_size")
        return self

    def unused_gan_kinds(self) -> list[str]:
        """The gan.kinds that no arm of classifier.arms reads: trained for nothing."""
        read = {ARMS[a].gan for a in self.classifier.arms}
        return [g for g in self.gan.kinds if g not in read]

    def notes(self) -> list[str]:
        """What these params run for nothing, in words: the flow warns of each before any stage, and
        check-params prints them. Not refusals: the run still measures the rest."""
        out = []
        idle = self.unused_gan_kinds()
        if idle:
            keep = ",".join(g for g in self.gan.kinds if g not in idle)
            out.append(f"gan.kinds trains {', '.join(idle)}, which no arm of classifier.arms reads: -S 'gan.kinds=[{keep}]' skips that training")
        few = [a for a in self.classifier.arms if ARMS[a].target_labels == "few"]
        if few and self.data.target_labels_per_class == 0:  # their stages ran, and evaluate called them unavailable
            keep = ",".join(a for a in self.classifier.arms if a not in few)
            out.append(f"classifier.arms has {', '.join(few)}, which learn from the few labeled target images, but "
                       f"data.target_labels_per_class is 0: they will be reported unavailable; -S 'classifier.arms=[{keep}]' "
                       "leaves them out")
        if self.data.dataset == "digits" and self.data.root != DataParams().root:  # `-S data.root=...` alone ran on the digits
            out.append(f"data.root is {self.data.root!r}, but data.dataset is digits (the packaged MNIST and optdigits), which reads no "
                       "folder: -S data.dataset=folders with data.source and data.target reads yours")
        return out


def as_config(section: BaseModel, cls, **extra):
    """The dataclass `cls` (e.g. augment.cyclegan.CycleGANConfig) from the fields it shares with a params
    section, plus `extra` (e.g. seed=...)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in section.model_dump().items() if k in names}, **extra)


def _format(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if not key:  # a check across sections: its message names the keys
            lines.append(f"{source}: {e['msg'].removeprefix('Value error, ')}")
        elif e["type"] == "extra_forbidden":
            hint = MOVED.get(key.split(".")[0] + "." + key.split(".")[-1]) if "." in key else None
            close = None if hint else close_key(key)
            lines.append(f"{source}: unknown key {key!r}" + (f"; {hint}" if hint else f"; did you mean {close}?" if close else ""))
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = f" (got {e['input']!r})" if e["type"] != "missing" and not isinstance(e["input"], dict) else ""
            if e["type"] == "string_type" and isinstance(e["input"], (bool, int, float)):  # YAML read a name as a number
                got += f"; a name that reads as a number or true/false needs quotes: {key.rpartition('.')[2]}: \"{e['input']}\""
            if e["type"] == "list_type" and isinstance(e["input"], (str, int, float)):  # `-S classifier.arms=source_only`
                got += "; a list goes in square brackets: " + (f"-S '{key}=[{e['input']}]'" if "-S " in source else
                                                                 f"{key.rpartition('.')[2]}: [{e['input']}]")
            lines.append(f"{source}: {key}: {msg}{got}")
    return "\n".join(lines)


def _known_keys(model: type[BaseModel] = None, prefix: str = "") -> list[str]:
    """Every dotted key params.yaml may hold, sections and leaves."""
    keys = []
    for name, field in (model or Params).model_fields.items():
        keys.append(prefix + name)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            keys += _known_keys(field.annotation, f"{prefix}{name}.")
    return keys


def close_key(key: str) -> str | None:
    """The known key an unknown one was most likely meant to be: the same name in another section
    (classifier.validation_fraction -> evaluate.validation_fraction), else a close spelling. For
    params.yaml's unknown keys and for `-S` keys the file lacks (pipelines.presets)."""
    import difflib

    known = [k for k in _known_keys() if k != key]
    leaf = key.rpartition(".")[2]
    moved = [k for k in known if k.rpartition(".")[2] == leaf and k.count(".") == key.count(".")]
    if moved:
        return " or ".join(moved)
    close = difflib.get_close_matches(key, known, n=1)
    return close[0] if close else None


def parse_params(raw: object, source: str = PARAMS_FILE, *, build_transforms: bool | str = True) -> Params:
    """Typed, checked params. `build_transforms=False` checks `classic.transforms` only for shape,
    without building them with albumentations (see `load_params`); True builds them where an arm
    applies them, "always" also where none does."""
    if raw is None:
        raise ParamsError(f"{source}: empty; it holds the sections (data, gan, mix, classifier, ...), as the project's params.yaml does")
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections (data, gan, mix, classifier, ...), got {type(raw).__name__}")
    try:
        return Params.model_validate(raw, context={"build_transforms": build_transforms})
    except ValidationError as err:
        raise ParamsError(_format(err, source)) from None


def set_keys(raw: dict, section: str, items: list[str]) -> dict:
    """`KEY=VALUE` items set under the dotted `section` of params.yaml's content as a dict, each
    value read as YAML (as `dvc exp run -S` reads it): `set_keys(raw, "gan.cyclegan", ["steps=400"])`.
    Missing sections are created; returns `raw`. The result is checked by `parse_params`."""
    node = raw
    for part in section.split("."):
        node = node.setdefault(part, {})
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ParamsError(f"{section}: expected KEY=VALUE, got {item!r}")
        node[key] = read_yaml_text(value)
    return raw


_BOOL, _INT, _FLOAT, _MERGE = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:merge"


class _UniqueKeys(yaml.SafeLoader):
    """PyYAML's safe loader, reading as DVC does: a key given twice in one mapping is an error (the
    safe loader keeps the last value, so checks would pass on what `dvc repro` then refuses), and
    booleans, integers and floats are YAML 1.2's, DVC's: `010` is ten, not octal eight, `yes`, `on` and
    `no` are text, and `1e3` is a thousand. Read the 1.1 way, `gan.seeds: [0, 010]` passed as [0, 8]
    while DVC named the stages and output folders 10, and `steps: 1e3` was refused as text where
    `-S gan.cyclegan.steps=1e3` ran 1000 steps."""

    yaml_implicit_resolvers = {first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
                               for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}  # key -> the line it first stands on
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:  # `<<: *shared`: keys given beside it override the shared ones, as DVC reads them
                    continue
                key, line = self.construct_object(key_node, deep=deep), key_node.start_mark.line + 1
                try:
                    if key in seen:  # also two on one line: {channels: 1, channels: 3}
                        raise yaml.YAMLError(f"key {key!r} given twice in one mapping, at lines {seen[key]} and {line}")
                    seen[key] = line
                except TypeError:  # an unhashable key: the safe loader names it below
                    continue
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):
        text = self.construct_scalar(node)
        base = {"0o": 8, "0x": 16}.get(text[:2].lower(), 10)
        return int(text[2:] if base != 10 else text, base)


_UniqueKeys.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_UniqueKeys.add_implicit_resolver(_INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
_UniqueKeys.add_implicit_resolver(_FLOAT, re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|"
                                                   r"\.(?:nan|NaN|NAN))$"), list("-+0123456789."))
_UniqueKeys.add_constructor(_INT, _UniqueKeys.construct_yaml_int)


def read_yaml_text(text: str) -> object:
    """YAML text read as `read_yaml` reads a file (a `-S` value too)."""
    return yaml.load(text, Loader=_UniqueKeys)  # noqa: S506 - a SafeLoader


def read_yaml(path: str | Path, missing: str) -> object:
    """A YAML file's content; a missing or malformed file (a key given twice too) is a ParamsError naming it."""
    path = Path(path)
    if path.is_dir():
        raise ParamsError(f"{path}: a folder, not a YAML file")
    if not path.is_file():
        raise ParamsError(f"{path}: {missing}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParamsError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return read_yaml_text(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ParamsError(f"{path}: not UTF-8 text (line {line}, byte {data[exc.start]:#04x}); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {yaml_problem(exc)}") from None


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error in one line: where, what, and what it was reading ("line 2, column 2: expected ','
    or ']', but got ':' (while parsing a flow sequence from line 1, column 4)"), not its seven lines of carets."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    if mark is None or not problem:
        return " ".join(str(exc).split())
    text = f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context:
        text += f" ({context}" + (f" from line {start.line + 1}, column {start.column + 1}" if start else "") + ")"
    return text


def load_params(path: str | Path = PARAMS_FILE, *, build_transforms: bool | str = True) -> Params:
    """params.yaml, checked. Every check runs by default; `build_transforms=False` is for the stages
    that apply no transform (few_labels, arm_inputs, the classifier stages of the arms without
    `classic`): they run after `prepare` and the flow's own check, which build every transform, and
    each classic arm's stage builds them again before it trains."""
    raw = read_yaml(path, "not found; run from the project's root folder, or give its path")
    params = parse_params(raw, str(path), build_transforms=build_transforms)
    has_what_dvc_reads(raw, Path(path))
    return params


def has_what_dvc_reads(raw: dict, path: Path, source: str | None = None) -> None:
    """Every key the dvc.yaml beside `path` reads from it must be in `raw`, that file's content (with
    any -S values applied; `source` names it so in the message): the keys it interpolates
    (`${runtime.launcher}`) and those its stages list under `params:` (`synthesize`, `gan.${item.gan}`).
    DVC reads them from there, so the default they would otherwise take here is not DVC's: `dvc repro`
    stopped at "Could not find 'runtime.launcher'" after the check passed, and without `synthesize`
    at "Parameters 'synthesize' are missing", once the GANs had trained."""
    dvc_yaml = path.parent / "dvc.yaml"
    if not dvc_yaml.is_file():
        return
    text = dvc_yaml.read_text(errors="replace")
    for key, reader in _keys_dvc_reads(text, raw):
        node = raw
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                default = _default_of(key)
                said = f"the default: {default!r}" if not isinstance(default, dict) else "a section; the project's params.yaml has its defaults"
                raise ParamsError(f"{source or path}: {key}: missing; {dvc_yaml.name} reads it from this file ({reader}; {said}); add it back")
            node = node[part]


def value_at(raw: object, key: str) -> Any:
    """The value at a dotted key (`gan.kinds`) of params.yaml's content, None where there is none."""
    for part in key.split("."):
        raw = raw.get(part) if isinstance(raw, dict) else None
    return raw


def matrix_axes(spec: object, raw: dict) -> dict[str, list]:
    """A dvc.yaml stage's matrix as DVC expands it with params.yaml's content `raw`: each item name
    with the values it takes (a `${gan.kinds}` read from `raw`; [] where that is not a list). {} for
    a stage without a matrix."""
    matrix = spec.get("matrix") if isinstance(spec, dict) else None
    if not isinstance(matrix, dict):
        return {}
    axes = {name: value_at(raw, values.strip("${} ")) if isinstance(values, str) else values for name, values in matrix.items()}
    return {name: values if isinstance(values, list) else [] for name, values in axes.items()}


def _keys_dvc_reads(text: str, raw: dict) -> list[tuple[str, str]]:
    """(key, what reads it) for each params.yaml key a dvc.yaml's text reads, in order: interpolated
    ones, then each stage's `params:` (a matrix stage's `${item.x}` expanded over the values its
    matrix takes from `raw`)."""
    found = {key: "interpolated as ${" + key + "}" for key in sorted(set(re.findall(r"\$\{\s*([A-Za-z_][\w.]*)\s*\}", text)))
             if not key.startswith("item.")}
    try:
        stages = (yaml.safe_load(text) or {}).get("stages") or {}
    except yaml.YAMLError:  # DVC says what is wrong with the file itself
        return list(found.items())
    for stage, spec in stages.items() if isinstance(stages, dict) else ():
        if not isinstance(spec, dict):
            continue
        listed = [k for entry in spec.get("params") or [] for k in ([entry] if isinstance(entry, str) else entry.get("params.yaml", []) if isinstance(entry, dict) else [])]
        axes = matrix_axes(spec, raw)
        for key in listed:
            keys = [key]
            for name in re.findall(r"\$\{\s*item\.(\w+)\s*\}", key):
                keys = [k.replace(f"${{item.{name}}}", str(v)) for k in keys for v in axes.get(name, [])]
            for k in keys:
                found.setdefault(k, f"stage {stage}")
    return list(found.items())


def _default_of(key: str) -> Any:
    return value_at(Params.model_construct().model_dump(), key)  # the defaults, without building the classic transforms
