"""Python call overhead of gbml_testbed.ntk against the Rust library call it wraps, and against
the `gbml kernel` CLI (issue #14, "Done means"). Few samples: CPU is shared.

    python python/bench/call_overhead.py [--gbml target/release/gbml] [--big 2000]

Prints, for a 10 × 10 Gram matrix and an M × M one (M = --big): the median seconds per call of
(a) the library alone, alternating with (b), (`_core.time_kernels`: Rust timing its own loop, no Python), (b)
`gbml_testbed.ntk` from Python (argument checks, JSON architecture, GIL release, numpy
wrapping), and for M × M (c) the CLI's wall time (process start, .npy read/write included).
"""

import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np

import gbml_testbed as gt
from gbml_testbed import _core
from gbml_testbed._conventions import arch_block, to_json

ARCH = dict(depth=3, activation="relu", sigma_w=1.5, sigma_b=0.1)


def median_time(f, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gbml", default=os.path.join(os.path.dirname(__file__), "..", "..", "target", "release", "gbml"))
    ap.add_argument("--big", type=int, default=2000)
    ap.add_argument("--small-repeats", type=int, default=2001)
    ap.add_argument("--big-repeats", type=int, default=9)
    args = ap.parse_args()
    spec = to_json(arch_block(**ARCH, parameterization="ntk", width=None, layers=None))
    rng = np.random.default_rng(0)
    out = {}
    for m, reps in ((10, args.small_repeats), (args.big, args.big_repeats)):
        x = rng.standard_normal((m, 10))
        # Alternate the two measurements so that load changes on a shared machine hit both.
        rust_t, py_t = [], []
        for _ in range(reps):
            rust_t.append(_core.time_kernels(x, spec, "ntk", 1))
            py_t.append(median_time(lambda: gt.ntk(x, **ARCH), 1))
        rust, py = float(np.median(rust_t)), float(np.median(py_t))
        row = {"rust_s": rust, "python_s": py, "ratio": py / rust}
        if m == args.big:
            with tempfile.TemporaryDirectory() as d:
                np.save(os.path.join(d, "x.npy"), x)
                cmd = [args.gbml, "kernel", "--x1", os.path.join(d, "x.npy"), "--kind", "ntk", "--depth", "3",
                       "--activation", "relu", "--sigma-w", "1.5", "--sigma-b", "0.1", "--out", os.path.join(d, "k.npy")]
                row["cli_wall_s"] = median_time(lambda: subprocess.run(cmd, check=True, capture_output=True), reps)
        out[f"{m}x{m}"] = row
        print(f"M = {m:5d}: rust {rust:.3e} s  python {py:.3e} s  ratio {py / rust:.2f}"
              + (f"  cli wall {row['cli_wall_s']:.3e} s" if "cli_wall_s" in row else ""))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
