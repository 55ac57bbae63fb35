"""Bad input from Python raises a gbml_testbed exception carrying the crate's message; it never
crashes the interpreter."""

import subprocess

import numpy as np
import pytest

import gbml_testbed as gt

ARCH = dict(depth=2, activation="relu", sigma_w=1.0, sigma_b=0.1)


@pytest.mark.parametrize(
    "bad, exc, msg",
    [
        (np.ones((4, 3), dtype=np.int64), gt.InvalidParameterError, "dtype int64.*must be float64"),
        (np.ones((4, 3), dtype=np.float32), gt.InvalidParameterError, "dtype float32"),
        (np.asfortranarray(np.random.default_rng(0).standard_normal((4, 3))), gt.InvalidParameterError, "C-contiguous"),
        (np.random.default_rng(0).standard_normal((4, 6))[:, ::2], gt.InvalidParameterError, "C-contiguous"),
        (np.ones(3), gt.ShapeError, r"2-D array \(points are rows\).*shape \[3\]"),
        (np.ones((2, 2, 2)), gt.ShapeError, "2-D array"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), gt.NonFiniteError, r"non-finite value NaN in kernel input X1 at \[0, 1\]"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), gt.NonFiniteError, "non-finite value inf"),
        (np.ones((3, 0)), gt.EmptyInputError, "dimension d = 0"),
    ],
    ids=["int64", "float32", "fortran", "strided", "rank1", "rank3", "nan", "inf", "d0"],
)
def test_bad_array_raises_typed_error(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        gt.ntk(bad, **ARCH)
    with pytest.raises(ValueError):  # every bad-input class is a ValueError
        gt.nngp(bad, **ARCH)


def test_not_an_array_is_a_type_error():
    with pytest.raises(TypeError, match="numpy.ndarray of float64, got list"):
        gt.ntk([[1.0, 2.0]], **ARCH)


def test_dimension_mismatch(x):
    with pytest.raises(gt.ShapeError, match="shape mismatch in kernel inputs X1, X2: expected d = 5, got d = 4"):
        gt.ntk(x, np.ones((2, 4)), **ARCH)


@pytest.mark.parametrize(
    "change, exc, msg",
    [
        (dict(activation="tanh"), gt.GbmlError, "tanh"),
        (dict(sigma_w=-1.0), gt.InvalidParameterError, "sigma_w"),
        (dict(sigma_w=float("nan")), gt.ParseError, "architecture"),
        (dict(parameterization="mup"), gt.ParseError, "mup"),
        (dict(parameterization="standard"), gt.InvalidParameterError, "width"),
        (dict(layers=["conv:3:same", "relu", "gap", "dense"]), gt.InvalidParameterError, "layers"),
    ],
)
def test_bad_architecture(x, change, exc, msg):
    with pytest.raises(exc, match=msg):
        gt.ntk(x, **{**ARCH, **change})


@pytest.mark.parametrize(
    "flags, change",
    [
        (["--activation", "tanh"], dict(activation="tanh")),
        (["--sigma-w", "-1"], dict(sigma_w=-1.0)),
    ],
)
def test_messages_are_the_cli_messages(run_cli, tmp_path, flags, change):
    """The Python exception's text is the crate's message, as the CLI prints it (for NaN the CLI
    names the .npy file it read, the package the argument: same class, same wording)."""
    np.save(tmp_path / "x.npy", np.eye(2))
    base = ["kernel", "--x1", tmp_path / "x.npy", "--depth", "2", "--sigma-b", "0.1"]
    cli = run_cli(*base, *flags, check=False)
    assert cli.returncode == 2
    with pytest.raises(gt.GbmlError) as e:
        gt.ntk(np.eye(2), **{**ARCH, **change})
    assert f"gbml: error: {e.value}" in cli.stderr


def test_bad_input_never_crashes_the_interpreter(tmp_path):
    """Every bad input above, in a child interpreter: it exits normally (no segfault/abort)."""
    code = (
        "import numpy as np, gbml_testbed as gt\n"
        "A = dict(depth=2, activation='relu', sigma_w=1.0, sigma_b=0.1)\n"
        "bad = [np.ones((4, 3), dtype=np.int64), np.asfortranarray(np.ones((4, 3))), np.ones(3),\n"
        "       np.full((2, 2), np.nan), np.ones((3, 0)), np.ones((0, 3)), [[1.0]], None, 'x']\n"
        "n = 0\n"
        "for b in bad:\n"
        "    try:\n"
        "        gt.ntk(b, **A)\n"
        "    except (ValueError, TypeError):\n"
        "        n += 1\n"
        "print(n)\n"
    )
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # The (0, 3) input is a valid empty Gram matrix; the others raise.
    assert out.stdout.strip() == "8"


def test_empty_point_set_gives_an_empty_matrix():
    assert gt.ntk(np.ones((0, 3)), **ARCH).shape == (0, 0)


def test_exception_hierarchy():
    assert issubclass(gt.ShapeError, ValueError) and issubclass(gt.ShapeError, gt.GbmlError)
    assert issubclass(gt.SingularKernelError, ArithmeticError)
    assert issubclass(gt.GbmlIOError, OSError)
    assert issubclass(gt.UnsupportedError, NotImplementedError)
