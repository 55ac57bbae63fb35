"""``layers=``: the convolutional kernels from Python (NHWC image arrays), bit-identical to
``gbml kernel --layers``, and ``compare("ntk", ..., arch={"layers": ...})`` on them."""

import json

import numpy as np
import pytest

import gbml_testbed as gt

LAYERS = "conv:3:same,relu,conv:2:valid,erf,gap,dense"
ARCH = dict(layers=LAYERS, sigma_w=1.4, sigma_b=0.1)
STANDARD = dict(layers="conv:3:same,relu,avgpool:2,flatten,dense", sigma_w=1.3, sigma_b=0.2,
                parameterization="standard", width=32)


@pytest.fixture
def images():
    rng = np.random.default_rng(3)
    return rng.standard_normal((5, 5, 4, 2)), rng.standard_normal((3, 5, 4, 2))


def cli(run_cli, tmp_path, kind, arch, x1, x2=None):
    np.save(tmp_path / "x1.npy", x1)
    args = ["kernel", "--x1", tmp_path / "x1.npy", "--kind", kind, "--layers", arch["layers"],
            "--sigma-w", repr(arch["sigma_w"]), "--out", tmp_path / "k.npy"]
    if arch.get("sigma_b") is not None:
        args += ["--sigma-b", repr(arch["sigma_b"])]
    if arch.get("parameterization"):
        args += ["--parameterization", arch["parameterization"], "--width", str(arch["width"])]
    if x2 is not None:
        np.save(tmp_path / "x2.npy", x2)
        args += ["--x2", tmp_path / "x2.npy"]
    run_cli(*args)
    return np.load(tmp_path / "k.npy")


def bitwise(a, b):
    return a.dtype == b.dtype == np.float64 and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("arch", [ARCH, STANDARD], ids=["ntk", "standard"])
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_conv_kernels_are_bitwise_the_cli(run_cli, tmp_path, images, arch, kind):
    x1, x2 = images
    assert bitwise(getattr(gt, kind)(x1, **arch), cli(run_cli, tmp_path, kind, arch, x1))
    assert bitwise(getattr(gt, kind)(x1, x2, **arch), cli(run_cli, tmp_path, kind, arch, x1, x2))


def test_kernels_pair_and_word_list(images):
    x1, x2 = images
    nngp, ntk = gt.kernels(x1, x2, **ARCH)
    assert bitwise(ntk, gt.ntk(x1, x2, **ARCH)) and bitwise(nngp, gt.nngp(x1, x2, **ARCH))
    words = dict(ARCH, layers=LAYERS.split(","))
    assert bitwise(ntk, gt.ntk(x1, x2, **words))
    # The comparison can fail: another spec gives other bits.
    other = dict(ARCH, layers=LAYERS.replace("erf", "relu"))
    assert not bitwise(ntk, gt.ntk(x1, x2, **other))


def test_compare_a_conv_candidate(images):
    x1, x2 = images
    ours = gt.ntk(x1, x2, **ARCH)
    rep = gt.compare("ntk", inputs={"x1": x1, "x2": x2}, candidate=ours.copy(), arch=ARCH)
    assert rep.passed, rep.text
    # The guard's reference for conv kernels is the extended-precision path (issue #12/#13),
    # so the verdict does not depend on our own f64 rounding.
    assert json.loads(json.dumps(rep.data))["precision"] == "extended"
    bad = ours.copy()
    bad[1, 2] *= 1 + 1e-9
    rep = gt.compare("ntk", inputs={"x1": x1, "x2": x2}, candidate=bad, arch=ARCH)
    assert not rep.passed


@pytest.mark.parametrize(
    "arch, exc, msg",
    [
        (dict(ARCH, layers="conv:3:same,relu,maxpool:2,gap,dense"), gt.InvalidParameterError, "layers"),
        (dict(ARCH, depth=2, activation="relu"), gt.InvalidParameterError, "layers"),
        (dict(ARCH, layers="conv:9:valid,relu,gap,dense"), gt.InvalidParameterError, "layers"),
        (dict(ARCH, layers=[3, "relu"]), gt.InvalidParameterError, "layers"),
        (dict(sigma_w=1.0, sigma_b=None), gt.InvalidParameterError, "depth"),
    ],
)
def test_bad_conv_specs_are_typed_errors(images, arch, exc, msg):
    with pytest.raises(exc, match=msg):
        gt.ntk(images[0], **arch)


def test_images_must_be_nhwc():
    with pytest.raises(gt.ShapeError, match="NHWC"):
        gt.ntk(np.ones((2, 3, 3)), **ARCH)
