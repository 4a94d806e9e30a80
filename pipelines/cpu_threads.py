"""How many CPU threads torch should use: the cores that other processes leave idle.

torch's default is one thread per core, the fastest on an idle machine and by far the slowest
on a busy one: OpenMP threads wait for each other at every operation, and a thread that shares
its core with another process holds all of them up. Measured on 2 cores at the default 16 px GAN
step next to one other CPU-bound process: 2 threads 2.9 s/step, 1 thread 0.20 s/step; alone,
2 threads are about 1.4x faster than 1 (benchmarks/RESULTS.md).

`runtime.threads: 0` (auto) therefore measures, from /proc/stat, how busy the cores this process
may run on were with *other* processes' work (this process's own CPU time is subtracted), and
uses the cores left idle, at least one. Long stages call `adapt()` again as they go, so a run
that starts on an idle machine gives a core back when another job arrives, and takes it back once
that job ends. A fixed `runtime.threads: N` is used as given. Where /proc/stat does not exist,
auto keeps torch's default.

When the Prefect flow runs several stages at once it gives each a share of the cores in
`STAGE_CORES_ENV`; auto then uses at most that many (a fixed `runtime.threads` still wins).

OpenMP's wait policy is set to PASSIVE (before torch loads, in `pipelines/stages/__init__.py`):
waiting threads sleep instead of spinning, which limits the damage between two measurements.
"""
from __future__ import annotations

import os
import time

PROBE_SECONDS = 0.25  # first measurement at stage start
STAGE_CORES_ENV = "DOMAIN_AUGMENT_STAGE_CORES"  # set by pipelines.flows for stages that run side by side


def usable_cores() -> list[int]:
    """The cores this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def _busy_seconds(cores: list[int]) -> float | None:
    """CPU seconds of work on `cores` since boot (user+nice+system+irq+softirq), or None. Steal time is
    left out: it is the hypervisor running other machines, which rises with this process's own work
    and which fewer threads here do not avoid."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    wanted = {f"cpu{c}" for c in cores}
    ticks = 0
    for line in lines:
        parts = line.split()
        if parts and parts[0] in wanted:
            v = [int(x) for x in parts[1:9]]
            ticks += v[0] + v[1] + v[2] + v[5] + v[6]  # idle (3), iowait (4) and steal (7) left out
    return ticks / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


class ThreadPolicy:
    """`requested` > 0: that many threads. 0: the idle cores, re-measured at each `adapt()`."""

    def __init__(self, requested: int = 0):
        self.requested = requested
        self.cores = usable_cores()
        self.share = int(os.environ.get(STAGE_CORES_ENV) or 0)  # 0: no share given, all cores
        self.threads: int | None = None
        self._last = self._snapshot()

    def _snapshot(self) -> tuple[float | None, float, float]:
        return _busy_seconds(self.cores), _own_seconds(), time.monotonic()

    def others_busy(self) -> float | None:
        """Cores' worth of other processes' work since the last call (or construction)."""
        then, now = self._last, self._snapshot()
        self._last = now
        if then[0] is None or now[0] is None or now[2] - then[2] <= 0:
            return None
        others = (now[0] - then[0]) - (now[1] - then[1])
        return max(0.0, others / (now[2] - then[2]))

    def choose(self) -> int | None:
        if self.requested:
            return self.requested
        busy = self.others_busy()
        if busy is None:
            return self.share or None
        return max(1, min(self.share or len(self.cores), round(len(self.cores) - busy)))

    def adapt(self) -> int:
        """Set torch's thread count to `choose()` when it changed; returns the count in use."""
        import torch

        n = self.choose()
        if n is not None and n != self.threads:
            torch.set_num_threads(n)
            self.threads = n
        return torch.get_num_threads()


_policy: ThreadPolicy | None = None


def start(requested: int = 0, *, probe_seconds: float = PROBE_SECONDS) -> int:
    """At stage start: measure for `probe_seconds` (auto only) and set torch's threads."""
    global _policy
    _policy = ThreadPolicy(requested)
    if not requested:
        time.sleep(probe_seconds)
    return _policy.adapt()


def idle_cores(requested: int = 0, *, probe_seconds: float = PROBE_SECONDS) -> int:
    """For work outside torch (prepare's decoding threads): `requested`, or the cores that other
    processes left idle over `probe_seconds` (within the flow's share), at least one."""
    policy = ThreadPolicy(requested)
    if not requested:
        time.sleep(probe_seconds)
    return policy.choose() or len(policy.cores)


def adapt() -> int | None:
    """Re-measure since the last call and adjust (auto only); None before `start()`."""
    return _policy.adapt() if _policy is not None else None
