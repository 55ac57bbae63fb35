"""JAX peer of benches/maml_step.rs: one exact second-order MAML meta-gradient (value and grad of
the meta-loss summed over tasks), jit-compiled, float64, CPU.

Same sizes and conventions as the Rust benchmark: 2 hidden layers of width W, ReLU, NTK
parameterization with biases (sigma_w = sqrt 2, sigma_b = 0.1), d = 784, k = 5, N = 25 tasks,
m = 5, n = 15, inner rate 0.01, tau inner steps, loss = 1/2 sum of squares.

Tasks are mapped with jax.vmap (default, XLA batches the per-task work) or with jax.lax.map
(--map, sequential over tasks, less memory). Reports the median of --reps timed calls after one
compile+warm-up call.

Usage:
  JAX_ENABLE_X64=1 /opt/pyref/bin/python benches/peers/jax_maml.py --width 1024 --tau 1 [--map]
"""
import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

assert jax.config.jax_enable_x64, "set JAX_ENABLE_X64=1"

D, K, N_TASKS, M, N = 784, 5, 25, 5, 15


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--tau", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--map", action="store_true")
    args = ap.parse_args()
    W, tau, lr = args.width, args.tau, 0.01
    sw, sb = np.sqrt(2.0), 0.1
    rng = np.random.default_rng(0)
    dims = [D, W, W, K]
    params = [(jnp.asarray(rng.standard_normal((o, i))), jnp.asarray(rng.standard_normal(o)))
              for i, o in zip(dims[:-1], dims[1:])]
    onehot = lambda rows: np.where(np.arange(rows)[:, None] % K == np.arange(K)[None, :], 1 - 1 / K, -1 / K)
    xs = jnp.asarray(rng.random((N_TASKS, M, D)))
    xq = jnp.asarray(rng.random((N_TASKS, N, D)))
    ys = jnp.asarray(np.broadcast_to(onehot(M), (N_TASKS, M, K)).copy())
    yq = jnp.asarray(np.broadcast_to(onehot(N), (N_TASKS, N, K)).copy())

    def f(p, x):
        a = x
        for h, (Wh, bh) in enumerate(p):
            z = (sw / np.sqrt(Wh.shape[1])) * (a @ Wh.T) + sb * bh
            a = jax.nn.relu(z) if h < len(p) - 1 else z
        return a

    def loss(p, x, y):
        r = f(p, x) - y
        return 0.5 * jnp.sum(r * r)

    def task_loss(p, t):
        xs_, ys_, xq_, yq_ = t
        q = p
        for _ in range(tau):
            g = jax.grad(loss)(q, xs_, ys_)
            q = jax.tree_util.tree_map(lambda a, b: a - lr * b, q, g)
        return loss(q, xq_, yq_)

    def meta_loss(p):
        if args.map:
            return jnp.sum(jax.lax.map(lambda t: task_loss(p, t), (xs, ys, xq, yq)))
        return jnp.sum(jax.vmap(lambda a, b, c, d: task_loss(p, (a, b, c, d)))(xs, ys, xq, yq))

    step = jax.jit(jax.value_and_grad(meta_loss))
    t0 = time.perf_counter()
    out = step(params)
    jax.block_until_ready(out)
    t_compile = time.perf_counter() - t0
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        jax.block_until_ready(step(params))
        times.append(time.perf_counter() - t0)
    print(f"jax width={W} tau={tau} {'map' if args.map else 'vmap'}: median {np.median(times)*1e3:.1f} ms "
          f"(min {min(times)*1e3:.1f}, compile+first {t_compile:.1f} s), loss {float(out[0]):.6e}")


if __name__ == "__main__":
    main()
