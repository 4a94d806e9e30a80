"""params.yaml: typed, strict, and its errors name the key."""
import json
import re
import shutil

import pytest
import yaml

from pipelines.config import ParamsError, as_config, load_params, parse_params, set_keys
from tests.conftest import REPO

CONTRACT_KEYS = [  # DESIGN.md, "params.yaml keys that are a contract"
    "data.dataset", "data.root", "data.source", "data.target", "data.image_size", "data.channels",
    "data.target_labels_per_class", "gan.cyclegan.steps", "gan.cgan.steps", "gan.seeds", "gan.cyclegan.lambda_semantic",
    "mix.synthetic_fraction", "mix.target_fraction", "classifier.arms", "classifier.seeds",
]


def _raw():
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_repo_params_parse_and_hold_the_contract_keys():
    # Read from the file itself: every field has a default, so the parsed model would hide a missing key.
    raw, parsed = _raw(), load_params(REPO / "params.yaml").model_dump()
    for key in CONTRACT_KEYS:
        in_file, in_model = raw, parsed
        for part in key.split("."):
            assert isinstance(in_file, dict) and part in in_file, f"params.yaml lacks the contract key {key}"
            in_file, in_model = in_file[part], in_model[part]
        assert in_model == in_file, f"{key}: parsed {in_model!r}, file says {in_file!r}"


def test_a_key_left_out_takes_the_value_params_yaml_gives_it():
    # One default per key: a params file without some key (an older one, one written by hand) runs
    # as the documented params.yaml would, not with another value the model happened to hold.
    from_file = load_params(REPO / "params.yaml", build_transforms=False).model_dump()
    assert parse_params({}, build_transforms=False).model_dump() == from_file
    raw = _raw()
    del raw["gan"]["cyclegan"]["semantic_warmup"], raw["gan"]["cgan"]["pseudo_labels"], raw["classifier"]["arms"]
    assert parse_params(raw, build_transforms=False).model_dump() == from_file


def test_every_params_key_has_a_comment():
    lines = (REPO / "params.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^\s*([a-z_0-9]+):", line)
        if not m:
            continue
        is_section = i + 1 < len(lines) and lines[i + 1].startswith(" " * (len(line) - len(line.lstrip()) + 2))
        if not is_section:
            assert "#" in line, f"params.yaml line {i + 1} has no comment: {line!r}"


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("gan.cyclegan.steps", -5, r"gan\.cyclegan\.steps: Input should be greater than 0 \(got -5\)"),
        ("data.image_size", 18, r"data\.image_size: must be divisible by 4"),
        ("data.channels", 2, r"data\.channels: "),
        ("mix.synthetic_fraction", 1.5, r"mix\.synthetic_fraction: Input should be less than or equal to 1"),
        ("classifier.arms", ["source_only", "bogus"], r"classifier\.arms: unknown arm\(s\) \['bogus'\]\. Valid: source_only"),
        ("classifier.arms", ["source_only", "cyclgan"], r"unknown arm\(s\) \['cyclgan'\] \(did you mean cyclegan\?\)\. Valid: source_only"),
        ("classifier.seeds", [0, 0], r"classifier\.seeds: seeds must not repeat"),
        # test_time trains nothing: without source_only, evaluate had no classifier to read with
        ("classifier.arms", ["test_time"], r"classifier\.arms: test_time needs source_only in arms too"),
        ("data.dataset", "imagenet", r"data\.dataset: Input should be 'digits' or 'folders'"),
        ("gan.cgan.lr_scaling", "cubic", r"gan\.cgan\.lr_scaling: Input should be 'sqrt', 'linear' or 'none'"),
        ("runtime.launcher", "mpirun -n 2", r"runtime\.launcher: must start with 'python' or 'torchrun'"),
        # train_gan's `-m pipelines.stages.train_gan` follows the launcher: `python -c pass` ran nothing
        ("runtime.launcher", "python -c pass", r"runtime\.launcher: '-c': the launcher takes options only"),
        ("runtime.launcher", "python train.py", r"runtime\.launcher: 'train.py': the launcher takes options only"),
        ("runtime.classifier_launcher", "python -m pipelines.stages.train_gan",
         r"runtime\.classifier_launcher: '-m': the launcher takes options only; train_classifier's `-m pipelines.stages.train_classifier`"),
        ("classifier.lr_scaling", "cubic", r"classifier\.lr_scaling: Input should be 'sqrt', 'linear' or 'none'"),
        # taken and ignored: the conditional GAN's discriminators judge classes whatever it says
        ("gan.cgan.class_discriminator", False, r"gan\.cgan\.class_discriminator: the cgan's discriminators always judge"),
        # inf passed `gt=0`, and a GAN trained with it went NaN at its first step
        ("gan.cyclegan.lr", float("inf"), r"gan\.cyclegan\.lr: Input should be a finite number \(got inf\)"),
        ("gan.cgan.lambda_cycle", float("inf"), r"gan\.cgan\.lambda_cycle: Input should be a finite number"),
        ("classifier.lr", float("nan"), r"classifier\.lr: Input should be a finite number"),
        ("gan.cyclegan.balance_strength", float("nan"), r"gan\.cyclegan\.balance_strength: Input should be greater than 0"),
        # true and false were read as 1 and 0: one classifier step, every row from the added part, no word said
        ("classifier.steps", True, r"classifier\.steps: must be a number, not true/false \(got True\)"),
        ("mix.synthetic_fraction", True, r"mix\.synthetic_fraction: must be a number, not true/false"),
        ("gan.cyclegan.n_blocks", False, r"gan\.cyclegan\.n_blocks: must be a number, not true/false"),
        ("data.channels", True, r"data\.channels: must be a number, not true/false"),
        ("data.image_size", True, r"data\.image_size: must be a number, not true/false"),
        # a width of 65536 passed, and the GAN stage then asked for 512 GB in a traceback naming no key
        ("gan.cyclegan.ngf", 65536, r"gan\.cyclegan\.ngf: Input should be less than or equal to 1024"),
        ("classifier.width", 4096, r"classifier\.width: Input should be less than or equal to 1024"),
        ("synthesize.judge_width", 4096, r"synthesize\.judge_width: Input should be less than or equal to 1024"),
        ("runtime.compile", "max-autotune", r"runtime\.compile: must be auto, true or false \(got 'max-autotune'\)$"),
        # "" read the repository's own folders as the data; "~" is expanded by no one
        ("data.root", "", r"data\.root: is empty: give the folder that holds"),
        ("data.root", "~/photos", r"data\.root: starts with '~', which nothing here expands"),
        # options that stop python before the stage's `-m` (it printed its version, and DVC then missed the outputs),
        # or make it read something else, and shell syntax that splits the stage's command
        ("runtime.classifier_launcher", "python -V", r"runtime\.classifier_launcher: '-V': not an option the stage runs under"),
        ("runtime.launcher", "python -S", r"runtime\.launcher: '-S': not an option the stage runs under"),
        ("runtime.launcher", "python -X", r"runtime\.launcher: '-X' needs its value next to it"),
        ("runtime.launcher", "python -u; echo", r"runtime\.launcher: has ';': the launcher is a program and its options"),
        ("runtime.launcher", "python {x}", r"runtime\.launcher: '\{x\}': the launcher takes options only"),
        ("runtime.classifier_launcher", "torchrun --standalone --nproc_per_node=0",
         r"runtime\.classifier_launcher: --nproc_per_node 0: one training process at least"),
    ],
)
def test_bad_values_are_named(path, value, message):
    raw = _raw()
    node = raw
    *parents, leaf = path.split(".")
    for p in parents:
        node = node[p]
    node[leaf] = value
    with pytest.raises(ParamsError, match=message):
        parse_params(raw)


def test_a_mix_fraction_that_rounds_to_no_row_of_a_batch_is_refused_by_key():
    """`mix.synthetic_fraction: 0.02` at a batch of 16 drew round(0.32) = 0 translated rows: the cyclegan
    arm trained exactly as source_only did and reported +0.000 [+0.000, +0.000] as the GAN's benefit."""
    from augment.arms import ARMS, batch_rows, part_fractions

    raw = _raw()
    raw["classifier"]["batch_size"] = 16
    for mix, says in [({"synthetic_fraction": 0.02}, r"mix\.synthetic_fraction: 0\.02 gives the classic arm's classic part 0\.02 of each "
                       r"batch of classifier\.batch_size 16: no row, so classic would learn from what it would without it\. Use 0 for "
                       r"none, or at least 0\.0313"),
                      ({"target_fraction": 0.01}, r"mix\.target_fraction: 0\.01 gives the target_few arm's target_few part"),
                      ({"synthetic_fraction": 0.04}, r"the cyclegan_few arm's cyclegan part 0\.02 .* at least 0\.0626")]:
        with pytest.raises(ParamsError, match=says):
            parse_params({**raw, "mix": {**raw["mix"], **mix}})
    for fine in (0.0, 0.0626, 1.0):  # none, the least that draws a row in every default arm, and all
        parse_params({**raw, "mix": {**raw["mix"], "synthetic_fraction": fine}})
    assert batch_rows(part_fractions(ARMS["cyclegan_few"], 0.0626, 0.5), 16) == {"source": 7, "cyclegan": 1, "target_few": 8}


def test_unknown_keys_are_rejected_by_name():
    raw = _raw()
    raw["classifier"]["stepz"] = 10
    raw["gan"]["cyclegan"]["ngff"] = 3
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert "unknown key 'classifier.stepz'" in str(err.value)
    assert "unknown key 'gan.cyclegan.ngff'" in str(err.value)


@pytest.mark.parametrize("key", ["source", "target"])
@pytest.mark.parametrize("value", ["/home/me/photos", "..", ".", "", "summer/a", "summer\0"])
def test_domains_are_plain_folder_names(key, value):
    """prepare writes data/prepared/images/<domain>/: an absolute domain, or one with '..', would have it
    write into the user's own folders."""
    raw = _raw()
    raw["data"].update(dataset="folders", **{key: value})
    with pytest.raises(ParamsError, match=rf"data\.{key}: must be a plain folder name .*\(got {re.escape(repr(value))}\)"):
        parse_params(raw, build_transforms=False)
    raw["data"].update(source="summer", target="summer")
    with pytest.raises(ParamsError, match="data.source and data.target must differ, both are 'summer'"):
        parse_params(raw, build_transforms=False)


def test_a_domain_named_by_digits_gets_the_quoting_hint():
    """`-S data.source=2019` (a folder named 2019) said only "Input should be a valid string (got 2019)"."""
    raw = _raw()
    raw["data"].update(dataset="folders", source=2019)
    with pytest.raises(ParamsError, match=r'data\.source: .*\(got 2019\); a name that reads as a number or true/false needs quotes: '
                                          r'source: "2019"'):
        parse_params(raw, build_transforms=False)


def test_a_data_root_with_a_nul_byte_is_refused_by_name():
    """Every path function refuses a NUL byte: it passed the params and ended index_raw in a traceback."""
    raw = _raw()
    raw["data"].update(dataset="folders", root="/data/photos\0")
    with pytest.raises(ParamsError, match=re.escape("data.root: has a NUL byte (\\0), which no path can hold")):
        parse_params(raw, build_transforms=False)


def test_digits_requires_its_domains():
    raw = _raw()
    raw["data"]["target"] = "gtsrb"
    with pytest.raises(ParamsError, match="data.dataset 'digits' has domains"):
        parse_params(raw)


def test_data_classes_are_names_read_as_text_and_checked():
    raw = _raw()
    raw["data"]["classes"] = [3, 8]  # YAML's reading of the digits' names
    assert parse_params(raw).data.classes == ["3", "8"]
    raw["data"]["dataset"], raw["data"]["classes"] = "folders", ["u\u0308ber", "b"]  # typed decomposed: the label a folder's name gives is composed
    assert parse_params(raw).data.classes == ["\u00fcber", "b"]
    for classes, message in (([3], "keeps one class"), ([3, 3, 4], r"names \['3'\] more than once"), ([3, 12], "which data.dataset 'digits' lacks"),
                             (["a/b", "c"], "a class is a folder name")):
        raw["data"]["classes"] = classes
        raw["data"]["dataset"] = "digits" if classes == [3, 12] else "folders"
        with pytest.raises(ParamsError, match=r"data\.classes|" + message) as caught:
            parse_params(raw)
        assert re.search(message, str(caught.value)), caught.value


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "params.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\ngan: 3\n")  # in one line, not PyYAML's seven of carets
    with pytest.raises(ParamsError, match=r"^\S*bad\.yaml: not valid YAML: line 2, column 4: expected ',' or '\]', but got ':' "
                                          r"\(while parsing a flow sequence from line 1, column 7\)$"):
        load_params(bad)
    bad.write_text("")
    with pytest.raises(ParamsError, match=r"bad\.yaml: empty; it holds the sections \(data, gan, mix, classifier, \.\.\.\)"):
        load_params(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ParamsError, match="expected a mapping"):
        load_params(bad)
    bad.write_text((REPO / "params.yaml").read_text().replace("  channels: 1", "  channels: 1\n  channels: 3"))
    with pytest.raises(ParamsError, match=r"bad\.yaml: not valid YAML: key 'channels' given twice in one mapping, at lines 10 and 11$"):
        load_params(bad)  # as `dvc repro` refuses it, not checked as the last value
    bad.write_text("data: {channels: 1, channels: 3}\n")
    with pytest.raises(ParamsError, match=r"key 'channels' given twice in one mapping, at lines 1 and 1$"):
        load_params(bad)


def test_balance_strength_takes_inf_for_exact_totals(tmp_path):
    raw = _raw()
    raw["gan"]["cyclegan"]["balance_strength"] = float("inf")
    assert parse_params(raw).gan.cyclegan.balance_strength == float("inf")
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text().replace("balance_strength: 3.0", "balance_strength: .inf"))
    assert load_params(path).gan.cyclegan.balance_strength == float("inf")


def test_train_configs_carry_the_values():
    raw = _raw()
    raw["gan"]["cyclegan"]["ngf"] = 7
    raw["classifier"]["width"] = 5
    p = parse_params(raw)
    from augment.classify import ClassifierConfig
    from augment.cyclegan import CycleGANConfig

    assert as_config(p.gan.cyclegan, CycleGANConfig, seed=3, conditional=p.gan.cyclegan.conditional).ngf == 7
    assert not p.gan.cyclegan.conditional and p.gan.cgan.conditional
    assert as_config(p.classifier, ClassifierConfig).width == 5


def test_rgb32_preset_applies_as_dvc_overrides(tmp_path):
    """The preset's -S arguments, applied exactly as `dvc exp run -S` applies them, give valid params."""
    import shutil

    from dvc.utils.hydra import apply_overrides

    from pipelines.presets import preset_overrides

    overrides = preset_overrides(REPO / "presets/rgb32.yaml")
    assert "data.image_size=32" in overrides and "data.channels=3" in overrides
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    apply_overrides(tmp_path / "params.yaml", overrides)
    p = load_params(tmp_path / "params.yaml")
    assert (p.data.dataset, p.data.image_size, p.data.channels) == ("folders", 32, 3)
    assert p.gan.cyclegan.unet_downs == p.gan.cgan.unet_downs == 4


def test_network_too_deep_for_the_image_size_is_named():
    raw = _raw()
    raw["data"]["image_size"] = 8
    with pytest.raises(ParamsError, match=r"gan\.cyclegan\.unet_downs: .*divisible by 16, got 8"):
        parse_params(raw)
    raw["gan"]["cyclegan"]["generator"] = raw["gan"]["cgan"]["generator"] = "resnet"
    with pytest.raises(ParamsError, match=r"gan\.cyclegan\.d_layers: a 2-layer PatchGAN discriminator needs images of at least 12 px, got 8"):
        parse_params(raw)
    raw = _raw()
    raw["gan"]["cgan"].update(generator="unet", unet_downs=5)
    with pytest.raises(ParamsError, match=r"gan\.cgan\.unet_downs: .*divisible by 32, got 16"):
        parse_params(raw)
    # every kind that does not fit is named, with the sizes that fit and the depth this size takes
    raw = _raw()
    raw["data"]["image_size"] = 28  # 28 px digits, as they come
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    said = str(err.value)
    assert "gan.cyclegan.unet_downs:" in said and "gan.cgan.unet_downs:" in said
    assert said.endswith("use data.image_size 16 or 32, or -S gan.cyclegan.unet_downs=2 -S gan.cgan.unet_downs=2")
    raw["gan"]["cyclegan"]["unet_downs"] = raw["gan"]["cgan"]["unet_downs"] = 2
    assert parse_params(raw).data.image_size == 28  # the way out it gave works
    # 8 px: too small for the discriminators too. It said only "use data.image_size 16, or -S ...unet_downs=3", and with
    # that depth the next try stopped on d_layers: every problem at once, and no way out that leaves one
    raw = _raw()
    raw["data"]["image_size"] = 8
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    said = str(err.value)
    assert "gan.cyclegan.unet_downs:" in said and "gan.cyclegan.d_layers: a 2-layer PatchGAN discriminator needs images of at least 12 px" in said
    assert said.endswith("(data.image_size is 8): use data.image_size 16") and "-S" not in said


@pytest.mark.parametrize("section, key, value", [
    ("classifier", "seeds", [0, -1]), ("data", "split_seed", -3), ("evaluate", "bootstrap_seed", -1),
])
def test_negative_seeds_are_refused_by_key(section, key, value):
    with pytest.raises(ParamsError, match=rf"{section}\.{key}"):
        parse_params({section: {key: value}})


def test_gan_seeds_are_checked_and_the_old_per_gan_seed_is_pointed_to_them():
    raw = _raw()
    raw["gan"]["cyclegan"]["seed"] = 3
    with pytest.raises(ParamsError, match=r"unknown key 'gan.cyclegan.seed'; GAN seeds are the list gan.seeds"):
        parse_params(raw)
    for seeds, message in (([0, 0], "gan.seeds: seeds must not repeat"), ([-1], "gan.seeds: seeds must be >= 0"),
                           ([], "gan.seeds: List should have at least 1 item")):
        raw = _raw()
        raw["gan"]["seeds"] = seeds
        with pytest.raises(ParamsError, match=message):
            parse_params(raw)
    raw = _raw()
    raw["gan"]["seeds"], raw["classifier"]["seeds"] = [0, 1, 2], [0, 1]
    with pytest.raises(ParamsError, match=r"gan.seeds \[2\] would train GANs that no classifier uses"):
        parse_params(raw)
    raw["classifier"]["arms"] = ["source_only", "oracle"]  # no GAN arm: nothing to pair
    assert parse_params(raw).gan.seeds == [0, 1, 2]


def test_set_keys_reads_values_as_yaml_and_the_result_is_checked():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    set_keys(raw, "gan.cyclegan", ["steps=12", "pseudo_labels=confident", "balance_strength=.inf"])
    p = parse_params(set_keys(raw, "classifier", ["seeds=[4, 5]"]))
    assert (p.gan.cyclegan.steps, p.gan.cyclegan.pseudo_labels, p.classifier.seeds) == (12, "confident", [4, 5])
    assert p.gan.cyclegan.balance_strength == float("inf")
    with pytest.raises(ParamsError, match="gan.cyclegan: expected KEY=VALUE, got 'steps'"):
        set_keys(raw, "gan.cyclegan", ["steps"])
    with pytest.raises(ParamsError, match=r"gan.cyclegan.steps"):
        parse_params(set_keys(raw, "gan.cyclegan", ["steps=-1"]))


def test_gan_kinds_train_every_kind_by_default_and_must_hold_each_gan_arms_kind():
    from augment.arms import GANS

    assert sorted(load_params(REPO / "params.yaml").gan.kinds) == sorted(GANS)  # the default trains every kind an arm can read
    raw = _raw()
    raw["gan"]["kinds"] = ["cgan"]
    with pytest.raises(ParamsError, match=r"classifier\.arms has 'cyclegan', which reads the cyclegan GAN, but gan\.kinds is \['cgan'\]"):
        parse_params(raw)
    raw["classifier"]["arms"] = ["source_only", "classic", "cgan", "target_few", "oracle"]
    assert parse_params(raw).unused_gan_kinds() == []
    raw["gan"]["kinds"] = ["cyclegan", "cgan"]
    assert parse_params(raw).unused_gan_kinds() == ["cyclegan"]  # trained for nothing: the flow warns
    assert parse_params(raw).notes() == ["gan.kinds trains cyclegan, which no arm of classifier.arms reads: -S 'gan.kinds=[cgan]' "
                                         "skips that training"]
    raw["gan"]["kinds"] = []
    raw["classifier"]["arms"] = ["source_only", "oracle"]
    assert parse_params(raw).gan.kinds == []  # no GAN at all: a baseline-only run
    raw["gan"]["kinds"] = ["cgan", "cgan"]
    with pytest.raises(ParamsError, match=r"gan\.kinds: kinds must not repeat"):
        parse_params(raw)


def test_the_preset_command_checks_the_preset_before_printing_it(tmp_path):
    """`dvc exp run $(domain-augment preset FILE)` with a misspelt key would run on defaults for it."""
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  image_sise: 32\n")
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "preset", str(bad)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == "" and "data.image_sise" in proc.stderr and "Traceback" not in proc.stderr
    good = subprocess.run([sys.executable, "-m", "pipelines.cli", "preset", str(REPO / "presets/rgb32.yaml")], cwd=REPO,
                          capture_output=True, text=True)
    assert good.returncode == 0 and "-S data.image_size=32" in good.stdout
    # Text that reads as a number or a boolean unquoted kept its quotes off: data.source '2019' was refused as the
    # number 2019, by this command and by `run --preset`
    years = tmp_path / "years.yaml"
    years.write_text("data:\n  dataset: folders\n  source: '2019'\n  target: 'true'\n  root: /data/my photos\n")
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "preset", str(years)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split(" -S ")[1:] == ['data.source="2019"', 'data.target="true"', 'data.root="/data/my photos"\n']
    assert "data.root holds a space, which `dvc exp run $(domain-augment preset" in proc.stderr


def test_the_params_file_is_read_as_dvc_reads_it(tmp_path):
    """YAML 1.2, as DVC: `010` is ten (PyYAML's 1.1 read eight while DVC named the stages 10), `yes`
    is text (it passed as a step count of 1); seeds are whole numbers as written (0.0 and true ran
    as seeds 0 and 1 but named DVC's stages and folders 0.0 and True)."""
    from pipelines.config import read_yaml_text

    assert read_yaml_text("a: [010, 0o17, 0x1f, -3]\nb: yes\nc: on\nd: true\ne: 1.5") == {"a": [10, 15, 31, -3], "b": "yes", "c": "on",
                                                                                          "d": True, "e": 1.5}
    for key, value, message in [("gan.seeds", "[0.0, 1.0]", r"gan\.seeds\.0: Input should be a valid integer \(got 0\.0\)"),
                                ("gan.seeds", "[false, true]", r"gan\.seeds\.0: Input should be a valid integer \(got False\)"),
                                ("classifier.seeds", "[0, 100000000000000000000]", r"classifier\.seeds: seeds must be at most 2147483647"),
                                ("gan.cyclegan.steps", "yes", r"gan\.cyclegan\.steps: Input should be a valid integer.*\(got 'yes'\)"),
                                ("gan.cyclegan.steps", "100000000000000000000", r"gan\.cyclegan\.steps: must be at most 2147483647"),
                                ("runtime.threads", "100000", r"runtime\.threads: Input should be less than or equal to 1024"),
                                ("evaluate.bootstrap_samples", "10000000", r"evaluate\.bootstrap_samples: Input should be less than or equal"),
                                ("runtime.launcher", "'   '", r"runtime\.launcher: must start with 'python' or 'torchrun'")]:
        parts = key.split(".")  # a file of this key alone: the others take their defaults
        (tmp_path / "params.yaml").write_text("".join(f"{'  ' * i}{part}:\n" for i, part in enumerate(parts[:-1]))
                                              + f"{'  ' * (len(parts) - 1)}{parts[-1]}: {value}\n")
        with pytest.raises(ParamsError, match=message):
            load_params(tmp_path / "params.yaml", build_transforms=False)


def test_a_params_file_that_is_not_utf8_or_lacks_a_key_dvc_yaml_reads_is_named(tmp_path):
    """Not UTF-8: a UnicodeDecodeError traceback. A key dvc.yaml interpolates (runtime.launcher)
    left out: the check passed on its default, then `dvc repro` stopped at "Could not find"."""
    text = (REPO / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_bytes(b"# caf\xe9\n" + text.encode())
    with pytest.raises(ParamsError, match=re.escape(f"{tmp_path / 'params.yaml'}: not UTF-8 text (line 1, byte 0xe9); save it as UTF-8")):
        load_params(tmp_path / "params.yaml", build_transforms=False)
    (tmp_path / "params.yaml").write_text(re.sub(r"(?m)^  launcher:.*\n", "", text))
    load_params(tmp_path / "params.yaml", build_transforms=False)  # no dvc.yaml beside it: its defaults stand
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    with pytest.raises(ParamsError, match=re.escape("runtime.launcher: missing; dvc.yaml reads it from this file (interpolated as ${runtime.launcher}; the default: 'python')")):
        load_params(tmp_path / "params.yaml", build_transforms=False)
    # and where a -S value takes it away (Hydra's `~key`), the run's check says so before any stage
    from pipelines.presets import check_overrides

    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    with pytest.raises(ParamsError, match=re.escape("params.yaml with -S ~runtime.launcher: runtime.launcher: missing; dvc.yaml reads it")):
        check_overrides(tmp_path / "params.yaml", ["~runtime.launcher"])
    # and a key a stage lists under `params:` (DVC stopped at "Parameters 'synthesize' are missing", once the GANs had trained)
    for gone, reader in (("synthesize", "stage synthesize"), ("mix", "stage arm_inputs"), ("data.split_seed", "stage prepare"),
                         ("gan.cgan", "stage train_gan")):
        with pytest.raises(ParamsError, match=re.escape(f"params.yaml with -S ~{gone}: {gone}: missing; dvc.yaml reads it from this file ({reader};")):
            check_overrides(tmp_path / "params.yaml", [f"~{gone}"])
    check_overrides(tmp_path / "params.yaml", ["~gan.cgan", "gan.kinds=[cyclegan]", "classifier.arms=[source_only,cyclegan]"])  # not read then


@pytest.mark.parametrize("spec, message", [
    ({"name": "FDA", "p": 0.5}, r"FDA fails on a 16x16 px image \(data\.image_size\): FDA requires \['fda_metadata'\]"),
    ({"name": "RandomRain", "p": 0.1, "drop_length": 100, "drop_width": 50}, r"RandomRain fails on a 16x16 px image"),
    ({"name": "RandomGamma", "p": 2}, r"RandomGamma: p: Input should be less than or equal to 1 \(got 2\)$"),
    ({"name": "ToSepia", "strength": 1}, r"ToSepia: .*'strength'"),
])
def test_a_classic_transform_that_builds_but_cannot_run_or_a_bad_argument_is_named(spec, message):
    """FDA and an oversized rain drop built, passed the check and crashed the classic arm's stage; an
    argument's bad value was "1 validation error for InitSchema", with no argument named."""
    raw = _raw()
    raw["classic"]["transforms"] = [spec]
    with pytest.raises(ParamsError, match=r"params\.yaml: classic\.transforms\[0\]: " + message):
        parse_params(raw)
    raw["classic"]["transforms"] = [{"name": "ToSepia", "p": 0.5}]  # a transform without 2.x's argument checks still builds
    parse_params(raw)


def test_launchers_that_run_the_stage_pass():
    for launcher in ("python", "python -u", "python -OO", "python -uB", "python -X importtime", "python -Xdev", "python -W ignore",
                     "torchrun --standalone --nproc_per_node=2", "torchrun --nproc-per-node auto", "torchrun --nnodes=$NNODES --nproc_per_node=4"):
        assert parse_params({"runtime": {"launcher": launcher}}, build_transforms=False).runtime.launcher == launcher


def test_an_unknown_key_is_answered_with_the_key_it_was_likely_meant_to_be():
    """A misspelt key in params.yaml was refused without the suggestion `-S` gives."""
    for raw, said in [({"classifier": {"stepz": 3}}, "unknown key 'classifier.stepz'; did you mean classifier.steps?"),
                      ({"classifier": {"validation_fraction": 0.1}}, "did you mean evaluate.validation_fraction?"),
                      ({"clasifier": {}}, "unknown key 'clasifier'; did you mean classifier?")]:
        with pytest.raises(ParamsError, match=re.escape(said)):
            parse_params(raw, build_transforms=False)
    with pytest.raises(ParamsError, match=r"unknown key 'zzz'$"):
        parse_params({"zzz": 1}, build_transforms=False)


def test_yaml_merge_keys_share_settings_between_sections(tmp_path):
    """`cgan: {<<: *cyclegan, steps: 50}` is YAML DVC reads; the duplicate-key check refused it with
    "could not determine a constructor for the tag 'tag:yaml.org,2002:merge'", naming no key."""
    (tmp_path / "params.yaml").write_text("gan:\n  cyclegan: &shared\n    steps: 100\n    ngf: 8\n  cgan:\n    <<: *shared\n    steps: 50\n")
    gan = load_params(tmp_path / "params.yaml", build_transforms=False).gan
    assert (gan.cyclegan.steps, gan.cyclegan.ngf, gan.cgan.steps, gan.cgan.ngf) == (100, 8, 50, 8)
    (tmp_path / "params.yaml").write_text("gan:\n  cyclegan: &shared\n    steps: 100\n  cgan:\n    <<: *shared\n    ngf: 8\n    ngf: 4\n")
    with pytest.raises(ParamsError, match="key 'ngf' given twice in one mapping, at lines 6 and 7"):
        load_params(tmp_path / "params.yaml", build_transforms=False)


def test_a_number_in_exponent_form_reads_as_dvc_reads_it(tmp_path):
    """`steps: 1e3` in params.yaml was refused as the text '1e3' (YAML 1.1 wants a dot), where DVC, and
    `-S gan.cyclegan.steps=1e3`, read a thousand."""
    (tmp_path / "params.yaml").write_text("gan:\n  cyclegan:\n    steps: 1e3\n    lr: 2e-4\nclassifier:\n  seeds: [0, 1e0]\n")
    with pytest.raises(ParamsError, match=r"classifier\.seeds\.1: Input should be a valid integer \(got 1\.0\)"):
        load_params(tmp_path / "params.yaml", build_transforms=False)  # seeds name stages: whole numbers written as such
    (tmp_path / "params.yaml").write_text("gan:\n  cyclegan:\n    steps: 1e3\n    lr: 2e-4\n")
    gan = load_params(tmp_path / "params.yaml", build_transforms=False).gan
    assert (gan.cyclegan.steps, gan.cyclegan.lr) == (1000, 2e-4)


def test_few_label_arms_without_few_labels_are_noted_before_the_run(tmp_path):
    """data.target_labels_per_class 0 with target_few and cyclegan_few listed: their stages ran and
    evaluate reported them unavailable, with no word before the run."""
    import subprocess
    import sys

    raw = _raw()
    raw["data"]["target_labels_per_class"] = 0
    notes = parse_params(raw, build_transforms=False).notes()
    assert notes == ["classifier.arms has target_few, cyclegan_few, which learn from the few labeled target images, but "
                     "data.target_labels_per_class is 0: they will be reported unavailable; -S 'classifier.arms=[source_only,classic,"
                     "cyclegan,cyclegan_classic,cgan,test_time,adabn,oracle]' leaves them out"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "--repo", str(tmp_path), "check-params"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr.splitlines() == [f"note: {notes[0]}", "params.yaml: valid, with the note above"], proc.stderr
    assert json.loads(proc.stdout)["data"]["target_labels_per_class"] == 0  # stdout: the parsed values alone
    raw["classifier"]["arms"] = ["source_only", "cgan", "oracle"]  # the cgan learns from pseudo-labels then: nothing to say
    raw["gan"]["kinds"] = ["cgan"]
    assert parse_params(raw, build_transforms=False).notes() == []


def test_check_params_ends_with_its_verdict():
    """check-params printed the parsed values and stopped: nothing said the file was valid."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "--repo", str(REPO), "check-params"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "params.yaml: valid\n", proc.stderr
    assert json.loads(proc.stdout)["classifier"]["arms"]


def test_a_data_root_the_digits_dataset_does_not_read_is_noted():
    """`domain-augment run -S data.root=mydata` ran a whole run on the packaged digits, with no word
    that the folder was never read (data.dataset was still digits)."""
    raw = _raw()
    assert parse_params(raw, build_transforms=False).notes() == []
    raw["data"]["root"] = "mydata"
    assert parse_params(raw, build_transforms=False).notes() == [
        "data.root is 'mydata', but data.dataset is digits (the packaged MNIST and optdigits), which reads no folder: "
        "-S data.dataset=folders with data.source and data.target reads yours"]
