"""`-S key=value` overrides (pipelines/presets.py check_overrides), as `domain-augment run`, the flow and sweep apply them."""
import shutil

import pytest

from pipelines.config import ParamsError
from pipelines.presets import check_overrides
from tests.conftest import REPO


@pytest.fixture
def params(tmp_path):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return tmp_path / "params.yaml"


def test_a_misspelt_key_is_named_with_the_key_it_resembles(params, tmp_path):
    """DVC's own refusal suggests appending the key (`+gan.cyclegan.step=5`), which the params
    check then refuses too: the user is told which key they meant instead."""
    before = params.read_bytes()
    with pytest.raises(ParamsError) as err:
        check_overrides(params, ["classifier.steps=9", "gan.cyclegan.step=5"], into=tmp_path / "trial.yaml")
    assert str(err.value) == "-S gan.cyclegan.step=5: unknown key 'gan.cyclegan.step' (params.yaml has none); did you mean gan.cyclegan.steps?"
    assert params.read_bytes() == before and not (tmp_path / "trial.yaml").exists()


def test_a_refused_value_names_the_params_file_and_the_overrides_not_the_temporary_copy(params, tmp_path):
    with pytest.raises(ParamsError) as err:
        check_overrides(params, ["data.image_size=13"], into=tmp_path / "trial.yaml")
    assert str(err.value).startswith("params.yaml with -S data.image_size=13: data.image_size: must be divisible by 4")
    with pytest.raises(ParamsError) as err:
        check_overrides(params, ["classifier.seeds=[0,"], into=tmp_path / "trial.yaml")
    # one line in this tool's words: not DVC's option name (--set-param) or Hydra's link
    assert str(err.value) == "-S classifier.seeds=[0,: not a value -S can read: no viable alternative at input '[0,'"
    # a list given without its brackets, with commas (Hydra reads a sweep) or one value alone: the way to write it
    with pytest.raises(ParamsError) as err:
        check_overrides(params, ["classifier.arms=source_only,cyclegan"], into=tmp_path / "trial.yaml")
    assert str(err.value).endswith("; a list goes in square brackets: -S 'classifier.arms=[source_only,cyclegan]' (values apart by "
                                   "commas are a sweep's, not a list)")
    with pytest.raises(ParamsError) as err:
        check_overrides(params, ["classifier.arms=source_only"], into=tmp_path / "trial.yaml")
    assert str(err.value) == ("params.yaml with -S classifier.arms=source_only: classifier.arms: Input should be a valid list (got "
                              "'source_only'); a list goes in square brackets: -S 'classifier.arms=[source_only]'")
    with pytest.raises(ParamsError) as err:
        check_overrides(params, ["gan.cyclegan.steps"], into=tmp_path / "trial.yaml")
    assert str(err.value) == "-S gan.cyclegan.steps: expected KEY=VALUE (e.g. -S gan.cyclegan.steps=400)"


def test_good_overrides_are_applied_to_the_copy_only(params, tmp_path):
    before = params.read_bytes()
    check_overrides(params, ["classifier.steps=9", "gan.seeds=[3]"], into=tmp_path / "trial.yaml")
    text = (tmp_path / "trial.yaml").read_text()
    assert "steps: 9" in text and params.read_bytes() == before



def test_an_override_sequence_never_ends_in_a_message_about_a_temporary_file(params, tmp_path):
    """A params.yaml that an earlier run in place rewrote (its lists in block style), then a list
    emptied with -S: DVC's writer (ruamel.yaml) puts a comment where it breaks the file. The message
    names params.yaml and the -S values, never the temporary copy the check wrote, and params.yaml
    is unchanged (an empty list is refused by key where the file does parse)."""
    from dvc.utils.hydra import apply_overrides

    apply_overrides(params, ["classifier.arms=[source_only,cgan]"])  # what `run --in-place -S` leaves behind
    before = params.read_bytes()
    trial = tmp_path / "trial" / "params.yaml"
    trial.parent.mkdir()
    with pytest.raises(ParamsError) as err:
        check_overrides(params, ["classic.transforms=[]"], into=trial)
    assert str(err.value).startswith("params.yaml with -S classic.transforms=[]: ") and str(trial.parent) not in str(err.value), str(err.value)
    assert params.read_bytes() == before


def test_with_a_presets_many_values_the_message_names_the_bad_one_not_all(params, tmp_path):
    from pipelines.presets import preset_overrides

    many = preset_overrides(REPO / "presets" / "rgb32.yaml")
    assert len(" ".join(many)) > 200
    with pytest.raises(ParamsError) as err:
        check_overrides(params, [*many, "data.image_size=13"], into=tmp_path / "trial.yaml")
    assert str(err.value).startswith(f"params.yaml with {len(many) + 1} -S values: data.image_size: must be divisible by 4"), str(err.value)
    with pytest.raises(ParamsError) as err:
        check_overrides(params, [*many, "data.root=~/photos"], into=tmp_path / "trial.yaml")
    assert str(err.value).startswith("-S data.root=~/photos: ") and "goes in quotes" in str(err.value), str(err.value)[:300]


@pytest.mark.parametrize("text, got", [("", "an empty file"), ("# nothing yet\n", "an empty file"), ("- data\n", "a YAML list"),
                                       ("32\n", "a YAML int")])
def test_a_preset_that_is_not_a_mapping_says_what_it_holds(tmp_path, text, got):
    """An empty preset was refused as "got NoneType"."""
    from pipelines.presets import preset_overrides

    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ParamsError) as exc:
        preset_overrides(tmp_path / "p.yaml")
    assert str(exc.value).endswith(f"p.yaml: a preset is a mapping of params.yaml sections (e.g. data: {{image_size: 32}}), got {got}")



def test_a_value_with_spaces_and_equals_signs_is_told_to_go_in_quotes(params, tmp_path):
    """`-S runtime.launcher=torchrun --standalone --nproc_per_node=2` ended in Hydra's "mismatched input '='" alone."""
    with pytest.raises(ParamsError) as err:
        check_overrides(params, ["runtime.classifier_launcher=torchrun --standalone --nproc_per_node=2"], into=tmp_path / "trial.yaml")
    assert "mismatched input" in str(err.value) and "goes in quotes" in str(err.value), str(err.value)
    quoted = check_overrides(params, ['runtime.classifier_launcher="torchrun --standalone --nproc_per_node=2"'], into=tmp_path / "trial.yaml")
    assert quoted.runtime.classifier_launcher == "torchrun --standalone --nproc_per_node=2"


def test_words_a_preset_writes_are_read_back_as_written(params, tmp_path):
    """`domain-augment preset` and check-data's run line wrote a domain named `été` unquoted, as plain
    text, and Hydra's grammar refused it (LexerNoViableAlt): only ASCII words go unquoted."""
    from pipelines.presets import overrides_of

    for word in ("été", "snow_ü", "日本", "Ωmega", "x²", "winter", "2019", "true", "null", "a b", "-x", "~photos", "it's"):
        data = {"dataset": "folders", "source": word, "target": "other"}
        read = check_overrides(params, overrides_of({"data": data}), into=tmp_path / "trial.yaml")
        assert read.data.source == word, (word, overrides_of({"data": data}))
    # Hydra's quoted strings are not JSON's: "back\\slash" was read as two backslashes, and a folder with one was not found
    for root in ("/data/back\\slash", "/data/end\\", "/data/q\"uote", "/data/x\\\"y", "/data/tab\there", "/data/nl\nx",
                 "/data/\\u00fc", "/data/$HOME `x` {a:b}[1,2]", "/data/a=b c"):
        data = {"dataset": "folders", "root": root, "source": "a", "target": "b"}
        read = check_overrides(params, overrides_of({"data": data}), into=tmp_path / "trial.yaml")
        assert read.data.root == root, (root, overrides_of({"data": data}))
    with pytest.raises(ParamsError, match=r"letters beyond ASCII \(ü\) goes in quotes"):  # typed unquoted by hand
        check_overrides(params, ["data.dataset=folders", "data.source=été"], into=tmp_path / "trial.yaml")


def test_a_key_in_the_wrong_section_is_pointed_to_its_section(params, tmp_path):
    """-S and params.yaml suggest keys with one function (pipelines.config.close_key)."""
    with pytest.raises(ParamsError, match=r"unknown key 'classifier\.validation_fraction' \(params\.yaml has none\); "
                                          r"did you mean evaluate\.validation_fraction\?$"):
        check_overrides(params, ["classifier.validation_fraction=0.1"], into=tmp_path / "trial.yaml")


def test_an_entry_of_a_list_is_told_that_the_list_is_set_whole(params, tmp_path):
    """`-S classic.transforms.0.p=0.5` was answered "unknown key ... did you mean classic.transforms?"."""
    with pytest.raises(ParamsError, match=r"^-S classic\.transforms\.0\.p=0\.5: classic\.transforms is a list, which -S sets whole, "
                                          r"not one entry of it: give the whole list \(-S 'classic\.transforms=\[\.\.\.\]'\)"):
        check_overrides(params, ["classic.transforms.0.p=0.5"], into=tmp_path / "trial.yaml")
