"""Which tensors get copied, by which operator, in what layout: read from a profiler trace.

A channels_last network pays an elementwise copy wherever a tensor reaches an operator in a layout
it does not take (cuDNN converts NCHW to NHWC, `.contiguous(memory_format)` inside a convolution,
a dtype cast the compiler left outside its kernels). A profile by kernel shows that time goes into
copies; this says which: for every `aten::copy_` (the operator that launches the copy kernels) the
operators it ran inside, the shape, strides and dtype of what it copied from and to, how often per
training step, and the device time of its kernels (where the trace links them to it). It also
counts the convolutions whose input or weight is not dense channels_last, the usual cause.

`cyclegan_step.py --profile` appends this to its profile file. Standalone, on a trace exported with
`prof.export_chrome_trace` from a profile taken with `record_shapes=True`:

    python benchmarks/layout_copies.py trace.json --steps 11
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

COPY = "aten::copy_"
CONVOLUTION = "aten::convolution"  # every backend's entry point (cuDNN, oneDNN), transposed ones included


def channels_last_dense(dims: list[int], strides: list[int]) -> bool:
    """Whether a 4-D tensor of `dims` with `strides` lies densely in NHWC order (a size-1 dimension's
    stride does not matter, as in torch's own check)."""
    if len(dims) != 4 or len(strides) != 4:
        return False
    n, c, h, w = dims
    want = (h * w * c, 1, w * c, c)
    return all(size == 1 or got == exp for size, got, exp in zip(dims, strides, want))


def _cpu_ops(events: list[dict]) -> list[dict]:
    ops = [e for e in events if e.get("ph") == "X" and e.get("cat") == "cpu_op"]
    ops.sort(key=lambda e: (e.get("pid"), e.get("tid"), e["ts"], -e.get("dur", 0)))
    return ops


def _parents(ops: list[dict]) -> dict[int, list[str]]:
    """For each op (by position in `ops`), the names of the ops it ran inside, innermost first."""
    chains: dict[int, list[str]] = {}
    stack: list[tuple[float, str, tuple]] = []  # (end, name, thread)
    for i, e in enumerate(ops):
        thread = (e.get("pid"), e.get("tid"))
        while stack and (stack[-1][2] != thread or stack[-1][0] <= e["ts"]):
            stack.pop()
        chains[i] = [name for _, name, _ in reversed(stack)]
        stack.append((e["ts"] + e.get("dur", 0), e["name"], thread))
    return chains


def _device_us_by_external_id(events: list[dict]) -> dict[int, float]:
    """Device time (us) of the kernels and memcpys each CPU op launched, keyed by its External id."""
    out: dict[int, float] = defaultdict(float)
    for e in events:
        if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset"):
            ext = e.get("args", {}).get("External id")
            if ext is not None:
                out[ext] += e.get("dur", 0)
    return out


def report(trace: dict | Path, steps: int, *, depth: int = 3) -> dict:
    """The copies and non-NHWC convolutions in a chrome trace of `steps` training steps."""
    events = json.loads(Path(trace).read_text())["traceEvents"] if not isinstance(trace, dict) else trace["traceEvents"]
    ops = _cpu_ops(events)
    if ops and not any("Input Dims" in e.get("args", {}) for e in ops):
        raise ValueError("the trace has no input shapes: profile with record_shapes=True")
    chains = _parents(ops)
    device_us = _device_us_by_external_id(events)
    copies: dict[tuple, dict] = {}
    convs = {"calls": 0, "not_channels_last": 0, "examples": []}
    for i, e in enumerate(ops):
        args = e.get("args", {})
        dims, strides, types = args.get("Input Dims", []), args.get("Input Strides", []), args.get("Input type", [])
        if e["name"] == COPY and len(dims) >= 2:
            # copy_(self = destination, src): which tensor, from which layout into which
            parents = [p for p in chains[i] if not p.startswith("## ")][:depth]
            key = (" < ".join(parents) or "(top level)", str(dims[1]), str(strides[1]), str(strides[0]),
                   f"{types[1]}->{types[0]}" if len(types) >= 2 else "")
            row = copies.setdefault(key, {"inside": key[0], "dims": dims[1], "src_strides": strides[1], "dst_strides": strides[0],
                                          "dtypes": key[4], "calls": 0, "device_us": 0.0})
            row["calls"] += 1
            row["device_us"] += device_us.get(args.get("External id"), 0.0)
        elif e["name"] == CONVOLUTION and len(dims) >= 2 and len(dims[0]) == 4:
            convs["calls"] += 1
            if not (channels_last_dense(dims[0], strides[0]) and channels_last_dense(dims[1], strides[1])):
                convs["not_channels_last"] += 1
                if len(convs["examples"]) < 5:
                    convs["examples"].append({"input": [dims[0], strides[0]], "weight": [dims[1], strides[1]]})
    rows = sorted(copies.values(), key=lambda r: (-r["device_us"], -r["calls"]))
    for r in rows:
        r["calls_per_step"] = round(r["calls"] / steps, 2)
        r["device_ms_per_step"] = round(r.pop("device_us") / steps / 1000, 3)
    convs["per_step"] = round(convs["calls"] / steps, 2)
    convs["not_channels_last_per_step"] = round(convs["not_channels_last"] / steps, 2)
    return {"steps": steps, "copies": rows, "convolutions": convs,
            "copy_calls_per_step": round(sum(r["calls"] for r in rows) / steps, 2),
            "copy_device_ms_per_step": round(sum(r["device_ms_per_step"] for r in rows), 3)}


def format_report(rep: dict, limit: int = 25) -> str:
    c = rep["convolutions"]
    lines = [
        f"Layout copies over {rep['steps']} steps: {rep['copy_calls_per_step']} aten::copy_ calls and "
        f"{rep['copy_device_ms_per_step']} ms of device time per step.",
        f"aten::convolution: {c['per_step']} calls per step, {c['not_channels_last_per_step']} with an input or weight "
        "that is not dense channels_last" + (f", e.g. {c['examples'][0]}" if c["examples"] else "") + ".",
        "",
        f"{'calls/step':>10} {'device ms/step':>14}  {'dtypes':<28} {'dims':<22} {'from strides':<26} {'to strides':<26} inside",
    ]
    for r in rep["copies"][:limit]:
        lines.append(f"{r['calls_per_step']:>10} {r['device_ms_per_step']:>14}  {r['dtypes']:<28} {str(r['dims']):<22} "
                     f"{str(r['src_strides']):<26} {str(r['dst_strides']):<26} {r['inside']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace", type=Path, help="a chrome trace from torch.profiler with record_shapes=True")
    ap.add_argument("--steps", type=int, default=1, help="training steps the trace covers (figures are per step)")
    a = ap.parse_args()
    if not a.trace.is_file():
        ap.error(f"{a.trace}: no such trace file")
    try:
        rep = report(a.trace, a.steps)
    except json.JSONDecodeError as e:
        ap.error(f"{a.trace}: not a JSON chrome trace ({e})")
    except KeyError:
        ap.error(f"{a.trace}: not a chrome trace (no traceEvents)")
    except ValueError as e:
        ap.error(f"{a.trace}: {e}")
    print(format_report(rep), end="")
    print(json.dumps({k: v for k, v in rep.items() if k != "copies"}))


if __name__ == "__main__":
    main()
