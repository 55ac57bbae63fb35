"""Shared fixtures: the `gbml` binary (GBML_BIN, else target/release/gbml of this repository,
built by `cargo test --release` / `cargo build --release`) and a few architectures."""

import os
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

#: Architectures the bitwise tests sweep (keyword arguments of gbml_testbed.ntk).
ARCHS = [
    dict(depth=3, activation="relu", sigma_w=1.5, sigma_b=0.1),
    dict(depth=1, activation="erf", sigma_w=1.2, sigma_b=None),
    dict(depth=2, activation="leaky_relu(0.1)", sigma_w=1.0, sigma_b=0.0),
    dict(depth=2, activation="relu", sigma_w=1.4, sigma_b=0.2, parameterization="standard", width=64),
]


@pytest.fixture(scope="session")
def gbml_bin():
    path = pathlib.Path(os.environ.get("GBML_BIN", ROOT / "target" / "release" / "gbml"))
    if not path.exists():
        pytest.fail(f"the gbml binary is not at {path}: run `cargo build --release` or set GBML_BIN")
    return path


def cli_args(arch):
    """`gbml kernel` flags of an architecture dict."""
    args = ["--depth", str(arch["depth"]), "--activation", arch["activation"],
            "--sigma-w", repr(arch["sigma_w"])]
    if arch.get("sigma_b") is not None:
        args += ["--sigma-b", repr(arch["sigma_b"])]
    args += ["--parameterization", arch.get("parameterization", "ntk")]
    if arch.get("width") is not None:
        args += ["--width", str(arch["width"])]
    return args


@pytest.fixture
def run_cli(gbml_bin):
    def run(*args, check=True):
        return subprocess.run([str(gbml_bin), *map(str, args)], capture_output=True, text=True, check=check)

    return run


@pytest.fixture
def x():
    return np.random.default_rng(0).standard_normal((37, 5))
