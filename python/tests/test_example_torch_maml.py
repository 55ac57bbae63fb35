"""Example that is a test: a PyTorch second-order MAML meta-gradient written with torch.func
(functional_call on an nn.Module, torch.func.grad through the inner loop, float64) checked
against gbml_testbed with testing.assert_matches. Skipped where torch is not installed.

Conventions as the JAX example (test_example_jax_maml.py) and fixtures/maml/gen_jax.py: rows are
points, layer h is z = (σ_w/√n_in)·a Wᵀ + σ_b b (NTK parameterization, W of shape n_out × n_in
as nn.Linear's), the flat θ = per layer W (row-major) then b — the order of named_parameters()
below — sum losses ½‖·‖², per_task layout = each task's supports then its queries."""

import numpy as np
import pytest

from gbml_testbed.testing import assert_matches

torch = pytest.importorskip("torch")
from torch.func import functional_call, grad  # noqa: E402  (after the importorskip)

D, WIDTHS, K, SW, SB, LR, TAU, M, N, TASKS = 3, [5, 4], 2, 1.3, 0.4, 0.1, 2, 3, 4, 2
ARCH = dict(depth=len(WIDTHS), activation="relu", sigma_w=SW, sigma_b=SB, width=WIDTHS)


def conventions(order):
    return dict(loss="sum", layout="per_task", task_shape={"support": M, "query": N},
                inner={"kind": "steps", "lr": LR, "steps": TAU, "ridge": 0.0,
                       "ridge_mode": "inverse_only"}, order=order)


class NtkLinear(torch.nn.Module):
    """z = (σ_w/√n_in)·a Wᵀ + σ_b b with standard-normal W and b (NTK parameterization)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(n_out, n_in, dtype=torch.float64))
        self.bias = torch.nn.Parameter(torch.empty(n_out, dtype=torch.float64))
        self.scale = SW / n_in ** 0.5

    def forward(self, a):
        return self.scale * torch.nn.functional.linear(a, self.weight) + SB * self.bias


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        dims = [D] + WIDTHS + [K]
        self.layers = torch.nn.ModuleList(NtkLinear(i, o) for i, o in zip(dims[:-1], dims[1:]))

    def forward(self, x):
        for h, layer in enumerate(self.layers):
            x = layer(x)
            if h < len(self.layers) - 1:
                x = torch.relu(x)
        return x


MODEL = Mlp()


def loss(params, x, y):
    r = functional_call(MODEL, params, (x,)) - y
    return 0.5 * torch.sum(r * r)


def adapt(params, xs, ys):
    """τ inner steps of rate LR on the support set, differentiable through (second order)."""
    for _ in range(TAU):
        g = grad(loss)(params, xs, ys)
        params = {k: p - LR * g[k] for k, p in params.items()}
    return params


def meta_loss(params, tasks):
    return sum(loss(adapt(params, xs, ys), xq, yq) for xs, ys, xq, yq in tasks)


def first_order_meta_gradient(params, tasks):
    """FOMAML: the query gradient at the adapted parameters, the inner loop treated as constant."""
    total = {k: torch.zeros_like(p) for k, p in params.items()}
    for xs, ys, xq, yq in tasks:
        g = grad(loss)(adapt(params, xs, ys), xq, yq)
        total = {k: total[k] + g[k] for k in total}
    return total


def flat(params):
    return torch.cat([p.reshape(-1) for p in params.values()]).numpy()


def problem(seed):
    """Random θ (flat, and as the module's parameter dict) and tasks, stacked per_task."""
    rng = np.random.default_rng(seed)
    names = [n for n, _ in MODEL.named_parameters()]
    shapes = [p.shape for _, p in MODEL.named_parameters()]
    theta = rng.standard_normal(sum(int(np.prod(s)) for s in shapes))
    params, off = {}, 0
    for n, s in zip(names, shapes):
        size = int(np.prod(s))
        params[n] = torch.from_numpy(theta[off:off + size].reshape(s).copy())
        off += size
    tasks = [(rng.standard_normal((M, D)), rng.standard_normal((M, K)),
              rng.standard_normal((N, D)), rng.standard_normal((N, K))) for _ in range(TASKS)]
    x = np.concatenate([np.concatenate([xs, xq]) for xs, _, xq, _ in tasks])
    y = np.concatenate([np.concatenate([ys, yq]) for _, ys, _, yq in tasks])
    tasks_t = [tuple(torch.from_numpy(a) for a in t) for t in tasks]
    return theta, params, tasks_t, x, y


def test_flat_parameter_order_is_the_testbeds():
    """named_parameters() walks layer by layer, W (n_out × n_in) then b: the testbed's flat θ."""
    dims = [D] + WIDTHS + [K]
    expected = [s for i, o in zip(dims[:-1], dims[1:]) for s in ((o, i), (o,))]
    assert [tuple(p.shape) for p in MODEL.parameters()] == expected


def test_torch_func_second_order_maml_meta_gradient_matches():
    theta, params, tasks, x, y = problem(3)
    g2 = flat(grad(meta_loss)(params, tasks))
    inputs = {"params": theta, "x": x, "y": y}
    report = assert_matches("meta_gradient", g2, inputs=inputs, arch=ARCH,
                            conventions=conventions("second"),
                            implementation=f"torch {torch.__version__}")
    assert report.min_lre >= 10
    # The check can fail: a gradient off by a relative 1e-6 is refused.
    with pytest.raises(AssertionError, match="MISMATCH"):
        assert_matches("meta_gradient", g2 * (1 + 1e-6), inputs=inputs, arch=ARCH,
                       conventions=conventions("second"))


def test_torch_func_first_order_maml_is_refused_and_diagnosed():
    """FOMAML submitted as exact MAML fails, and the diagnosis names the dropped Hessian terms;
    declared as order="first" the same vector passes."""
    theta, params, tasks, x, y = problem(5)
    g1 = flat(first_order_meta_gradient(params, tasks))
    inputs = {"params": theta, "x": x, "y": y}
    with pytest.raises(AssertionError, match="first_order_instead_of_second_order"):
        assert_matches("meta_gradient", g1, inputs=inputs, arch=ARCH,
                       conventions=conventions("second"))
    report = assert_matches("meta_gradient", g1, inputs=inputs, arch=ARCH,
                            conventions=conventions("first"))
    assert report.min_lre >= 10


def test_package_meta_gradient_equals_torch_func():
    """gbml_testbed.meta_gradient returns the same vector (to 10 digits) as torch.func.grad."""
    import gbml_testbed as gt

    theta, params, tasks, x, y = problem(4)
    g2 = flat(grad(meta_loss)(params, tasks))
    ours = gt.meta_gradient(theta, x, y, support=M, query=N, inner_lr=LR, inner_steps=TAU, **ARCH)
    np.testing.assert_allclose(ours, g2, rtol=1e-10, atol=1e-12 * np.abs(g2).max())
