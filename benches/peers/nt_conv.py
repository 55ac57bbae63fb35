"""Peer timing for benches/conv_gram.rs: neural-tangents 0.6.5 `kernel_fn` (jit, float64, CPU)
of the CNTK-GAP Gram matrix of M images 28×28×1, 3 × [conv 3 SAME, ReLU], GAP, dense
(σ_w = 1.4, σ_b = 0.1), NTK and NNGP. Same inputs as the Rust bench (uniform [0, 1), seed 0,
numpy default_rng). Usage: JAX_ENABLE_X64=1 python nt_conv.py [M] [repeats]
Pinned: fixtures/conv/requirements.txt."""
import sys
import time

import jax
import numpy as np
from neural_tangents import stax

M = int(sys.argv[1]) if len(sys.argv) > 1 else 16
R = int(sys.argv[2]) if len(sys.argv) > 2 else 3
layers = []
for _ in range(3):
    layers += [stax.Conv(1, (3, 3), padding="SAME", W_std=1.4, b_std=0.1), stax.Relu()]
layers += [stax.GlobalAvgPool(), stax.Dense(1, W_std=1.4, b_std=0.1)]
kernel_fn = jax.jit(stax.serial(*layers)[2], static_argnames="get")
x = np.random.default_rng(0).random((M, 28, 28, 1))
k = kernel_fn(x, None, get=("nngp", "ntk"))
k.ntk.block_until_ready()  # compile + first run
ts = []
for _ in range(R):
    t = time.perf_counter()
    k = kernel_fn(x, None, get=("nngp", "ntk"))
    k.ntk.block_until_ready()
    ts.append(time.perf_counter() - t)
print(f"neural-tangents M={M}: median {np.median(ts):.3f} s over {R} runs {['%.3f' % v for v in ts]}")
np.save(f"/tmp/nt_conv_ntk_{M}.npy", np.asarray(k.ntk))
