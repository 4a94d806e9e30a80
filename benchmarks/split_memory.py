"""Memory of one split held for training: float32 in [-1, 1] against the stored uint8 values.

Each way runs in its own process (torch imported first), which turns random (N, H, W, C) uint8
pixels into the (N, C, H, W) tensor a stage keeps (`augment.images.to_tensor` or
`to_uint8_tensor`) and reports the tensor's size and the growth of the process's peak resident
memory over the conversion. Last line: one JSON object.

    python benchmarks/split_memory.py --images 20000 --size 64
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

_CHILD = """
import json, resource, sys
import numpy as np, torch
from augment.images import to_tensor, to_uint8_tensor
n, size, way = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
pixels = np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
x = (to_uint8_tensor if way == "uint8" else to_tensor)(pixels)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"held_mib": x.numel() * x.element_size() / 2**20, "peak_growth_mib": (peak - before) / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--size", type=int, default=64, help="square side in pixels (RGB)")
    args = ap.parse_args()
    result = {"images": args.images, "size": args.size}
    for way in ("float32", "uint8"):
        out = subprocess.run([sys.executable, "-c", _CHILD, str(args.images), str(args.size), way],
                             check=True, capture_output=True, text=True).stdout
        result[way] = {k: round(v, 1) for k, v in json.loads(out.splitlines()[-1]).items()}
        print(f"{way:8s} held {result[way]['held_mib']:9.1f} MiB, peak growth {result[way]['peak_growth_mib']:9.1f} MiB")
    result["peak_ratio"] = round(result["float32"]["peak_growth_mib"] / max(result["uint8"]["peak_growth_mib"], 1e-9), 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
