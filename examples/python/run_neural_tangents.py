#!/usr/bin/env python
"""Run neural-tangents on a gbml-testbed conformance pack and check it with `gbml compare`.

Usage:
    JAX_ENABLE_X64=1 python run_neural_tangents.py PACK_DIR [--gbml PATH] [--tolerances nt.toml]

For every NNGP/NTK case of the pack, builds the same fully-connected network with
`neural_tangents.stax` (Dense + activation per hidden layer, Dense readout; `b_std=None` when the
manifest says `sigma_b: null`), evaluates `kernel_fn(x1, x2, kind)` in float64, writes
`<case>/neural-tangents/candidate.npy` and a candidate manifest next to it, then runs
`gbml compare run` on all candidate manifests and prints its report. Exit code: gbml's.
Pinned versions: examples/python/requirements.txt.
"""
import argparse
import json
import os
import re
import subprocess
import sys

os.environ.setdefault("JAX_ENABLE_X64", "1")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

IMPL = f"neural-tangents {nt.__version__}"
SUB = "neural-tangents"


def activation(name):
    name = name.strip().lower()
    if name == "relu":
        return stax.Relu()
    if name == "erf":
        return stax.Erf()
    if name in ("identity", "linear"):
        return stax.Identity()
    m = re.fullmatch(r"abrelu\(([^,]+),([^)]+)\)", name)
    if m:
        return stax.ABRelu(float(m.group(1)), float(m.group(2)))
    m = re.fullmatch(r"leaky_relu\(([^)]+)\)", name)
    if m:
        return stax.LeakyRelu(float(m.group(1)))
    raise ValueError(f"activation {name} not supported by this script")


def kernel_fn(conv):
    """The stax kernel function of the manifest's conventions."""
    sw, sb = conv["sigma_w"], conv["sigma_b"]
    param = conv["parameterization"]
    widths = conv["widths"] or [1] * conv["depth"]
    layers = []
    for h in range(conv["depth"]):
        layers += [stax.Dense(widths[h], W_std=sw, b_std=sb, parameterization=param),
                   activation(conv["activation"])]
    layers += [stax.Dense(1, W_std=sw, b_std=sb, parameterization=param)]
    _, _, kfn = stax.serial(*layers)
    return kfn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pack")
    ap.add_argument("--gbml", default="gbml")
    ap.add_argument("--tolerances", default=None)
    args = ap.parse_args()
    index = json.load(open(os.path.join(args.pack, "index.json")))
    manifests = []
    for entry in index:
        if entry["quantity"] not in ("nngp", "ntk"):
            continue
        cdir = os.path.join(args.pack, entry["case"])
        man = json.load(open(os.path.join(cdir, "manifest.json")))
        conv = man["conventions"]
        if "layers" in conv:
            # Convolutional cases (the pack's `easy-conv_*`): examples/python/nt_conv_compare.py.
            print(f"skip {entry['case']}: `layers` (convolutional), see nt_conv_compare.py")
            continue
        x1 = np.load(os.path.join(cdir, man["inputs"]["x1"]))
        x2 = np.load(os.path.join(cdir, man["inputs"]["x2"])) if "x2" in man["inputs"] else None
        k = np.asarray(kernel_fn(conv)(x1, x2, man["quantity"]), dtype=np.float64)
        out = os.path.join(cdir, SUB)
        os.makedirs(out, exist_ok=True)
        np.save(os.path.join(out, "candidate.npy"), k)
        cand = dict(man)
        cand["implementation"] = IMPL
        cand["inputs"] = {r: os.path.join("..", p) for r, p in man["inputs"].items()}
        cand["output"] = "candidate.npy"
        cand.pop("certified_digits", None)
        cand["notes"] = "computed by examples/python/run_neural_tangents.py"
        path = os.path.join(out, "manifest.json")
        json.dump(cand, open(path, "w"), indent=2)
        manifests.append(path)
    cmd = [args.gbml, "compare", "run", *manifests]
    if args.tolerances:
        cmd += ["--tolerances", args.tolerances]
    print("+", " ".join(cmd[:3]), f"<{len(manifests)} manifests>",
          *(cmd[-2:] if args.tolerances else []), flush=True)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
