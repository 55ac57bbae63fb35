#!/usr/bin/env python
"""A neural-tangents `stax.Conv` user checks their CNTK with `gbml compare`.

Usage:
    JAX_ENABLE_X64=1 python nt_conv_compare.py OUT_DIR [--gbml PATH] [--tolerances nt_conv.toml]
                                                     [--wrong-bias]

Builds a small CNN with `neural_tangents.stax` (conv 3×3 SAME, ReLU, conv 3×3 SAME, ReLU, global
average pooling, dense readout; W_std = 1.4, b_std = 0.1), evaluates its infinite-width NNGP and
NTK in float64 on random NHWC images (a 6 × 4 cross kernel of 7×7×2 images), writes the images,
the kernels and one gbml-exchange manifest per kernel into OUT_DIR — the architecture is the
manifest's `conventions.layers` string, the same words as `gbml kernel --layers` — and runs
`gbml compare run` on the two manifests. Exit code: gbml's (0 = every kernel matches, 1 = a mismatch).

`--wrong-bias` builds the network without biases (b_std=None) but keeps `sigma_b: 0.1` in the
manifests: gbml must report a mismatch (the counterfactual).

Pinned versions: examples/python/requirements.txt (neural-tangents 0.6.5, jax 0.4.30).
"""
import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("JAX_ENABLE_X64", "1")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

# The network, once as stax layers and once as the manifest's layer-spec string.
SIGMA_W, SIGMA_B = 1.4, 0.1
LAYERS = "conv:3:same,relu,conv:3:same,relu,gap,dense"


def network(b_std):
    conv = lambda: stax.Conv(1, (3, 3), padding="SAME", W_std=SIGMA_W, b_std=b_std)  # noqa: E731
    return stax.serial(conv(), stax.Relu(), conv(), stax.Relu(), stax.GlobalAvgPool(),
                       stax.Dense(1, W_std=SIGMA_W, b_std=b_std))


def manifest(kind):
    return {
        "format": "gbml-exchange",
        "version": 1,
        "implementation": f"neural-tangents {nt.__version__} (stax.Conv)",
        "quantity": kind,
        "inputs": {"x1": "x1.npy", "x2": "x2.npy"},
        "output": f"{kind}.npy",
        "conventions": {
            "parameterization": "ntk",
            "sigma_w": SIGMA_W,
            "sigma_b": SIGMA_B,
            "widths": None,
            "layers": LAYERS,
        },
        "notes": "written by examples/python/nt_conv_compare.py",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--gbml", default="gbml")
    ap.add_argument("--tolerances", default=None)
    ap.add_argument("--wrong-bias", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((6, 7, 7, 2))  # NHWC
    x2 = rng.standard_normal((4, 7, 7, 2))
    _, _, kernel_fn = network(None if args.wrong_bias else SIGMA_B)
    k = kernel_fn(x1, x2, ("nngp", "ntk"))
    np.save(os.path.join(args.out, "x1.npy"), x1)
    np.save(os.path.join(args.out, "x2.npy"), x2)
    for kind in ("nngp", "ntk"):
        np.save(os.path.join(args.out, f"{kind}.npy"), np.asarray(getattr(k, kind), dtype=np.float64))
        with open(os.path.join(args.out, f"{kind}.manifest.json"), "w") as f:
            json.dump(manifest(kind), f, indent=2)
    cmd = [args.gbml, "compare", "run",
           *(os.path.join(args.out, f"{kind}.manifest.json") for kind in ("nngp", "ntk"))]
    if args.tolerances:
        cmd += ["--tolerances", args.tolerances]
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
