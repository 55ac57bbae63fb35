"""gbml_testbed.advise: the same advice as `gbml advise --json` on the same task folder, a verdict
that follows the tasks' shared structure, and typed errors as Python exceptions."""

import json
import subprocess

import numpy as np
import pytest

import gbml_testbed as gt
from gbml_testbed.errors import InvalidParameterError, NonFiniteError, ShapeError


def rff(rng, d=2, features=64, lengthscale=0.5):
    """A random smooth function x ↦ √(2/F) Σ a_j cos(ω_j·x + b_j) (a GP draw, RBF kernel)."""
    w = rng.standard_normal((features, d)) / lengthscale
    b = rng.uniform(0, 2 * np.pi, features)
    a = rng.standard_normal(features)
    return lambda x: (np.sqrt(2.0 / features) * np.cos(x @ w.T + b) @ a)[:, None] * 0.5


def tasks(n_tasks, shared, seed, m=5, n=5, d=2):
    """`n_tasks` tasks on U[-1, 1]^d; labels f̄(x) (one function for all tasks) when `shared`,
    else an independent function per task."""
    rng = np.random.default_rng(seed)
    fbar = rff(rng, d)
    xs, ys, xq, yq = [], [], [], []
    for _ in range(n_tasks):
        f = fbar if shared else rff(rng, d)
        a, b = rng.uniform(-1, 1, (m, d)), rng.uniform(-1, 1, (n, d))
        xs.append(a), ys.append(f(a)), xq.append(b), yq.append(f(b))
    return tuple(np.ascontiguousarray(np.stack(v)) for v in (xs, ys, xq, yq))


def test_advice_equals_the_cli_json(gbml_bin, tmp_path):
    t = tasks(12, True, 0)
    for name, a in zip(("xs", "ys", "xq", "yq"), t):
        np.save(tmp_path / f"{name}.npy", a)
    out = subprocess.run(
        [str(gbml_bin), "advise", "--tasks", "npy", "--npy-dir", str(tmp_path), "--no-width",
         "--json"],
        check=True, capture_output=True, text=True,
    ).stdout
    assert gt.advise(*t) == json.loads(out)


def test_verdict_follows_shared_structure():
    """One shared function → "helps"; independent functions → not "helps" (fixed seeds; the
    verdict's two-sided 95 % interval bounds a wrong "helps" at 2.5 % when there is no gain)."""
    shared = gt.advise(*tasks(30, True, 1))
    indep = gt.advise(*tasks(30, False, 1))
    assert shared["cv"]["verdict"] == "helps", shared["cv"]["gain"]
    assert indep["cv"]["verdict"] != "helps", indep["cv"]["gain"]
    assert set(shared) >= {"outer", "inner", "cv", "complexity", "affinity", "clustering", "groups"}
    assert shared["width"] is None
    assert len(shared["affinity"]) == 30


def test_too_few_tasks_raises_invalid_parameter():
    with pytest.raises(InvalidParameterError, match="at least 5 tasks"):
        gt.advise(*tasks(4, True, 2))


def test_bad_arrays_raise_typed_errors():
    xs, ys, xq, yq = tasks(6, True, 3)
    with pytest.raises(ShapeError):
        gt.advise(xs[0], ys, xq, yq)
    with pytest.raises(ShapeError):
        gt.advise(xs[:5], ys, xq, yq)
    bad = yq.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(NonFiniteError):
        gt.advise(xs, ys, xq, bad)
    with pytest.raises(InvalidParameterError):
        gt.advise(xs.astype(np.float32), ys, xq, yq)
