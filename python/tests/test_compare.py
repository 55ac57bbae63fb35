"""compare / testing.assert_matches: a correct candidate passes, one perturbed by 1e-6 fails,
and the report says where and why."""

import numpy as np
import pytest

import gbml_testbed as gt
from gbml_testbed.testing import assert_matches

ARCH = dict(depth=3, activation="relu", sigma_w=1.5, sigma_b=0.1)


def test_correct_candidate_passes(x):
    k = gt.ntk(x, **ARCH)
    r = gt.compare("ntk", inputs={"x1": x}, candidate=k, arch=ARCH)
    assert r.passed
    assert r.min_lre >= r.required_digits >= 13
    assert r.diagnosis == []
    assert str(r).startswith("PASS  ntk")


def test_candidate_perturbed_by_1e_6_fails(x):
    k = gt.ntk(x, **ARCH)
    bad = k.copy()
    bad[3, 5] *= 1 + 1e-6
    r = gt.compare("ntk", inputs={"x1": x}, candidate=bad, arch=ARCH)
    assert not r.passed
    assert 5.5 < r.min_lre < 6.5
    assert r.worst.index == (3, 5)
    assert r.worst.value == bad[3, 5] and r.worst.reference == k[3, 5]
    assert "MISMATCH" in str(r) and "worst entry [3, 5]" in str(r)


def test_assert_matches_raises_assertion_error_with_the_report(x):
    k = gt.ntk(x, **ARCH)
    assert assert_matches("ntk", k, inputs={"x1": x}, arch=ARCH).passed
    with pytest.raises(AssertionError, match=r"(?s)does not match gbml_testbed.*MISMATCH.*worst entry"):
        assert_matches("ntk", k * (1 + 1e-6), inputs={"x1": x}, arch=ARCH)


def test_a_tolerance_override_lets_a_less_accurate_candidate_pass(x):
    k = gt.ntk(x, **ARCH) * (1 + 1e-9)
    assert not gt.compare("ntk", inputs={"x1": x}, candidate=k, arch=ARCH).passed
    for tol in (7.0, {"min_digits": 7.0, "reason": "test"}, {"ntk": {"min_digits": 7.0}},
                "[ntk]\nmin_digits = 7.0\n"):
        r = gt.compare("ntk", inputs={"x1": x}, candidate=k, arch=ARCH, tolerances=tol)
        assert r.passed and r.required_digits == 7.0


def test_a_convention_mistake_is_diagnosed(x):
    """A transposed cross kernel is named by the diagnosis."""
    x2 = x[:7] * 0.5
    k = gt.ntk(x, x2, **ARCH)
    r = gt.compare("ntk", inputs={"x1": x, "x2": x2}, candidate=np.ascontiguousarray(k.T), arch=ARCH)
    assert not r.passed and r.min_lre is None
    assert r.diagnosis and r.diagnosis[0].name


def test_nan_candidate_is_a_mismatch_not_an_error(x):
    k = gt.ntk(x, **ARCH)
    k[0, 1] = np.nan
    r = gt.compare("ntk", inputs={"x1": x}, candidate=k, arch=ARCH)
    assert not r.passed and r.min_lre == 0.0


def test_nngp_and_conventions_dict(x):
    k = gt.nngp(x, **ARCH)
    r = gt.compare("nngp", inputs={"x1": x}, candidate=k,
                   conventions=dict(parameterization="ntk", sigma_w=1.5, sigma_b=0.1, depth=3,
                                    activation="relu", widths=None))
    assert r.passed


def test_arch_missing_sigma_b_is_refused(x):
    with pytest.raises(gt.InvalidParameterError, match="sigma_b"):
        gt.compare("ntk", inputs={"x1": x}, candidate=x, arch=dict(depth=1, activation="relu", sigma_w=1.0))
