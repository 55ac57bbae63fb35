"""Python call overhead of gbml_testbed.ntk against the Rust library call it wraps, and against
the `gbml kernel` CLI (issue #14, "Done means": for a 10 × 10 kernel the Python call costs ≤ 2×
the Rust call; for M = 2000 the same time as the library's compute within noise).

    python python/bench/call_overhead.py [--gbml target/release/gbml] [--big 2000] [--pairs 41]

Design (the machine is shared, its load changes from second to second, so load must cancel):
every sample is a PAIR of back-to-back calls on the same input, (a) `_core.time_kernels` — the
library's `kernel::ntk` timed by Rust around its own call, no Python in it — and (b)
`gbml_testbed.ntk` timed from Python (argument checks, JSON architecture, GIL release, numpy
hand-over of the result; the result is kept alive until the clock stops, as Rust's is), in an
order drawn by a fixed-seed coin per pair. The statistic is the median of the per-pair ratios
b/a with its distribution-free sign-test (binomial order-statistic) 95 % interval. An A/A control
pairs the library call with itself the same way: its interval is the noise band of the method at
the load of the run; "the same time within noise" means the A/B interval lies inside that band
(or contains 1). Prints the load average (os.getloadavg) before and after.
"""

import argparse
import json
import math
import os
import subprocess
import tempfile
import time

import numpy as np

import gbml_testbed as gt
from gbml_testbed import _core
from gbml_testbed._conventions import arch_block, to_json

ARCH = dict(depth=3, activation="relu", sigma_w=1.5, sigma_b=0.1)
SPEC = to_json(arch_block(**ARCH, parameterization="ntk", width=None, layers=None))


def python_call(x):
    """Seconds of one gbml_testbed.ntk call seen from Python (result freed after the clock)."""
    t0 = time.perf_counter()
    k = gt.ntk(x, **ARCH)
    t = time.perf_counter() - t0
    del k
    return t


def library_call(x):
    """Seconds of one library kernel::ntk call timed inside Rust."""
    return _core.time_kernels(x, SPEC, "ntk", 1)


def sign_test_interval(values, level=0.95):
    """The distribution-free interval [v_(k), v_(n+1-k)] for the median of `values`: the largest
    k with P(Binomial(n, ½) < k) ≤ (1 − level)/2 on each side; its coverage ≥ level."""
    v = sorted(values)
    n = len(v)
    cdf, k = 0.0, 0
    while True:
        nxt = cdf + math.comb(n, k) / (1 << n)  # exact big-int ratio (2.0**n overflows at n > 1023)
        if nxt > (1 - level) / 2:
            break
        cdf, k = nxt, k + 1
    if k == 0:
        return float("nan"), float("nan"), 0.0
    return v[k - 1], v[n - k], 1 - 2 * cdf


def paired(f, g, x, pairs, rng):
    """Per-pair (f time, g time) with the order inside each pair drawn by a coin."""
    fs, gs = [], []
    for _ in range(pairs):
        if rng.random() < 0.5:
            a = f(x)
            b = g(x)
        else:
            b = g(x)
            a = f(x)
        fs.append(a)
        gs.append(b)
    return np.array(fs), np.array(gs)


def summary(num, den):
    r = num / den
    lo, hi, cov = sign_test_interval(r)
    return {"median_ratio": float(np.median(r)), "ci_lo": lo, "ci_hi": hi, "ci_coverage": cov,
            "pairs": len(r), "median_num_s": float(np.median(num)), "median_den_s": float(np.median(den))}


def cli_wall(gbml, x, repeats):
    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "x.npy"), x)
        cmd = [gbml, "kernel", "--x1", os.path.join(d, "x.npy"), "--kind", "ntk", "--depth", "3",
               "--activation", "relu", "--sigma-w", "1.5", "--sigma-b", "0.1",
               "--out", os.path.join(d, "k.npy")]
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def line(name, s):
    return (f"{name}: median ratio {s['median_ratio']:.3f}, {100 * s['ci_coverage']:.1f}% "
            f"sign-test interval [{s['ci_lo']:.3f}, {s['ci_hi']:.3f}] over {s['pairs']} pairs "
            f"(medians {s['median_num_s']:.3e} s / {s['median_den_s']:.3e} s)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gbml", default=os.path.join(os.path.dirname(__file__), "..", "..", "target", "release", "gbml"))
    ap.add_argument("--big", type=int, default=2000)
    ap.add_argument("--small-pairs", type=int, default=2001)
    ap.add_argument("--pairs", type=int, default=41, help="pairs for the M = --big kernel")
    ap.add_argument("--cli-repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    coin = np.random.default_rng(1)
    out = {"load_before": os.getloadavg(), "cpus": os.cpu_count()}
    for m, pairs in ((10, args.small_pairs), (args.big, args.pairs)):
        x = rng.standard_normal((m, 10))
        python_call(x), library_call(x)  # warm-up: first-touch of the code and the allocator
        py, lib = paired(python_call, library_call, x, pairs, coin)
        lib_a, lib_b = paired(library_call, library_call, x, pairs, coin)
        row = {"python_vs_library": summary(py, lib), "library_vs_library": summary(lib_a, lib_b)}
        print(f"M = {m}:")
        print("  " + line("python / library (A/B)", row["python_vs_library"]))
        print("  " + line("library / library (A/A)", row["library_vs_library"]))
        if m == args.big:
            row["cli_wall_s"] = cli_wall(args.gbml, x, args.cli_repeats)
            print(f"  cli wall (process, .npy read/write) median {row['cli_wall_s']:.3e} s")
        out[f"{m}x{m}"] = row
    out["load_after"] = os.getloadavg()
    print(f"load average before {out['load_before']}, after {out['load_after']}, {out['cpus']} CPUs")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
