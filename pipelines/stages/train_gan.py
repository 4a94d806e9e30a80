"""DVC stage `train_gan@<gan>-<seed>`: learn the source<->target mapping from unpaired images.

One stage per GAN kind and `gan.seeds` entry. Writes artifacts/gan/<gan>/<seed>/: G_st.pt, G_ts.pt (generators), D_s.pt, D_t.pt, samples.png
(source | translated | reconstructed), C.pt (the semantic classifier, when used) and history.csv, and
artifacts/gan_curves/<gan>/<seed>/ (dvclive's curves, one TSV per loss: a plots output of the stage in
dvc.yaml, so `dvc plots show` draws every kind and seed that ran), all at once when training ends. While training, resumable checkpoints go to --checkpoint-dir (in
dvc.yaml: DVC's scratch folder .dvc/tmp/checkpoints/<gan>/<seed>, which `dvc repro` does not delete):
a killed run resumes from the last one when params and data are unchanged, and starts over
otherwise. The checkpoint is removed once the outputs are in place.

Several GPUs (or CPU processes): launch it with torchrun, e.g.
    torchrun --standalone --nproc_per_node=4 -m pipelines.stages.train_gan --gan cyclegan --seed 0
(`runtime.launcher` in params.yaml does this inside `dvc repro`). Each process trains on its own
batches with averaged gradients; rank 0 alone writes checkpoints and outputs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from augment.arms import GANS
from augment.acceleration import Acceleration
from augment.cyclegan import CycleGANConfig, is_conditional, save_generator, train_cyclegan, translate
from augment.dataset import load_prepared
from augment.few_labels import consumer_file
from augment.io import atomic_dir, save_torch, write_csv
from augment.prepared_views import view_file
from augment.samples import GAN_SAMPLE_ROWS, save_grid
from pipelines.code_deps import code_pin
from pipelines.config import as_config, load_params
from pipelines import cpu_threads
from pipelines.runtime import TimeLeft, add_timings_arg, gan_stage_parser, init_distributed, run_stage, stage_timer
from pipelines.workspace import sibling_copies



PROJECT = Path(__file__).resolve().parents[2]  # the folder holding augment/, models/ and pipelines/


def _fingerprint(cfg, prepared_dir: Path, labels_file: Path, runtime: dict) -> str:
    """What a checkpoint must have been made with to be resumed: the GAN's config, the prepared images
    it reads (their view's sha256: paths, labels and pixels, which data.image_size, channels and resize
    change), the labels it sees, this stage's code, and how it computes (`runtime`: the precision
    and device kind, and the processes, whose count sets the global batch)."""
    h = hashlib.sha256(json.dumps(dataclasses.asdict(cfg), sort_keys=True).encode())
    h.update(json.dumps(runtime, sort_keys=True).encode())
    h.update(view_file(prepared_dir, "gan").read_bytes())
    h.update(labels_file.read_bytes())
    h.update(json.dumps(code_pin("pipelines.stages.train_gan", PROJECT), sort_keys=True).encode())
    return h.hexdigest()


CHECKPOINT_KEYS = {"models", "step", "history", "rng", "fingerprint"}  # what every checkpoint holds (augment/cyclegan.py)


def _resumable(ckpt_dir: Path, fingerprint: str, name: str, steps: int) -> tuple[dict | None, Path | None]:
    """The checkpoint to resume from and its path, or (None, None). Its own folder first; then, for a
    checkpoint folder given relative to the checkout, the same folder in the main checkout and in
    every run worktree (`domain-augment run` works in a new worktree each time: an interrupted run's
    GAN is picked up by the next run, in place or isolated), the furthest one made with this
    fingerprint. Any other is ignored, and said so when it is this stage's own; so is one whose
    contents are not a checkpoint of `steps` steps (a file edited or written by something else). Its own
    wins a tie; a further one elsewhere wins over it (a run in place after an isolated run got further)."""
    own = (ckpt_dir / "checkpoint.pt").resolve()
    places = sibling_copies(ckpt_dir / "checkpoint.pt", Path.cwd()) if not ckpt_dir.is_absolute() else [own]
    best: tuple[dict | None, Path | None] = (None, None)
    for path in (p for p in places if p.is_file()):
        try:  # read onto the CPU; training restores every tensor onto its own device
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # an unreadable or foreign file is not a reason to fail the stage
            if path == own:
                print(f"{name}: ignoring {ckpt_dir / 'checkpoint.pt'}, it cannot be read ({type(exc).__name__})", flush=True)
            continue
        if not isinstance(blob, dict) or blob.get("fingerprint") != fingerprint:
            if path == own:
                print(f"{name}: ignoring {ckpt_dir / 'checkpoint.pt'}, it was made with other params or data", flush=True)
            continue
        if not (CHECKPOINT_KEYS <= blob.keys() and isinstance(blob["step"], int) and 0 <= blob["step"] <= steps):
            if path == own:
                print(f"{name}: ignoring {ckpt_dir / 'checkpoint.pt'}, its contents are not a checkpoint of this stage's "
                      f"{steps} steps", flush=True)
            continue
        if best[0] is None or blob["step"] > best[0]["step"]:  # its own first (places' order): the first wins a tie
            best = (blob, path)
    return best


def main(argv: list[str] | None = None) -> None:
    ap = gan_stage_parser(__doc__, GANS)
    ap.add_argument("--labels", type=Path, default=Path("data/labels"), help="the few_labels stage's folder")
    ap.add_argument("--out", type=Path, default=None, help="default: artifacts/gan/<gan>/<seed>")
    ap.add_argument("--curves", type=Path, default=None, help="default: artifacts/gan_curves/<gan>/<seed>")
    ap.add_argument("--checkpoint-dir", type=Path, default=None, help="default: <out>.checkpoint")
    add_timings_arg(ap)
    args = ap.parse_args(argv)
    params = load_params(args.params)
    gp = getattr(params.gan, args.gan)
    out = args.out or Path("artifacts/gan") / args.gan / str(args.seed)
    curves = args.curves or Path("artifacts/gan_curves") / args.gan / str(args.seed)
    name = f"train_gan@{args.gan}-{args.seed}"
    device, rank, world = init_distributed(params.runtime.device, params.runtime.threads)
    cfg = as_config(gp, CycleGANConfig, seed=args.seed, conditional=gp.conditional)
    labels_file = consumer_file(args.labels, gan=args.gan)
    data = load_prepared(args.prepared, few_labels=labels_file)
    # uint8 as stored: a quarter of float32's memory, converted a batch at a time as training draws it
    source, _ = data.labeled("source", "train", uint8=True)
    target = data.images("target", "train", uint8=True)
    # The few visible target labels this GAN's file shows (-1 elsewhere): the conditional GAN's file lists
    # them, the CycleGAN's none (the few_labels stage decides).
    target_labels = data.visible_target_labels("few")
    fingerprint = _fingerprint(cfg, args.prepared, labels_file,
                               {"precision": params.runtime.precision, "device": device.type, "processes": world})

    ckpt_dir = args.checkpoint_dir or out.with_name(out.name + ".checkpoint")
    ckpt_path = ckpt_dir / "checkpoint.pt"
    resume, found = _resumable(ckpt_dir, fingerprint, name, cfg.steps)
    if rank == 0:
        if found is None or found != ckpt_path.resolve():
            shutil.rmtree(ckpt_dir, ignore_errors=True)  # never mix two runs' curves or weights
        if found is not None and found != ckpt_path.resolve():  # another checkout's: copied, its folder left as it is
            shutil.copytree(found.parent, ckpt_dir)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    if found is not None:
        print(f"{name}: resuming from {found} at step {resume['step']}/{cfg.steps}", flush=True)
    if world > 1:
        torch.distributed.barrier()

    from dvclive import Live

    live = None
    if rank == 0:
        # The curves start anew from the checkpoint's history, not from dvclive's files of the last run: those
        # hold the steps logged after the checkpoint (written twice after a resume), and a kill or a full disk
        # while dvclive rewrote its metrics.json left a file that stopped every later resume.
        shutil.rmtree(ckpt_dir / "live", ignore_errors=True)
        live = Live(dir=str(ckpt_dir / "live"), dvcyaml=None, save_dvc_exp=False, report=None)

    def log_curves(step: int, losses: dict) -> None:
        live.step = step
        for k, v in losses.items():
            if k not in ("seconds", "step"):
                live.log_metric(k, v)
        live.next_step()

    for row in resume["history"] if resume is not None and live is not None else []:
        log_curves(row["step"], row)
    time_left = TimeLeft(cfg.steps)

    def on_log(step: int, losses: dict) -> None:
        losses = {**losses, "threads": cpu_threads.adapt()}  # gives cores back to (or takes them from) other jobs
        log_curves(step, losses)
        print(f"{name} step {step}/{cfg.steps} " + " ".join(f"{k}={v:.4g}" for k, v in losses.items()) + time_left(step), flush=True)

    def checkpoint(step: int, state: dict) -> None:
        save_torch({**state, "fingerprint": fingerprint}, ckpt_path)

    with stage_timer(name, args.timings_dir, write=rank == 0) as info:
        info["device"] = str(device) if world == 1 else f"{device.type} x {world} processes"
        t0, first_step = time.perf_counter(), resume["step"] if resume is not None else 0
        try:
            nets, state = train_cyclegan(
                source.images, target, cfg, source_labels=source.labels, target_labels=target_labels,
                num_classes=len(data.classes), device=device, on_log=on_log,
                checkpoint=checkpoint, checkpoint_every=gp.checkpoint_every, resume=resume,
                accel=Acceleration.choose(device, precision=params.runtime.precision, compile=params.runtime.compile),
            )
        except FloatingPointError as exc:
            raise FloatingPointError(f"{name}: {exc} (gan.{args.gan}.lr is {gp.lr:g}, lambda_cycle {gp.lambda_cycle:g}, "
                                     f"lambda_semantic {gp.lambda_semantic:g})") from None
        info["steps"] = state.step
        # image pairs (one source and one target image) a second, all processes together, set-up included
        info["images_per_s"] = {"train_pairs": round((state.step - first_step) * cfg.batch_size * world / (time.perf_counter() - t0), 1)}
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    if rank != 0:
        return  # replicas hold the same weights; rank 0 writes the outputs
    live.end()
    with atomic_dir(curves) as tmp:
        shutil.copytree(ckpt_dir / "live" / "plots" / "metrics", tmp, dirs_exist_ok=True)
    with atomic_dir(out) as tmp:
        for net in ("G_st", "G_ts"):
            save_generator(getattr(nets, net), cfg, data.channels, tmp / f"{net}.pt", num_classes=len(data.classes))
        for net in ("D_s", "D_t", "C") if nets.C is not None else ("D_s", "D_t"):
            save_torch(getattr(nets, net).state_dict(), tmp / f"{net}.pt")
        write_csv(pd.DataFrame(state.history), tmp / "history.csv")
        # Fixed source test images (never trained on): source | G(source) | F(G(source)).
        src, _ = data.labeled("source", "test")
        idx = torch.linspace(0, len(src) - 1, gp.sample_count).long()
        labels = src.labels[idx] if is_conditional(nets.G_st) else None
        src = src.images
        fake = translate(nets.G_st, src[idx], labels, device=device, precision=params.runtime.precision)
        rec = translate(nets.G_ts, fake, device=device, precision=params.runtime.precision)
        save_grid([src[idx], fake, rec], tmp / "samples.png", labels=GAN_SAMPLE_ROWS)
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # finished: the outputs replace the checkpoint
    print(f"{name}: {state.step} steps on {info['device']}; samples -> {out / 'samples.png'}")


if __name__ == "__main__":
    run_stage(main)
