"""stage_timer: the timings file each stage writes beside its outputs (collected into run.wall_seconds)."""
import json

import pytest

from pipelines.runtime import stage_timer


def test_a_block_that_does_almost_nothing_still_records_a_positive_time(tmp_path):
    # test_time's stage only writes a status file: its block takes microseconds, and a time
    # rounded to milliseconds recorded 0 s for it
    for _ in range(20):
        with stage_timer("train_classifier@test_time-0", tmp_path) as info:
            info["note"] = "nothing trained"
        written = json.loads((tmp_path / "train_classifier@test_time-0.json").read_text())
        assert written["stage"] == "train_classifier@test_time-0" and written["note"] == "nothing trained"
        assert 0 < written["wall_seconds"] < 1


def test_a_failed_block_writes_no_timings_and_keeps_the_last_good_one(tmp_path):
    with stage_timer("prepare", tmp_path):
        pass
    before = (tmp_path / "prepare.json").read_text()
    with pytest.raises(RuntimeError):
        with stage_timer("prepare", tmp_path):
            raise RuntimeError("stage failed")
    assert (tmp_path / "prepare.json").read_text() == before


def test_time_left_counts_from_the_first_progress_line_of_this_process():
    from pipelines.runtime import TimeLeft

    now = [100.0]
    left = TimeLeft(800, clock=lambda: now[0])
    assert left(400) == ""  # a resumed run's first line: no pace yet (set-up and compilation are behind it)
    now[0] += 20.0
    assert left(450) == " eta=2m20s"  # 50 steps in 20 s, 350 to go at that pace
    now[0] += 7000.0
    assert left(500) == " eta=5h51m"  # 100 steps in 7020 s, 300 to go
    assert TimeLeft(10, clock=lambda: 0.0)(10) == ""
