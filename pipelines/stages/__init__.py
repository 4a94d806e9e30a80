"""One module per DVC stage: read params, call `augment`, write the stage's declared outs."""
import os
import sys

from pipelines.warm_start import hand_over

# Before torch (and its OpenMP runtime) loads: idle OpenMP threads sleep instead of spinning, so a
# stage sharing its cores with another job slows down gracefully (see pipelines/cpu_threads.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

hand_over()  # where a warm server is up, it runs this stage and this process exits as the stage does (pipelines/warm_start.py)


def stage_name() -> str:
    """`python -m pipelines.stages.train_gan --gan cgan --seed 1` -> "train_gan@cgan-1", as dvc.yaml names
    the matrix stage; "prepare" for one that is not (sys.argv[0] is "-m" until runpy has found the module)."""
    args = sys.orig_argv
    if "-m" in args[:-1]:
        name = args[args.index("-m") + 1].rpartition(".")[2]
    else:
        name = os.path.basename(sys.argv[0]).removesuffix(".py") or "stage"
    item = {flag: args[i + 1] for i, flag in enumerate(args[:-1]) if flag in ("--gan", "--arm", "--seed")}
    kind = item.get("--gan") or item.get("--arm")
    return f"{name}@{kind}-{item['--seed']}" if kind and "--seed" in item else name


def _interrupted_while_starting(kind, value, tb, _default=sys.excepthook):
    """Ctrl-C while a stage is still importing (torch takes seconds), before `run_stage` handles it:
    one line instead of a traceback through the import machinery. Nothing has been written yet, and
    Python still exits as a process stopped by SIGINT."""
    if issubclass(kind, KeyboardInterrupt):
        print(f"{stage_name()}: interrupted while starting; nothing was written", file=sys.stderr)
    else:
        _default(kind, value, tb)


sys.excepthook = _interrupted_while_starting
