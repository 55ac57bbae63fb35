"""Time neural-tangents' analytic NTK (kernel_fn, jit, float64) on the inputs of
benches/kernel_gram.rs: M x 784 N(0,1) points, M in {500, 2000, 4000}, L in {1, 3, 10}
hidden layers, ReLU and erf, W_std = 1, b_std = 0.1, NTK parameterization.

Run (not by CI):  JAX_ENABLE_X64=1 /opt/pyref/bin/python benches/peers/nt_kernel.py [M ...]
Pinned versions: fixtures/kernels/requirements.txt. Prints one line per case: the median of
5 timed runs after a compile+warm-up run (block_until_ready).
"""
import os
import sys
import time

os.environ.setdefault("JAX_ENABLE_X64", "1")

import jax
import jax.numpy as jnp
import numpy as np
from neural_tangents import stax

assert jax.config.jax_enable_x64, "set JAX_ENABLE_X64=1"


def kernel_fn(act, depth):
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(512, W_std=1.0, b_std=0.1), stax.Relu() if act == "relu" else stax.Erf()]
    layers.append(stax.Dense(1, W_std=1.0, b_std=0.1))
    _, _, kf = stax.serial(*layers)
    return jax.jit(kf, static_argnames="get")


def main():
    ms = [int(a) for a in sys.argv[1:]] or [500, 2000, 4000]
    d = 784
    print(f"jax {jax.__version__}, devices {jax.devices()}, threads: default")
    for m in ms:
        x = jnp.asarray(np.random.default_rng(0).standard_normal((m, d)))
        for act in ("relu", "erf"):
            for depth in (1, 3, 10):
                kf = kernel_fn(act, depth)
                k = kf(x, None, get="ntk").block_until_ready()
                assert k.dtype == jnp.float64
                ts = []
                for _ in range(5 if m < 4000 else 3):
                    t0 = time.perf_counter()
                    kf(x, None, get="ntk").block_until_ready()
                    ts.append(time.perf_counter() - t0)
                print(f"ntk_gram/{act}/L{depth}/M{m}: {np.median(ts) * 1e3:.1f} ms", flush=True)


if __name__ == "__main__":
    main()
