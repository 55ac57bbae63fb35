"""pytest helpers: :func:`assert_matches` is to the testbed what ``numpy.testing.assert_allclose``
is to a hand-written expected value."""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from . import Report, Tolerances, compare


def assert_matches(
    quantity: str,
    candidate: np.ndarray,
    *,
    inputs: Mapping[str, np.ndarray],
    arch: Optional[Mapping[str, Any]] = None,
    conventions: Optional[Mapping[str, Any]] = None,
    tolerances: Tolerances = None,
    implementation: str = "python",
) -> Report:
    """Raise ``AssertionError`` carrying ``gbml compare``'s report (worst entry, digits,
    diagnosis of the convention that explains the mismatch) unless ``candidate`` matches our
    reference of ``quantity`` (arguments as :func:`gbml_testbed.compare`); returns the report.

    >>> assert_matches("ntk", my_ntk(x), inputs={"x1": x},
    ...                arch=dict(depth=3, activation="relu", sigma_w=1.5, sigma_b=0.1))
    """
    report = compare(
        quantity,
        inputs=inputs,
        candidate=candidate,
        arch=arch,
        conventions=conventions,
        tolerances=tolerances,
        implementation=implementation,
    )
    if not report.passed:
        raise AssertionError(f"{implementation}'s {quantity} does not match gbml_testbed:\n{report}")
    return report


__all__ = ["assert_matches"]
