"""Example that is a test: neural-tangents' infinite-width NTK/NNGP checked against gbml_testbed
with testing.assert_matches, in float64. Skipped where neural-tangents is not installed (pinned
environment: examples/python/requirements.txt). NT computes the ReLU angle with arccos, so its
expected accuracy is the examples/python/neural_tangents.toml override (8 digits), not the
default 13."""

import os

import numpy as np
import pytest

from gbml_testbed.testing import assert_matches

os.environ.setdefault("JAX_ENABLE_X64", "1")
nt = pytest.importorskip("neural_tangents")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
from neural_tangents import stax  # noqa: E402

TOLERANCES = open(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python",
                               "neural_tangents.toml")).read()


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_neural_tangents_kernel_matches(kind):
    arch = dict(depth=3, activation="relu", sigma_w=1.5, sigma_b=0.1)
    layers = []
    for _ in range(arch["depth"]):
        layers += [stax.Dense(512, W_std=arch["sigma_w"], b_std=arch["sigma_b"]), stax.Relu()]
    _, _, kernel_fn = stax.serial(*layers, stax.Dense(1, W_std=arch["sigma_w"], b_std=arch["sigma_b"]))
    x = np.random.default_rng(0).standard_normal((20, 6))
    k = np.asarray(kernel_fn(x, None, kind), dtype=np.float64)
    report = assert_matches(kind, k, inputs={"x1": x}, arch=arch, tolerances=TOLERANCES,
                            implementation=f"neural-tangents {nt.__version__}")
    assert report.min_lre >= 8
    # Without b_std NT has no bias: the same check refuses it and names the convention.
    _, _, no_bias = stax.serial(*[l for h in range(3) for l in (stax.Dense(512, W_std=1.5, b_std=None), stax.Relu())],
                                stax.Dense(1, W_std=1.5, b_std=None))
    with pytest.raises(AssertionError, match="MISMATCH"):
        assert_matches(kind, np.asarray(no_bias(x, None, kind), dtype=np.float64), inputs={"x1": x},
                       arch=arch, tolerances=TOLERANCES)
