"""`domain-augment check-data`: prepare's checks before a run, nothing written, exit 0 or 2."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, make_folders


def _check(root, *extra):
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "check-data", str(root), "--source", "src", "--target", "tgt", *extra],
                          cwd=REPO, capture_output=True, text=True)


def test_good_folder_passes_and_lists_counts_and_rejected_files(tmp_path):
    root = make_folders(tmp_path / "raw", per_class=3)
    (root / "src/train/a/empty.png").write_bytes(b"")
    (root / "src/train/b/notes.jpg").write_text("not an image")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    proc = _check(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "classes (3): a, b, c" in out and "src/train: 9 images (a 3, b 3, c 3)" in out
    assert "tgt/train: 9 images ((unlabeled) 9)" in out
    assert "rejected: 2 file(s) (a text file, not an image 1; zero-byte file 1)" in out and "empty.png" in out and "notes.jpg" in out
    assert "note: Few target train images: the GANs learn the target domain from only 9." in out
    # as the run will hold out evaluate.validation_fraction (params.yaml: 0.2) of each class's 3 images: 1 each
    assert "note: Small target test set: every target-test figure rests on 6 images" in out and "(3 of them are held out" in out
    assert "note: Few source train images of some classes: a (3), b (3), c (3)." in out
    assert out.splitlines()[-2] == "ok: the pipeline would run on this data" and out.splitlines()[-1].startswith("run it: ")
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written
    assert "Traceback" not in proc.stderr


def test_long_listings_are_cut_to_the_first_few_and_say_how_many_more(tmp_path):
    root = make_folders(tmp_path / "raw", per_class=3)
    for i in range(25):
        (root / f"src/train/a/junk{i:02d}.png").write_text("not an image")
    (root / "src/train/a/.DS_Store").write_bytes(b"\0\0\0\1Bud1")
    out = _check(root).stdout
    # hidden files, never images, are counted but listed after the files that may matter
    assert "rejected: 26 file(s) (a text file, not an image 25; hidden file 1)" in out and "junk19.png" in out and "junk20.png" not in out
    assert ".DS_Store" not in out
    assert "  ... and 6 more (--list 0 lists all; prepare writes every one to data/prepared)" in out
    everything = _check(root, "--list", "0").stdout
    assert "junk24.png" in everything and ".DS_Store" in everything and "... and" not in everything


def test_layout_problems_and_empty_splits_exit_2_with_the_folder_named(tmp_path):
    root = make_folders(tmp_path / "raw", per_class=2)
    shutil.rmtree(root / "tgt")
    proc = _check(root)
    assert proc.returncode == 2 and "tgt: missing (data.target='tgt')" in proc.stdout and "Traceback" not in proc.stderr
    assert "rejected:" not in proc.stdout  # nothing was read: no count of rejections to give
    root = make_folders(tmp_path / "raw2", per_class=2)
    for f in (root / "src/test").rglob("*.png"):
        f.write_bytes(b"\x89PNG broken")
    proc = _check(root)
    assert proc.returncode == 2
    assert f"{root / 'src' / 'test'}: no readable images" in proc.stdout and "rejected: 6 file(s)" in proc.stdout
    root = make_folders(tmp_path / "raw3", per_class=2)
    for f in (root / "tgt/train").iterdir():
        f.unlink()
    (root / "tgt/train/.DS_Store").write_bytes(b"\0\0\0\1Bud1")
    proc = _check(root)
    assert proc.returncode == 2 and f"{root / 'tgt' / 'train'}: no usable files, only hidden or refused ones; expected image files" in proc.stdout
    (root / "tgt/train/.DS_Store").unlink()  # nothing at all: said so (it said "no files found but hidden or refused ones")
    proc = _check(root)
    assert proc.returncode == 2 and f"{root / 'tgt' / 'train'}: an empty folder; expected image files" in proc.stdout
    proc = _check(tmp_path / "nowhere")
    assert proc.returncode == 2 and "not a folder" in proc.stdout
    proc = _check(make_folders(tmp_path / "one", classes=("only",), per_class=2))
    assert proc.returncode == 2 and "one class folder with usable images (only)" in proc.stdout and "classes" not in proc.stdout.split("problem")[0]


def test_names_that_are_not_utf8_print_escaped_and_source_equal_to_target_is_refused(tmp_path):
    root = make_folders(tmp_path / "raw", per_class=2)
    (root / "src" / "train" / "a" / os.fsdecode(b"notes\xe9.txt")).write_text("not an image")
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "check-data", str(root), "--source", "src", "--target", "tgt"],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert f"  {root}/src/train/a/notes\\xe9.txt: a text file, not an image" in proc.stdout  # as rejected.csv writes it
    proc = _check(root, "--source", "tgt")
    assert proc.returncode == 2 and "data.source and data.target must differ, both are 'tgt'" in proc.stdout
    assert "problem: check-data --source tgt --target tgt with params.yaml: " in proc.stdout  # the flags that gave them


def test_values_run_would_refuse_are_refused_here_too(tmp_path):
    """check-data judges its --image-size and --channels as `run` judges params.yaml with them: an
    image size the networks cannot take is a problem by key, not a ZeroDivisionError or an ok."""
    root = make_folders(tmp_path / "raw", per_class=2)
    for size, why in ((0, "data.image_size: Input should be greater than or equal to 8 (got 0)"),
                      (30, "data.image_size: must be divisible by 4 (the generators downsample twice) (got 30)")):
        proc = _check(root, "--image-size", str(size))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert f"problem: check-data --source src --target tgt --image-size {size} with params.yaml: {why}" in proc.stdout  # the flags given
    assert _check(root, "--image-size", "32").returncode == 0
    assert _check(root, "--resize", "pad").returncode == 0


def _passes_without(tmp_path, folder: str, **layout):
    """check-data on a small folder with `folder` (a class folder under it) removed: it must still pass."""
    root = make_folders(tmp_path / "raw", per_class=2, **layout)
    shutil.rmtree(root / folder)
    proc = _check(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root, proc


def test_what_no_flag_gives_comes_from_the_params_file_as_in_a_run(tmp_path):
    """data.max_image_pixels (and the size, channels and resize no flag gives) are read from --params:
    check-data said ok on images that prepare then refused as too large."""
    root = make_folders(tmp_path / "raw", per_class=2)
    params = tmp_path / "params.yaml"
    text = (REPO / "params.yaml").read_text()
    assert "max_image_pixels: 250000000" in text
    params.write_text(text.replace("max_image_pixels: 250000000", "max_image_pixels: 100"))
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "--params", str(params), "check-data", str(root), "--source", "src", "--target", "tgt"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "px exceeds 100 px (data.max_image_pixels; -S data.max_image_pixels=" in proc.stdout and "no usable image" in proc.stdout


def test_target_test_classes_the_source_has_and_the_target_test_lacks_are_noted_not_fatal(tmp_path):
    root, proc = _passes_without(tmp_path, "tgt/test/b")
    assert f"note: {root / 'tgt' / 'test'}: no images of 1 of the 3 classes (b); the target-test figures will say nothing" in proc.stdout
    assert "\nok: the pipeline would run on this data\nrun it: " in proc.stdout
    # Counted as evaluate splits them: a class with no image holds none out (it counted -1 here)
    assert "rests on 2 images" in proc.stdout and "(2 of them are held out as target_val: any fraction above 0 holds out one image of each class of two or more, 0 none)" in proc.stdout, proc.stdout
    assert "no images of" not in _check(make_folders(tmp_path / "full", per_class=2)).stdout


def test_a_class_the_source_test_split_lacks_is_noted(tmp_path):
    root, proc = _passes_without(tmp_path, "src/test/c")
    assert f"note: {root / 'src' / 'test'}: no images of c; the source-test figures" in proc.stdout


def test_an_empty_class_folder_in_any_split_is_noted_and_passed_over(tmp_path):
    """Empty, or holding only hidden files (a folder emptied in a file manager keeps its .DS_Store):
    passed over with a note, in every split, never refused as a class without images."""
    root = make_folders(tmp_path / "raw", per_class=2)
    (root / "src" / "train" / "zebra").mkdir()
    (root / "src" / "test" / "f").mkdir()
    (root / "src" / "test" / "f" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "tgt" / "test" / "e" / ".cache").mkdir(parents=True)
    proc = _check(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for folder, names in (("src/train", "zebra"), ("src/test", "f"), ("tgt/test", "e")):
        assert f"note: {root / folder}: empty class folder(s) {names} (nothing in them but hidden files" in proc.stdout, proc.stdout
    assert "classes (3): a, b, c" in proc.stdout
    assert "empty class folder" not in _check(make_folders(tmp_path / "full", per_class=2)).stdout


def test_test_classes_the_labeled_target_train_lacks_are_noted(tmp_path):
    root, proc = _passes_without(tmp_path, "tgt/train/c", flat_target_train=False)
    assert (f"note: {root / 'tgt' / 'train'}: no labeled images of c, which the target test has; the arms that see a few "
            "target labels, cgan and the oracle see no target label of it, so the oracle is no upper bound there") in proc.stdout
    assert "no labeled images" not in _check(make_folders(tmp_path / "full", per_class=2, flat_target_train=False)).stdout
    assert "no labeled images of" not in _check(make_folders(tmp_path / "flat", per_class=2)).stdout  # unlabeled: nothing to lack


def test_fewer_labeled_target_images_than_the_few_label_arms_ask_for_are_noted(tmp_path):
    """data.target_labels_per_class 10 (params.yaml) against 6 labeled target train images a class: the
    few_labels stage and the reports warned after the run, check-data said nothing before it."""
    root = make_folders(tmp_path / "raw", per_class=6, flat_target_train=False)
    assert (f"note: {root / 'tgt' / 'train'}: data.target_labels_per_class is 10, but some classes have no more labeled images "
            "(a: 6, b: 6, c: 6): there the arms that see a few target labels see every one, the very labels the oracle sees") in _check(root).stdout
    assert "data.target_labels_per_class is" not in _check(make_folders(tmp_path / "flat", per_class=6)).stdout  # no labels to be short of
    exact = make_folders(tmp_path / "exact", per_class=10, flat_target_train=False)  # exactly as many: the reports' "Few labels are all labels"
    assert "some classes have no more labeled images (a: 10, b: 10, c: 10)" in _check(exact).stdout
    assert "data.target_labels_per_class is" not in _check(make_folders(tmp_path / "more", per_class=11, flat_target_train=False)).stdout


def test_class_names_that_would_read_as_several_are_quoted(tmp_path):
    root = make_folders(tmp_path / "raw", classes=("a", 'comma, "quoted"', "b "), per_class=2)
    out = _check(root).stdout
    assert """classes (3): 'a', 'b ', 'comma, "quoted"'""" in out and "src/train: 6 images ('a' 2, 'b ' 2, 'comma, \"quoted\"' 2)" in out
    # the notes list them as quoted as the counts do ("x, y (2)" read as two classes)
    assert """note: Few source train images of some classes: 'a' (2), 'b ' (2), 'comma, "quoted"' (2). Every arm""" in out
    shutil.rmtree(root / "tgt/test" / 'comma, "quoted"')
    assert """tgt/test: no images of 1 of the 3 classes ('comma, "quoted"'); the target-test figures""" in _check(root).stdout
    assert "classes (3): a, b, c" in _check(make_folders(tmp_path / "plain", per_class=2)).stdout  # plain names stay plain


def test_colour_the_run_would_drop_and_grey_read_as_rgb_are_noted(tmp_path):
    """With data.channels 1 (params.yaml) a target in colour is read as grey, and its colour, maybe the
    very shift, is lost without a word; two grey domains read as RGB cost three times the input."""
    import numpy as np
    from PIL import Image

    root = make_folders(tmp_path / "raw", per_class=4)
    rng = np.random.default_rng(0)
    for path in sorted((root / "tgt").rglob("*.png")):  # digits on random colour backgrounds, as MNIST-M
        grey = np.asarray(Image.open(path).convert("L"), dtype=np.int16)
        tint = rng.integers(0, 256, 3)
        Image.fromarray(np.abs(tint[None, None, :] - grey[:, :, None]).astype(np.uint8), "RGB").save(path)
    proc = _check(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "read as 16 px, 1 channel (grey), resize stretch"  # params.yaml's, as a run reads them
    assert any(line.startswith("note: tgt: 24 of 24 sampled images are in colour, and data.channels is 1") and
               "-S data.channels=3 keeps it" in line for line in lines), proc.stdout
    assert "note: src:" not in proc.stdout  # the grey source is no news
    rgb = _check(root, "--channels", "3").stdout
    assert rgb.splitlines()[0] == "read as 16 px, 3 channels (RGB), resize stretch" and "in colour" not in rgb and "is grey" not in rgb
    grey = make_folders(tmp_path / "grey", per_class=4)  # PNGs in L, RGB, RGBA and P modes, all grey
    said = _check(grey, "--channels", "3").stdout
    assert "note: every sampled image of src and tgt is grey, and data.channels is 3" in said
    assert "is grey" not in _check(grey).stdout


def test_domains_that_store_colour_in_different_profiles_are_noted(tmp_path):
    """A target of phone photos tagged Display P3 beside an untagged source: nothing converts colour, so
    the difference is part of the measured shift, and check-data says so (prepare too, from the same sample); a target tagged
    sRGB, or a run read as grey, gets no such note."""
    from PIL import Image

    from augment.colour import colour_profiles
    from tests.conftest import rgb_profile

    root = make_folders(tmp_path / "raw", per_class=4)
    for path in sorted((root / "tgt").rglob("*.png")):
        Image.open(path).convert("RGB").save(path, icc_profile=rgb_profile("Display P3 1x"))
    assert colour_profiles({"tgt": sorted((root / "tgt").rglob("*.png"))})["tgt"] == {"Display P3 1x": 24}
    out = _check(root, "--channels", "3").stdout
    assert ("note: the domains store colour differently (src: no profile in 24 of 24 sampled files; tgt: 'Display P3 1x' in 24 of "
            "24 sampled files). Files are read as stored, without colour management") in out, out
    assert out.count("-S data.colour_profiles=srgb converts them to sRGB as they are read") == 1
    assert "store colour differently" not in _check(root).stdout  # read as grey
    converted = _check(root, "--channels", "3", "--colour-profiles", "srgb").stdout
    assert converted.startswith("read as 16 px, 3 channels (RGB), resize stretch, colour profiles converted to sRGB\n")
    assert "store colour differently" not in converted and " -S data.colour_profiles=srgb" in converted.splitlines()[-1]
    for path in sorted((root / "tgt").rglob("*.png")):
        Image.open(path).save(path, icc_profile=rgb_profile("sRGB IEC61966", gamma=2.2))
    assert "store colour differently" not in _check(root, "--channels", "3").stdout


def test_a_target_test_set_in_other_class_proportions_is_noted(tmp_path):
    root = make_folders(tmp_path / "raw", per_class=12)
    for k in range(11):  # class a is 1 of 25 target test images, a third of the source's
        (root / f"tgt/test/a/{k}.png").unlink()
    out = _check(root).stdout
    assert "note: Class proportions differ: the target test images are spread over the classes otherwise" in out
    assert "a: 4% against 33%" in out
    assert "Class proportions differ" not in _check(make_folders(tmp_path / "even", per_class=12)).stdout


def test_output_cut_short_by_the_reader_ends_quietly(tmp_path):
    """`check-data ... | head -1`: the reader closes the pipe early; no BrokenPipeError traceback."""
    root = make_folders(tmp_path / "raw", per_class=3)
    for k in range(2000):  # a listing of about 300 kB: more than a pipe holds, so writing it meets the closed pipe
        (root / "src/train/a" / f"notes_{k:04d}_{'x' * 80}.png").write_text("not an image")
    proc = subprocess.run(f"'{sys.executable}' -m pipelines.cli check-data '{root}' --source src --target tgt --list 0 | head -1",
                          shell=True, cwd=REPO, capture_output=True, text=True)
    assert proc.stdout.startswith("read as ") and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_a_params_file_given_and_not_there_stops_instead_of_checking_at_the_defaults(tmp_path):
    """`--params params.yml` (a typo) checked at the defaults (16 px) while the repository says otherwise;
    without --params and without a params.yaml, the defaults are what a run would take."""
    root = make_folders(tmp_path / "raw", per_class=2)
    proc = _check(root, "--params", str(tmp_path / "params.yml"))
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: --params {tmp_path / 'params.yml'}: no such file", proc.stdout + proc.stderr
    bare = subprocess.run([sys.executable, "-m", "pipelines.cli", "--repo", str(tmp_path), "check-data", str(root), "--source", "src",
                           "--target", "tgt"], cwd=REPO, capture_output=True, text=True)
    assert bare.returncode == 0 and bare.stdout.startswith("read as 16 px"), bare.stdout + bare.stderr
    assert bare.stdout.splitlines()[-2] == (f"note: no params.yaml in {tmp_path} (--repo): checked at the default params; the run "
                                            "below reads the project's, so start domain-augment in the project's repository (the folder "
                                            "with params.yaml and dvc.yaml), or give it as --repo DIR")


def test_a_folder_that_passes_is_given_the_run_that_reads_it(tmp_path):
    """check-data said ok and left the user to write the run's -S values, where a relative data.root
    is read from the repository, not from the folder check-data was given from. The command it now
    prints reads the same folder, with the flags as data keys, whatever the folder's name holds."""
    import shlex

    from pipelines.presets import check_overrides

    root = make_folders(tmp_path / "summer, 'winter' ü", per_class=2)
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "check-data", root.name, "--source", "src", "--target", "tgt",
                           "--image-size", "32", "--resize", "pad", "--repo", str(REPO)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = proc.stdout.splitlines()[-1].removeprefix("run it: ")
    words = shlex.split(said)
    assert words[:4] == ["domain-augment", "--repo", str(REPO), "run"] and words[4::2] == ["-S"] * len(words[5::2])
    data = check_overrides(REPO / "params.yaml", words[5::2]).data  # as `run -S` reads them
    assert (data.dataset, Path(data.root), data.source, data.target) == ("folders", root.resolve(), "src", "tgt")
    assert (data.image_size, data.resize) == (32, "pad")
    # Judged with another params file, the run it gives reads that file too: a run always reads the
    # repository's params.yaml, and the line left out what the check had judged by (here a size of 32)
    import yaml

    other = yaml.safe_load((REPO / "params.yaml").read_text())
    other["data"]["image_size"], other["classifier"]["steps"] = 32, 123
    (tmp_path / "team.yaml").write_text(yaml.safe_dump(other))
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "check-data", root.name, "--source", "src", "--target", "tgt",
                           "--repo", str(REPO), "--params", str(tmp_path / "team.yaml")], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and "read as 32 px" in proc.stdout, proc.stdout + proc.stderr
    words = shlex.split(proc.stdout.splitlines()[-1].removeprefix("run it: "))
    assert words[3:6] == ["run", "--preset", "team.yaml"], words  # as run reads it, from where it was started
    from pipelines.presets import preset_overrides

    read = check_overrides(REPO / "params.yaml", preset_overrides(tmp_path / words[5], REPO / "params.yaml") + words[7::2])
    assert (read.data.image_size, read.classifier.steps, Path(read.data.root)) == (32, 123, root.resolve())
    (tmp_path / "current").symlink_to(root.name)  # a link to this month's folder: the run follows the link, not today's target
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "check-data", "current", "--source", "src", "--target", "tgt",
                           "--repo", str(REPO)], cwd=tmp_path, capture_output=True, text=True)
    assert f"-S data.root={tmp_path / 'current'} " in proc.stdout.splitlines()[-1], proc.stdout
    broken = make_folders(tmp_path / "raw", per_class=2)
    for image in (broken / "src/train").rglob("*.png"):
        image.write_text("not an image")
    failed = _check(broken)  # a refusal gives no command
    assert failed.returncode == 2 and "run it:" not in failed.stdout, failed.stdout


def test_a_target_folder_copied_from_the_source_is_listed_image_by_image(tmp_path):
    """A target domain of the source's own pictures (a copy of the folder, or frames filed under both)
    passed without a word: every arm is then measured on no shift at all."""
    root = make_folders(tmp_path / "raw", per_class=3)
    shutil.copy(root / "src/train/b/2.png", root / "tgt/train/copied.png")
    proc = _check(root)
    assert proc.returncode == 0 and "domain copies: 1 target image(s) identical to source images" in proc.stdout, proc.stdout
    assert f"  {root}/src/train/b/2.png (src) = {root}/tgt/train/copied.png (tgt)" in proc.stdout.splitlines()
    assert "copy of the source" not in proc.stdout
    shutil.rmtree(root / "tgt")
    shutil.copytree(root / "src", root / "tgt")
    out = _check(root).stdout
    assert f"note: {root}/tgt: every target image is identical to a source image: the target domain is a copy" in out
    assert "domain copies: 18 target image(s) identical to source images" in out and out.count(" (src) = ") == 18, out  # one line per image


def test_uncommitted_edits_to_params_yaml_that_the_run_would_not_read_are_noted_before_its_line(tmp_path):
    """check-data judged the folder with the edited params.yaml, and the run it printed, in a worktree
    of HEAD, would read the committed one: a size of 32 checked, 16 run."""
    from tests.e2e import run

    repo, root = tmp_path / "repo", make_folders(tmp_path / "raw", per_class=2)
    repo.mkdir()
    shutil.copy(REPO / "params.yaml", repo / "params.yaml")
    run(["git", "init", "-q"], repo)
    run(["git", "add", "params.yaml"], repo)
    run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "p"], repo)
    assert "note: params.yaml has changes" not in _check(root, "--repo", str(repo)).stdout
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text().replace("image_size: 16 ", "image_size: 32 ", 1))
    out = _check(root, "--repo", str(repo)).stdout.splitlines()
    assert out[0].startswith("read as 32 px") and out[-1].startswith("run it: ")
    assert out[-2] == ("note: params.yaml has changes that are not committed: check-data read them, but `run` works in a worktree of "
                       "HEAD and reads the committed params.yaml; commit them before the run below, or add --in-place to it")


def test_arms_the_target_train_cannot_give_labels_to_are_named_before_the_run(tmp_path):
    """A flat target train (no class folders) makes target_few, cyclegan_few and the oracle
    unavailable: the user learnt it from the finished report, after their stages had run."""
    flat = _check(make_folders(tmp_path / "flat", per_class=2)).stdout
    assert (f"note: {tmp_path}/flat/tgt/train: no labeled images: target_few, cyclegan_few, oracle of classifier.arms will be unavailable, "
            "as they learn from labeled target train images, and the answer will have no upper bound (the oracle)") in flat
    labeled = make_folders(tmp_path / "labeled", per_class=2, flat_target_train=False)
    assert "will be unavailable" not in _check(labeled).stdout
    (tmp_path / "p.yaml").write_text((REPO / "params.yaml").read_text().replace("target_labels_per_class: 10", "target_labels_per_class: 0", 1))
    out = _check(labeled, "--params", str(tmp_path / "p.yaml")).stdout
    assert "note: data.target_labels_per_class is 0: target_few, cyclegan_few of classifier.arms will be unavailable" in out
    assert "oracle of classifier.arms" not in out


def test_arms_of_which_the_data_leaves_none_measurable_are_refused_by_check_data_and_by_the_run(tmp_path):
    """`classifier.arms: [target_few, oracle]` on a flat target train: check-data noted both
    unavailable and said "ok", and the run it printed trained, then stopped at evaluate ("no arm of
    classifier.arms could be measured"). Both now stop before any stage, by the arms."""
    import yaml

    from tests.e2e import env

    flat = make_folders(tmp_path / "flat", per_class=2)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["classifier"]["arms"] = ["target_few", "oracle"]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    proc = _check(flat, "--params", str(tmp_path / "p.yaml"))
    refusal = ("no arm of classifier.arms ['target_few', 'oracle'] can be measured on this data (target_few: it learns from labeled "
               "target train images, and the target train has none; oracle: it learns from labeled target train images, and the "
               "target train has none); add source_only, which needs no target label, to classifier.arms")
    assert proc.returncode == 2 and f"problem: {refusal}" in proc.stdout.splitlines(), proc.stdout
    assert proc.stdout.splitlines()[-1] == "not ok: the run would stop (see problems above)"
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "--repo", str(REPO), "run", "--in-place", "-S", "data.dataset=folders",
                           "-S", f"data.root={flat}", "-S", "data.source=src", "-S", "data.target=tgt", "-S",
                           "classifier.arms=[target_few,oracle]"], cwd=tmp_path, capture_output=True, text=True, env=env(), timeout=120)
    assert (proc.returncode, proc.stderr) == (2, f"error: {refusal}\n")  # no Prefect server, no stage: params.yaml untouched
    labeled = make_folders(tmp_path / "labeled", per_class=2, flat_target_train=False)
    assert _check(labeled, "--params", str(tmp_path / "p.yaml")).returncode == 0
    raw["data"]["target_labels_per_class"] = 0
    raw["classifier"]["arms"] = ["target_few", "cyclegan_few"]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    proc = _check(labeled, "--params", str(tmp_path / "p.yaml"))
    assert proc.returncode == 2 and "target_few: it sees data.target_labels_per_class labeled target images per class, and that is 0" in proc.stdout


def test_images_the_run_would_enlarge_many_times_are_noted_with_the_size_that_reads_them_as_they_are(tmp_path):
    """27-40 px signs checked at --image-size 128 said "ok" and nothing else: every image blown up 3-4x,
    at 10x the pixels for the GANs and classifiers."""
    root = make_folders(tmp_path / "raw", per_class=2, size=20)
    out = _check(root, "--image-size", "64").stdout
    for domain in ("src", "tgt"):
        assert (f"note: {domain}: the median image's shorter side is 20 px, and data.image_size is 64: half its images or more are "
                "enlarged 3.2x or more, which adds no detail and costs the GANs and classifiers 10x the pixels; --image-size 20 "
                "(-S data.image_size=20 in a run) reads them at about their own size") in out.splitlines(), out
    assert "enlarged" not in _check(root, "--image-size", "32").stdout  # 1.6x: a resize, not a blow-up


def test_classes_whose_names_differ_only_in_case_are_noted(tmp_path):
    """`Stop` and `stop` class folders in every split were two classes without a word: one folder once
    copied to macOS or Windows, and most likely one class."""
    root = make_folders(tmp_path / "raw", classes=("Stop", "stop", "yield"), per_class=2)
    out = _check(root).stdout.splitlines()
    assert ("note: classes Stop, stop differ only in case or in spaces at their ends: 2 classes here, but one folder on a "
            "file system that ignores case (macOS, Windows), where a copy merges them; if they are one class, put their images in "
            "one folder") in out, out
    assert not any("differ only in case" in line for line in _check(make_folders(tmp_path / "other", per_class=2)).stdout.splitlines())


def test_classes_kept_are_checked_alone_and_the_run_given_keeps_them(tmp_path):
    """--classes (data.classes): the other class folders are not read, which check-data says, with the
    flat target train it reads whole; the run it gives keeps the same classes."""
    import shlex

    from pipelines.presets import check_overrides

    root = make_folders(tmp_path / "raw", classes=("a", "b", "c", "d"), per_class=2)
    for image in (root / "src/train/d").glob("*.png"):
        image.write_text("not an image")  # a class left out: its files are not read
    proc = _check(root, "--classes", "c", "a")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "classes (2): a, c" in out and "src/train: 4 images (a 2, c 2)" in out and "rejected: 0 file(s)" in out
    assert f"note: data.classes keeps 2 of the 4 classes of {root}/src/train: the folders of b, d are not read, in any split" in out
    assert f"note: {root}/tgt/train: its 8 unlabeled images are all read, those of the classes data.classes leaves out too" in out
    words = shlex.split(out.splitlines()[-1].removeprefix("run it: "))
    assert check_overrides(REPO / "params.yaml", words[3::2]).data.classes == ["c", "a"]
    proc = _check(root, "--classes", "a", "e")
    assert proc.returncode == 2 and f"problem: data.classes: e not among the class folders of {root}/src/train (a, b, c, d)" in proc.stdout


def test_rgb_images_at_32_px_are_pointed_to_the_rgb_preset_before_the_run_line(tmp_path):
    """params.yaml's GAN and classifier sizes are set for the 16 px grey digits: a folder read as RGB at
    32 px gets a note naming presets/rgb32.yaml, which the run line does not add unasked; read through
    the preset, or as grey or at 16 px, there is no such note."""
    root = make_folders(tmp_path / "raw", per_class=2)
    out = _check(root, "--channels", "3", "--image-size", "32").stdout.splitlines()
    assert out[-2].startswith("note: RGB images read at 32 px, and the run below trains the GANs and classifiers at params.yaml's sizes")
    assert out[-2].endswith("add --preset presets/rgb32.yaml to the run below to use it") and "--preset" not in out[-1]
    preset = _check(root, "--params", "presets/rgb32.yaml").stdout
    assert "presets/rgb32.yaml is the measured starting point" not in preset and " run --preset presets/rgb32.yaml " in preset
    for other in (("--channels", "1", "--image-size", "32"), ("--channels", "3", "--image-size", "16")):
        assert "presets/rgb32.yaml is the measured starting point" not in _check(root, *other).stdout
