"""gbml_testbed.nngp / ntk / kernels equal `gbml kernel` bit for bit on the same inputs."""

import numpy as np
import pytest

import gbml_testbed as gt
from conftest import ARCHS, cli_args


def cli_kernel(run_cli, tmp_path, kind, arch, x1, x2=None, rows=None):
    np.save(tmp_path / "x1.npy", x1)
    args = ["kernel", "--x1", tmp_path / "x1.npy", "--kind", kind, *cli_args(arch), "--out", tmp_path / "k.npy"]
    if x2 is not None:
        np.save(tmp_path / "x2.npy", x2)
        args += ["--x2", tmp_path / "x2.npy"]
    if rows is not None:
        args += ["--rows", f"{rows[0]}..{rows[1]}"]
    run_cli(*args)
    return np.load(tmp_path / "k.npy")


def assert_bitwise(a, b):
    assert a.dtype == b.dtype == np.float64
    assert a.shape == b.shape
    assert a.tobytes() == b.tobytes(), f"max |diff| {np.max(np.abs(a - b)):.3e}"


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a["activation"] + "-" + a.get("parameterization", "ntk"))
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_symmetric_gram_is_bitwise_the_cli(run_cli, tmp_path, x, arch, kind):
    ours = getattr(gt, kind)(x, **arch)
    assert_bitwise(ours, cli_kernel(run_cli, tmp_path, kind, arch, x))


@pytest.mark.parametrize("arch", ARCHS[:2], ids=lambda a: a["activation"])
def test_cross_gram_and_kernels_pair_are_bitwise_the_cli(run_cli, tmp_path, x, arch):
    x2 = np.random.default_rng(1).standard_normal((11, x.shape[1]))
    nngp, ntk = gt.kernels(x, x2, **arch)
    assert_bitwise(ntk, cli_kernel(run_cli, tmp_path, "ntk", arch, x, x2))
    assert_bitwise(nngp, cli_kernel(run_cli, tmp_path, "nngp", arch, x, x2))
    assert_bitwise(ntk, gt.ntk(x, x2, **arch))


def test_done_means_example(run_cli, tmp_path, x):
    """The issue's example: ntk(x, depth=3, activation="relu", sigma_w=1.5, sigma_b=0.1)."""
    k = gt.ntk(x, depth=3, activation="relu", sigma_w=1.5, sigma_b=0.1)
    assert_bitwise(k, cli_kernel(run_cli, tmp_path, "ntk", ARCHS[0], x))
    assert np.array_equal(k, k.T)


def test_a_different_architecture_is_not_bitwise_equal(x):
    """The bitwise comparison can fail: σ_b 0.1 vs 0.1 + 1 ulp changes bits."""
    a = gt.ntk(x, depth=3, activation="relu", sigma_w=1.5, sigma_b=0.1)
    b = gt.ntk(x, depth=3, activation="relu", sigma_w=1.5, sigma_b=np.nextafter(0.1, 1.0))
    assert a.tobytes() != b.tobytes()


def test_outputs_are_writable_owned_arrays(x):
    k = gt.ntk(x, depth=1, activation="relu", sigma_w=1.0, sigma_b=None)
    assert k.flags.c_contiguous and k.flags.writeable and k.flags.owndata is not None
    k[0, 0] = 0.0


def test_parameterization_spellings_are_the_cli_vocabulary(x):
    """As `--parameterization`: case-insensitive, `std` = `standard`."""
    a = dict(depth=2, activation="relu", sigma_w=1.4, sigma_b=0.2, width=64)
    ref = gt.ntk(x, parameterization="standard", **a)
    for p in ("Standard", "std", "STD"):
        assert gt.ntk(x, parameterization=p, **a).tobytes() == ref.tobytes()
    assert gt.ntk(x, parameterization="NTK", **a).tobytes() != ref.tobytes()
