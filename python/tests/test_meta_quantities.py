"""inner_operator / mnk / mnk_predict: the package's values against a closed form (numpy
eigendecomposition) and against `gbml mnk` on the same tasks."""

import numpy as np
import pytest

import gbml_testbed as gt

ARCH = dict(depth=2, activation="relu", sigma_w=1.4, sigma_b=0.3)
N_TASKS, M, N, D, K = 4, 3, 5, 4, 2


def test_inner_operator_flow_is_the_closed_form():
    """T = Θ'⁻¹(I − e^{−sΘ'}) for inner time s, from numpy's eigh of the package's NTK."""
    rng = np.random.default_rng(0)
    xs, ys = rng.standard_normal((6, D)), rng.standard_normal((6, K))
    theta = gt.ntk(xs, **ARCH)
    mu, v = np.linalg.eigh(theta)
    for s in (0.3, 2.0):
        want = (v * (-np.expm1(-s * mu) / mu)) @ v.T
        got = gt.inner_operator(xs, ys, inner_time=s, **ARCH)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())
    want_inf = np.linalg.inv(theta)
    got_inf = gt.inner_operator(xs, ys, inner_time="inf", **ARCH)
    np.testing.assert_allclose(got_inf, want_inf, rtol=0, atol=1e-10 * np.abs(want_inf).max())


def test_inner_operator_steps_is_the_geometric_sum():
    """T = λ Σ_{j<τ} (I − λΘ')^j for τ steps of rate λ."""
    rng = np.random.default_rng(1)
    xs, ys = rng.standard_normal((5, D)), rng.standard_normal((5, K))
    theta = gt.ntk(xs, **ARCH)
    lr, steps = 0.05, 4
    a = np.eye(5) - lr * theta
    want = lr * sum(np.linalg.matrix_power(a, j) for j in range(steps))
    got = gt.inner_operator(xs, ys, inner_lr=lr, inner_steps=steps, **ARCH)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * np.abs(want).max())


def tasks(seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N_TASKS, M, D)), rng.standard_normal((N_TASKS, M, K)),
            rng.standard_normal((N_TASKS, N, D)), rng.standard_normal((N_TASKS, N, K)))


def stacked(xs, ys, xq, yq):
    """per_task layout: each task's supports, then its queries."""
    x = np.concatenate([np.concatenate([xs[i], xq[i]]) for i in range(len(xs))])
    y = np.concatenate([np.concatenate([ys[i], yq[i]]) for i in range(len(xs))])
    return x, y


def save_tasks(dirpath, prefix, t):
    for name, a in zip(("xs", "ys", "xq", "yq"), t):
        np.save(dirpath / f"{prefix}{name}.npy", a)


def test_mnk_phi_cross_and_predictions_agree_with_the_cli(run_cli, tmp_path):
    train, test = tasks(2), tasks(3)
    save_tasks(tmp_path, "", train)
    save_tasks(tmp_path, "test_", test)
    run_cli("mnk", "--tasks", "npy", "--npy-dir", tmp_path, "--layout", "per-task",
            "--depth", 2, "--activation", "relu", "--sigma-w", 1.4, "--sigma-b", 0.3,
            "--inner-time", 0.7, "--outer-time", 2.0,
            "--phi-out", tmp_path / "phi.npy", "--cross-out", tmp_path / "cross.npy",
            "--pred-out", tmp_path / "pred.npy")
    x, y = stacked(*train)
    tx, ty = stacked(*test)
    kw = dict(support=M, query=N, inner_time=0.7, **ARCH)
    phi = gt.mnk(x, y, **kw)
    cross = gt.mnk(x, y, test_x=tx, test_y=ty, **kw)
    pred = gt.mnk_predict(x, y, tx, ty, outer_time=2.0, **kw)
    for ours, name in ((phi, "phi"), (cross, "cross"), (pred, "pred")):
        cli = np.load(tmp_path / f"{name}.npy")
        np.testing.assert_allclose(ours, cli, rtol=0, atol=1e-13 * np.abs(cli).max(), err_msg=name)
    assert phi.shape == (N_TASKS * N, N_TASKS * N) and pred.shape == (N_TASKS * N, K)


def test_meta_shape_errors_are_typed():
    x, y = stacked(*tasks(4))
    with pytest.raises(gt.ShapeError, match="multiple of support"):
        gt.mnk(x[:-1], y[:-1], support=M, query=N, **ARCH)
    with pytest.raises(gt.InvalidParameterError, match="inner_steps"):
        gt.mnk(x, y, support=M, query=N, inner_lr=0.1, **ARCH)
    with pytest.raises(gt.InvalidParameterError, match="ridge_mode"):
        gt.mnk(x, y, support=M, query=N, ridge_mode="sometimes", **ARCH)


def test_precision_extended_agrees_with_f64_and_bad_precision_is_typed():
    # f64 (default) is the CLI's fast path; "extended" is the double-double reference that
    # `compare` judges against: equal to ~1e-13 on this well-conditioned set, not bit-identical.
    x, y = stacked(*tasks(5))
    kw = dict(support=M, query=N, inner_time=0.7, **ARCH)
    f64 = gt.mnk(x, y, **kw)
    ext = gt.mnk(x, y, precision="extended", **kw)
    np.testing.assert_allclose(ext, f64, rtol=0, atol=1e-12 * np.abs(f64).max())
    with pytest.raises(gt.InvalidParameterError, match="precision"):
        gt.mnk(x, y, precision="quad", **kw)
