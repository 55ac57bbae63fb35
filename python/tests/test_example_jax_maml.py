"""Example that is a test: a JAX second-order MAML meta-gradient (jax.grad through the inner
loop) checked against gbml_testbed with testing.assert_matches. Skipped where JAX is not
installed. Conventions as fixtures/maml/gen_jax.py: rows are points, layer h is
z = (σ_w/√n_in)·a Wᵀ + σ_b b (NTK parameterization), flat θ = per layer W (row-major) then b,
sum losses ½‖·‖², per_task layout = each task's supports then its queries."""

import numpy as np
import pytest

from gbml_testbed.testing import assert_matches

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

D, WIDTHS, K, SW, SB, LR, TAU, M, N, TASKS = 3, [5, 4], 2, 1.3, 0.4, 0.1, 2, 3, 4, 2


def forward(theta, x):
    dims = [D] + WIDTHS + [K]
    a, off = x, 0
    for h, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:])):
        w = theta[off:off + n_in * n_out].reshape(n_out, n_in)
        off += n_in * n_out
        z = SW / np.sqrt(n_in) * (a @ w.T) + SB * theta[off:off + n_out]
        off += n_out
        a = jax.nn.relu(z) if h < len(dims) - 2 else z
    return a


def loss(theta, x, y):
    r = forward(theta, x) - y
    return 0.5 * jnp.sum(r * r)


def meta_loss(theta, tasks):
    total = 0.0
    for xs, ys, xq, yq in tasks:
        th = theta
        for _ in range(TAU):
            th = th - LR * jax.grad(loss)(th, xs, ys)
        total = total + loss(th, xq, yq)
    return total


def problem(seed):
    """Random θ and tasks; JAX's meta-gradient; the tasks stacked in the per_task layout."""
    rng = np.random.default_rng(seed)
    dims = [D] + WIDTHS + [K]
    p = sum(i * o + o for i, o in zip(dims[:-1], dims[1:]))
    theta = rng.standard_normal(p)
    tasks = [(rng.standard_normal((M, D)), rng.standard_normal((M, K)),
              rng.standard_normal((N, D)), rng.standard_normal((N, K))) for _ in range(TASKS)]
    grad = np.asarray(jax.grad(meta_loss)(jnp.asarray(theta), tasks))
    x = np.concatenate([np.concatenate([xs, xq]) for xs, _, xq, _ in tasks])
    y = np.concatenate([np.concatenate([ys, yq]) for _, ys, _, yq in tasks])
    return theta, grad, x, y


def test_jax_second_order_maml_meta_gradient_matches():
    theta, grad, x, y = problem(3)
    inputs = {"params": theta, "x": x, "y": y}
    arch = dict(depth=len(WIDTHS), activation="relu", sigma_w=SW, sigma_b=SB, width=WIDTHS)
    conventions = dict(loss="sum", layout="per_task", task_shape={"support": M, "query": N},
                       inner={"kind": "steps", "lr": LR, "steps": TAU, "ridge": 0.0,
                              "ridge_mode": "inverse_only"}, order="second")
    report = assert_matches("meta_gradient", grad, inputs=inputs, arch=arch,
                            conventions=conventions, implementation=f"jax {jax.__version__}")
    assert report.min_lre >= 10
    # The check can fail: a gradient off by a relative 1e-6 is refused.
    with pytest.raises(AssertionError, match="MISMATCH"):
        assert_matches("meta_gradient", grad * (1 + 1e-6), inputs=inputs, arch=arch,
                       conventions=conventions)


def test_package_meta_gradient_equals_jax():
    """gbml_testbed.meta_gradient returns the same vector (to 10 digits) as jax.grad."""
    import gbml_testbed as gt

    theta, grad, x, y = problem(4)
    ours = gt.meta_gradient(theta, x, y, support=M, query=N, depth=len(WIDTHS), activation="relu",
                            sigma_w=SW, sigma_b=SB, width=WIDTHS, inner_lr=LR, inner_steps=TAU)
    np.testing.assert_allclose(ours, grad, rtol=1e-10, atol=1e-12 * np.abs(grad).max())
