"""DVC stage `train_classifier@<arm>-<seed>`: train one arm's classifier.

Writes artifacts/classifiers/<arm>/<seed>/: model.pt and status.json. It reads the train splits
alone (and depends on `data/prepared/views/classifier.json`, their pin): `evaluate` predicts the
test sets with every classifier, so new test images re-train none. An arm that cannot exist on this
data (e.g. `oracle` with a flat target train split) writes status.json with status "unavailable"
and the reason, and no model, so the pipeline still completes and the report says why the arm is
missing.
"""
from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

from augment.arm_inputs import arm_reads, check_pinned, param_values
from augment.arms import ARMS, Arm, ArmUnavailable, gan_seed_for, training_parts, transformed_parts
from augment.few_labels import consumer_file, few_label_counts
from augment.io import atomic_dir, write_json
from pipelines.config import ParamsError, as_config, load_params
from pipelines import cpu_threads
from pipelines.runtime import TimeLeft, add_timings_arg, init_distributed, launched_rank, run_stage, stage_timer

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--arm", required=True)
    ap.add_argument("--seed", required=True, type=int)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    ap.add_argument("--synthetic", type=Path, default=Path("data/synthetic"))
    ap.add_argument("--labels", type=Path, default=Path("data/labels"), help="the few_labels stage's folder")
    ap.add_argument("--arm-inputs", type=Path, default=Path("data/arms"), help="the arm_inputs stage's folder: what each arm may read")
    ap.add_argument("--out", type=Path, default=None, help="default: artifacts/classifiers/<arm>/<seed>")
    add_timings_arg(ap)
    args = ap.parse_args(argv)
    if args.arm not in ARMS:
        raise ParamsError(f"--arm {args.arm!r} is not an arm. Valid: {', '.join(ARMS)}")
    arm = ARMS[args.arm]
    params = load_params(args.params, build_transforms=arm.classic)  # only the classic arms apply them
    out = args.out or Path("artifacts/classifiers") / args.arm / str(args.seed)
    gan_seed = gan_seed_for(args.seed, params.gan.seeds) if arm.gan else None
    check_pinned(args.arm_inputs / f"{arm.name}.json",
                 arm_reads(arm, labels=args.labels, synthetic=args.synthetic, gan_seeds=params.gan.seeds, gan_seed=gan_seed),
                 param_values(arm, params.model_dump(mode="json")))
    record: dict = {"arm": arm.name, "seed": args.seed}
    if arm.gan:
        record["gan_seed"] = gan_seed
    name = f"train_classifier@{arm.name}-{args.seed}"
    writes = launched_rank() == 0  # under torchrun, the replicas train alike and rank 0 writes the outputs
    with stage_timer(name, args.timings_dir, write=writes) as timing, atomic_dir(out) if writes else contextlib.nullcontext() as tmp:
        if arm.test_time:  # nothing to train (and no torch to import): evaluate adapts the source_only classifiers
            how = ("with BatchNorm statistics re-estimated on the unlabeled target train images" if arm.renormalize
                   else f"on target test translated target->source by G_ts of {arm.gan} seed {gan_seed}")
            record.update(status="test_time", uses="source_only", reason=f"evaluated {how}")
            if writes:
                write_json(record, tmp / "status.json")
                print(f"{name}: no training; evaluate runs source_only seed {args.seed} {how}")
            return
        record.update(_train(arm, args, params, name, tmp, timing))
        if writes:
            write_json(record, tmp / "status.json")


def _train(arm: Arm, args: argparse.Namespace, params, name: str, tmp: Path, timing: dict) -> dict:
    """Train the arm's classifier into `tmp`; the status.json fields. Training images/s go into
    `timing` (the stage's timings file, not its outputs)."""
    from augment.classic import classic_transform
    from augment.classify import ClassifierConfig, save_classifier, train_classifier
    from augment.dataset import load_prepared, load_synthetic
    from augment.mixing import MixedBatches

    cp = params.classifier
    record: dict = {}
    data = load_prepared(args.prepared, few_labels=consumer_file(args.labels, arm=arm.name))
    # uint8 as stored (a quarter of float32's memory): the batches convert what they take
    source, _ = data.labeled("source", "train", uint8=True)
    target = None if arm.target_labels == "none" else data.labeled("target", "train", visible=arm.target_labels, uint8=True)[0]
    if arm.target_labels == "few":  # what data.target_labels_per_class really gave, for the report (it is capped per class)
        record["target_labels"] = few_label_counts(data.manifest)
    synthetic = load_synthetic(args.synthetic / arm.gan / str(gan_seed_for(args.seed, params.gan.seeds)), uint8=True)[0] if arm.gan else None
    try:
        parts = training_parts(arm, source=source, target=target, synthetic=synthetic, synthetic_fraction=params.mix.synthetic_fraction,
                               target_fraction=params.mix.target_fraction)
    except ArmUnavailable as exc:
        if launched_rank() == 0:
            print(f"{name}: arm unavailable on this data: {exc}")
        return {**record, "status": "unavailable", "reason": str(exc)}
    device, rank, world = init_distributed(params.runtime.device, params.runtime.threads)
    record["device"] = str(device) if world == 1 else f"{device.type} x {world} processes"
    draws = args.seed + 1_000_003 * rank  # each process its own batches and transforms (rank 0: the seed's own, as with one process)
    transforms = {part: classic_transform(params.classic.transforms, seed=draws) for part in transformed_parts(arm, parts)}
    batches = MixedBatches(parts=parts, batch_size=cp.batch_size, seed=draws, transforms=transforms)
    if rank == 0:
        print(f"{name}: {batches!r}" + (f" in each of {world} processes" if world > 1 else ""), flush=True)
    settings = as_config(cp, ClassifierConfig)
    t0, time_left = time.perf_counter(), TimeLeft(cp.steps)
    try:
        model = train_classifier(
            batches, settings, in_channels=data.channels, num_classes=len(data.classes),
            seed=args.seed, device=device, precision=params.runtime.precision,
            on_log=lambda step, m: print(f"{name} step {step}/{cp.steps} loss={m['loss']:.4f} threads={cpu_threads.adapt()}{time_left(step)}",
                                         flush=True),
        )
    except FloatingPointError as exc:
        raise FloatingPointError(f"{name}: {exc} (classifier.lr is {cp.lr:g}, classifier.weight_decay {cp.weight_decay:g})") from None
    trained = time.perf_counter() - t0
    if world > 1:
        import torch

        torch.distributed.destroy_process_group()
    if rank != 0:
        return {}  # its replica equals rank 0's, which writes
    save_classifier(model, settings, in_channels=data.channels, num_classes=len(data.classes), path=tmp / "model.pt")
    timing["images_per_s"] = {"train": round(settings.steps * settings.batch_size * world / trained, 1)}  # all processes
    print(f"{name}: trained in {trained:.1f} s; evaluate reads the test sets with it")
    return {**record, "status": "trained"}


if __name__ == "__main__":
    run_stage(main)
