"""data.target_labels_per_class against what the labeled target train split holds: a cap that is
said, in the few_labels stage's output and in what the report learns from target_few."""
import pandas as pd
import yaml

from augment.few_labels import few_label_counts, shortfall_warning
from pipelines.stages import few_labels


def _manifest(target_per_class: dict[str, int]) -> pd.DataFrame:
    """Source train with every class, target train with `target_per_class` labeled images of each."""
    rows = [{"path": f"s/{c}/{i}.png", "role": "source", "split": "train", "label": c, "label_index": k}
            for k, c in enumerate(target_per_class) for i in range(3)]
    rows += [{"path": f"t/{c}/{i}.png", "role": "target", "split": "train", "label": c, "label_index": k}
             for k, (c, n) in enumerate(target_per_class.items()) for i in range(n)]
    return pd.DataFrame(rows)


def test_the_stage_warns_when_a_class_has_fewer_labels_than_asked(tmp_path, capsys):
    (tmp_path / "prepared").mkdir()
    _manifest({"a": 15, "b": 15, "c": 4}).to_csv(tmp_path / "prepared/manifest.csv", index=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"target_labels_per_class": 100}}))
    few_labels.main(["--params", str(tmp_path / "params.yaml"), "--prepared", str(tmp_path / "prepared"),
                     "--out", str(tmp_path / "labels"), "--timings-dir", str(tmp_path / "timings")])
    err = capsys.readouterr().err
    assert "warning: data.target_labels_per_class is 100" in err and "a: 15, b: 15, c: 4" in err
    assert "in every class target_few, cyclegan_few, cgan_few, cgan see all of them, the very labels the oracle sees" in err
    # every arm that sees a few target labels gets them, the others none
    assert all(len(pd.read_csv(tmp_path / f"labels/arm-{arm}.csv")) == 34 for arm in ("target_few", "cyclegan_few", "cgan_few"))
    assert len(pd.read_csv(tmp_path / "labels/arm-cyclegan.csv")) == 0


def test_no_warning_when_every_class_has_enough_and_which_classes_fell_short():
    manifest = _manifest({"a": 15, "b": 15, "c": 4})
    assert shortfall_warning(manifest, 3) is None and shortfall_warning(manifest, 0) is None
    assert "in class c target_few" in shortfall_warning(manifest, 4)  # exactly as many: all of them, as the reports count
    assert "in class c target_few" in shortfall_warning(manifest, 10)
    flat = _manifest({"a": 0, "b": 0})  # no target label at all: no cap to warn of
    assert shortfall_warning(flat, 10) is None
    gap = shortfall_warning(_manifest({"a": 15, "b": 0, "c": 4}), 10)  # b is a test class the labeled target train lacks
    assert "in class c target_few" in gap and "in class b" not in gap
    assert gap.endswith("; b has none, so neither target_few nor the oracle sees a target label of it")


def test_counts_of_what_target_few_saw_against_what_there_was():
    manifest = _manifest({"a": 15, "b": 3}).assign(few_shot=False)
    manifest.loc[manifest.path.isin([f"t/a/{i}.png" for i in range(10)] + ["t/b/0.png", "t/b/1.png", "t/b/2.png"]), "few_shot"] = True
    assert few_label_counts(manifest) == {"used_per_class": {"a": 10, "b": 3}, "available_per_class": {"a": 15, "b": 3}}
