"""DVC stage `train_gan@<gan>`: learn the source<->target mapping from unpaired images.

Writes artifacts/gan/<gan>/: G_st.pt, G_ts.pt (generators), D_s.pt, D_t.pt, samples.png
(source | translated | reconstructed), history.csv, live/ (dvclive curves), checkpoint.pt while
training. The folder is a persistent DVC out: a killed run resumes from its last checkpoint
when params and data are unchanged, and starts over otherwise.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import torch

from augment.cyclegan import save_generator, train_cyclegan, translate
from augment.dataset import load_prepared
from augment.io import atomic_path, write_csv, write_json
from augment.samples import save_grid
from pipelines.config import load_params
from pipelines.runtime import run_stage, select_device, stage_timer

GANS = ("cyclegan",)


def _fingerprint(cfg, prepared_dir: Path) -> str:
    h = hashlib.sha256(json.dumps(dataclasses.asdict(cfg), sort_keys=True).encode())
    h.update((prepared_dir / "manifest.csv").read_bytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gan", required=True, choices=GANS)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    ap.add_argument("--out", type=Path, default=None, help="default: artifacts/gan/<gan>")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    gp = getattr(params.gan, args.gan)
    out = args.out or Path("artifacts/gan") / args.gan
    device = select_device(params.runtime.device, params.runtime.threads)
    cfg = gp.train_config()
    data = load_prepared(args.prepared)
    source, target = data.images("source", "train"), data.images("target", "train")
    fingerprint = _fingerprint(cfg, args.prepared)

    ckpt_path = out / "checkpoint.pt"
    resume = None
    if ckpt_path.is_file():
        blob = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if blob.get("fingerprint") == fingerprint:
            resume = blob
            print(f"train_gan@{args.gan}: resuming from {ckpt_path} at step {blob['step']}/{cfg.steps}")
    if resume is None and out.exists():
        shutil.rmtree(out)  # stale outputs from other params or data: never mix them with this run
    out.mkdir(parents=True, exist_ok=True)

    from dvclive import Live

    live = Live(dir=str(out / "live"), dvcyaml=None, save_dvc_exp=False, report=None, resume=resume is not None)

    def on_log(step: int, losses: dict) -> None:
        live.step = step
        for k, v in losses.items():
            if k != "seconds":
                live.log_metric(k, v)
        live.next_step()
        print(f"train_gan@{args.gan} step {step}/{cfg.steps} " + " ".join(f"{k}={v:.4g}" for k, v in losses.items()), flush=True)

    def checkpoint(step: int, state: dict) -> None:
        with atomic_path(ckpt_path) as tmp:
            torch.save({**state, "fingerprint": fingerprint}, tmp)

    record: dict = {"device": str(device)}
    with stage_timer(f"train_gan@{args.gan}", record):
        nets, state = train_cyclegan(
            source, target, cfg, device=device, on_log=on_log,
            checkpoint=checkpoint, checkpoint_every=gp.checkpoint_every, resume=resume,
        )
        live.end()
        channels = data.channels
        for name in ("G_st", "G_ts"):
            save_generator(getattr(nets, name), cfg, channels, out / f"{name}.pt")
        for name in ("D_s", "D_t"):
            with atomic_path(out / f"{name}.pt") as tmp:
                torch.save(getattr(nets, name).state_dict(), tmp)
        write_csv(pd.DataFrame(state.history), out / "history.csv")
        # Fixed source test images (never trained on): source | G(source) | F(G(source)).
        src = data.images("source", "test")
        idx = torch.linspace(0, len(src) - 1, gp.sample_count).long()
        fake = translate(nets.G_st, src[idx], device=device)
        rec = translate(nets.G_ts, fake, device=device)
        save_grid([src[idx], fake, rec], out / "samples.png")
    ckpt_path.unlink(missing_ok=True)  # finished: the final weights replace the checkpoint
    record["steps"] = state.step
    write_json(record, out / "stage.json")
    print(f"train_gan@{args.gan}: {state.step} steps in {record['wall_seconds']:.0f}s on {device}; samples -> {out / 'samples.png'}")


if __name__ == "__main__":
    run_stage(main)
