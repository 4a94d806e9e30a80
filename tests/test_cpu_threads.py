"""CPU threads follow the cores that other processes leave idle (runtime.threads: 0)."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pipelines import cpu_threads
from pipelines.cpu_threads import ThreadPolicy
from tests.conftest import REPO

# These tests measure what other processes use of the cores: a test running beside them in another
# worker would count as a neighbour, so they run alone (pytest -m alone; make test runs them last).
pytestmark = pytest.mark.alone

needs_proc_stat = pytest.mark.skipif(ThreadPolicy().others_busy() is None, reason="needs Linux /proc/stat")


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process `pid` has used, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(policy: ThreadPolicy, seconds: float, work=None) -> float:
    policy.others_busy()  # start a fresh window
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        work() if work else time.sleep(0.05)
    return policy.others_busy()


def test_a_fixed_count_is_used_as_given():
    assert cpu_threads.start(1) == 1 == torch.get_num_threads()


def test_decoding_threads_follow_the_same_rule_without_touching_torch(monkeypatch):
    """prepare's decoding threads: the count given, else the idle cores within the flow's share."""
    before = torch.get_num_threads()
    assert cpu_threads.idle_cores(3) == 3
    assert 1 <= cpu_threads.idle_cores(probe_seconds=0.1) <= len(cpu_threads.usable_cores())
    monkeypatch.setenv(cpu_threads.STAGE_CORES_ENV, "1")
    assert cpu_threads.idle_cores(probe_seconds=0.1) == 1
    assert torch.get_num_threads() == before


@needs_proc_stat
def test_auto_gives_a_core_to_a_busy_neighbour_and_never_goes_below_one():
    policy = ThreadPolicy(0)
    baseline = _measure(policy, 1.0)
    # A real neighbour: one process spinning on a core for the whole measurement.
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 4\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.5)
        t0, used0 = time.monotonic(), _cpu_seconds(spinner.pid)
        busy = _measure(policy, 1.0)
        share = (_cpu_seconds(spinner.pid) - used0) / (time.monotonic() - t0)  # of a core, as the kernel counted it
        if share < 0.5:
            pytest.skip(f"the machine is too busy to tell: the neighbour got {share:.2f} of a core")
        assert busy - baseline > share - 0.4, (baseline, busy, share)  # the neighbour's use counts as busy
        policy.others_busy()
        time.sleep(1.0)
        expected = max(1, min(len(policy.cores), round(len(policy.cores) - policy.others_busy())))
        policy._last = policy._snapshot()
        time.sleep(1.0)
        threads = policy.adapt()
        assert 1 <= threads <= max(1, len(policy.cores) - 1) and abs(threads - expected) <= 1
    finally:
        spinner.kill()
        spinner.wait()


@needs_proc_stat
def test_own_work_does_not_count_as_another_process():
    policy = ThreadPolicy(0)
    x = torch.randn(512, 512)
    baseline = _measure(policy, 1.0)
    own = _measure(policy, 1.0, work=lambda: x @ x)  # this process keeps its cores busy
    assert own - baseline < 0.5, (baseline, own)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_the_flow_runs_one_more_stage_than_the_cores_it_may_use_on_cpu():
    # In a child process pinned to k cores: k + 1 stages at once (up to 4), one on a GPU.
    code = "import os; os.sched_setaffinity(0, {0}); from pipelines.flows import default_jobs; print(default_jobs('cpu'), default_jobs('cuda'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout.split()
    assert out == ["2", "1"]
