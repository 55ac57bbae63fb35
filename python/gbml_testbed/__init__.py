"""gbml_testbed: the exact reference of gradient-based meta-learning with over-parameterized
nets (Wang, Sun & Li, arXiv 2006.14606), from Python. A thin wrapper of the Rust crate: numpy
float64 arrays in and out, the GIL released while Rust computes, the crate's typed errors raised
as :mod:`gbml_testbed.errors` exceptions with the crate's messages.

Conventions (MATH.md §0, the same as the ``gbml`` CLI and the exchange format):

* points are **rows**: ``x`` is ``n × d``;
* the first layer sees ``x·x'/d`` (inputs are not normalised for you);
* **NTK parameterization** by default (``parameterization="standard"`` needs ``width``);
  ``sigma_b=None`` means *no bias at all*; ``sigma_b=0.0`` a bias of scale 0;
* losses are **sums** with a factor ½ (``loss="mean"`` divides by the number of label entries);
* in a task, the **support** set is the primed one (``X'``, adapts the inner loop), the query
  set the unprimed one (``X``, scores the meta-loss); stacked task arrays follow the exchange
  format's ``layout`` (docs/FORMAT.md): ``per_task`` = per task its supports then its queries,
  ``queries_first`` = all queries, then all supports.

Input arrays must be float64, C-contiguous numpy arrays of the right rank (``numpy.ascontiguousarray(x,
dtype=numpy.float64)``); anything else raises, never crashes.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

import json

import numpy as np

from . import _core
from ._conventions import ARCH_KEYS, Time, Widths, arch_block, loop_block, to_json
from .errors import *  # noqa: F401,F403
from .errors import InvalidParameterError, __all__ as _errors_all

__version__ = "0.1.0"


# --------------------------------------------------------------------------------------------
# Kernels (MATH.md §1)


def kernels(
    x1: np.ndarray,
    x2: Optional[np.ndarray] = None,
    *,
    depth: Optional[int] = None,
    activation: Optional[str] = None,
    sigma_w: float,
    sigma_b: Optional[float],
    parameterization: str = "ntk",
    width: Widths = None,
    layers: Any = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """``(nngp, ntk)``: the NNGP Σ and NTK Θ Gram matrices between the rows of ``x1`` and ``x2``
    (``x2=None``: ``x1`` with itself, exactly symmetric), bit-identical to ``gbml kernel --kind
    both`` on the same inputs.

    ``depth`` hidden layers L ≥ 0, ``activation`` one of ``relu``, ``erf``, ``identity``,
    ``leaky_relu(a)``, ``abrelu(a,b)``; ``sigma_w`` > 0; ``sigma_b`` ≥ 0 or ``None`` (no bias);
    ``parameterization`` ``"ntk"`` (default) or ``"standard"`` (needs ``width``: an int for
    every hidden layer or a list). The first layer sees ``x·x'/d``.

    ``layers``: a convolutional net instead of ``depth``/``activation`` — the layer-spec string
    of ``gbml kernel --layers`` (e.g. ``"conv:3:same,relu,conv:3:same,relu,gap,dense"``; words
    ``conv:K:same|valid``, ``avgpool:K``, ``gap``, ``flatten``, ``dense`` and the activation
    names; neural-tangents ``stax`` conventions) or a list of its words; ``x1``/``x2`` are then
    NHWC image arrays (M, H, W, C) (an (M, d) matrix is M images 1×1×d), ``width`` the channel
    width N of the standard parameterization; bit-identical to ``gbml kernel --layers``.
    """
    n, t = _core.kernels(
        x1, x2, to_json(arch_block(**_arch(locals()))), "both"
    )
    return n, t


def nngp(
    x1: np.ndarray,
    x2: Optional[np.ndarray] = None,
    *,
    depth: Optional[int] = None,
    activation: Optional[str] = None,
    sigma_w: float,
    sigma_b: Optional[float],
    parameterization: str = "ntk",
    width: Widths = None,
    layers: Any = None,
) -> np.ndarray:
    """The NNGP Gram matrix Σ^{L+1}(x1, x2) (the GP prior of the output); arguments as
    :func:`kernels`; bit-identical to ``gbml kernel --kind nngp``."""
    return _core.kernels(x1, x2, to_json(arch_block(**_arch(locals()))), "nngp")[0]


def ntk(
    x1: np.ndarray,
    x2: Optional[np.ndarray] = None,
    *,
    depth: Optional[int] = None,
    activation: Optional[str] = None,
    sigma_w: float,
    sigma_b: Optional[float],
    parameterization: str = "ntk",
    width: Widths = None,
    layers: Any = None,
) -> np.ndarray:
    """The NTK Gram matrix Θ^{L+1}(x1, x2); arguments as :func:`kernels`; bit-identical to
    ``gbml kernel --kind ntk``."""
    return _core.kernels(x1, x2, to_json(arch_block(**_arch(locals()))), "ntk")[1]


def _arch(args: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: args[k] for k in ARCH_KEYS}


# --------------------------------------------------------------------------------------------
# Meta-learning quantities (MATH.md §2-§5), computed by the same engine `gbml compare` uses


def reference(
    quantity: str,
    inputs: Mapping[str, np.ndarray],
    conventions: Mapping[str, Any],
    precision: str = "f64",
) -> np.ndarray:
    """Our reference value of an exchange-format ``quantity`` (``nngp``, ``ntk``, ``mnk_gram``,
    ``mnk_cross``, ``inner_operator_t``, ``predictions``, ``meta_gradient``,
    ``meta_loss_trajectory``, ``complexity``) on ``inputs`` (role → array, the manifest's input
    roles) under a full manifest ``conventions`` block (docs/FORMAT.md). ``precision``: ``"f64"``
    (the fast path, as the CLI's default; bit-identical to ``gbml mnk`` and to the Dask tiles) or
    ``"extended"`` (double-double, faithful values: what ``compare`` judges against)."""
    return _core.reference(quantity, dict(inputs), to_json(conventions), precision)


def _tasks(layout: str, support: int, query: int, loss: str, variant: str) -> Dict[str, Any]:
    return {
        "layout": layout,
        "task_shape": {"support": int(support), "query": int(query)},
        "loss": loss,
        "variant": variant,
    }


def _mnk_conventions(a: Mapping[str, Any]) -> Dict[str, Any]:
    """The conventions block of the task-set quantities from the keyword arguments of
    :func:`mnk` / :func:`mnk_predict`."""
    conv = arch_block(**_arch(a))
    conv.update(_tasks(a["layout"], a["support"], a["query"], a["loss"], a["variant"]))
    conv["inner"] = loop_block(
        "inner", a["inner_lr"], a["inner_steps"], a["inner_time"], a["inner_ridge"], a["ridge_mode"]
    )
    return conv


def inner_operator(
    x_support: np.ndarray,
    y_support: np.ndarray,
    *,
    depth: int,
    activation: str,
    sigma_w: float,
    sigma_b: Optional[float],
    parameterization: str = "ntk",
    width: Widths = None,
    layers: Any = None,
    inner_lr: Optional[float] = None,
    inner_steps: Optional[int] = None,
    inner_time: Time = 1.0,
    inner_ridge: float = 0.0,
    ridge_mode: str = "inverse_only",
    loss: str = "sum",
    variant: str = "maml",
    precision: str = "f64",
) -> np.ndarray:
    """The inner-loop operator T = Θ'⁻¹(I − e^{−λτΘ'}) of one task's support set (MATH.md §2),
    m × m, with Θ' the NTK (``variant="maml"``) or NNGP (``"anil"``) Gram matrix of
    ``x_support``. Inner loop: ``inner_lr`` and ``inner_steps`` (discrete steps), else
    ``inner_time`` λτ (``"inf"`` for the limit); sum loss unless ``loss="mean"``."""
    conv = arch_block(**_arch(locals()))
    conv["loss"] = loss
    conv["variant"] = variant
    conv["inner"] = loop_block("inner", inner_lr, inner_steps, inner_time, inner_ridge, ridge_mode)
    return reference("inner_operator_t", {"x_support": x_support, "y_support": y_support}, conv, precision)


def mnk(
    x: np.ndarray,
    y: np.ndarray,
    *,
    support: int,
    query: int,
    layout: str = "per_task",
    test_x: Optional[np.ndarray] = None,
    test_y: Optional[np.ndarray] = None,
    depth: int,
    activation: str,
    sigma_w: float,
    sigma_b: Optional[float],
    parameterization: str = "ntk",
    width: Widths = None,
    layers: Any = None,
    inner_lr: Optional[float] = None,
    inner_steps: Optional[int] = None,
    inner_time: Time = 1.0,
    inner_ridge: float = 0.0,
    ridge_mode: str = "inverse_only",
    loss: str = "sum",
    variant: str = "maml",
    precision: str = "f64",
) -> np.ndarray:
    """The Meta Neural Kernel Φ over the query points of the training tasks (MATH.md §3),
    Σn × Σn; with ``test_x``/``test_y`` the cross kernel Φ(test, train) instead. ``x``, ``y``:
    the tasks stacked in ``layout`` with ``support`` (primed) and ``query`` points per task.
    Inner loop as :func:`inner_operator`."""
    conv = _mnk_conventions(locals())
    if test_x is None and test_y is None:
        return reference("mnk_gram", {"x": x, "y": y}, conv, precision)
    return reference("mnk_cross", {"x": x, "y": y, "test_x": test_x, "test_y": test_y}, conv, precision)


def mnk_predict(
    x: np.ndarray,
    y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    support: int,
    query: int,
    layout: str = "per_task",
    f0: Optional[np.ndarray] = None,
    test_f0: Optional[np.ndarray] = None,
    depth: int,
    activation: str,
    sigma_w: float,
    sigma_b: Optional[float],
    parameterization: str = "ntk",
    width: Widths = None,
    layers: Any = None,
    inner_lr: Optional[float] = None,
    inner_steps: Optional[int] = None,
    inner_time: Time = 1.0,
    inner_ridge: float = 0.0,
    outer_lr: Optional[float] = None,
    outer_steps: Optional[int] = None,
    outer_time: Time = 1.0,
    outer_ridge: float = 0.0,
    ridge_mode: str = "inverse_only",
    loss: str = "sum",
    variant: str = "maml",
    precision: str = "f64",
) -> np.ndarray:
    """The kernel-regression meta-learner's predictions on the test tasks' query points
    (MATH.md §5), Σn̂ × k. ``f0``/``test_f0``: network outputs at initialization stacked like
    ``x``/``test_x`` (default 0). Outer loop: ``outer_lr``/``outer_steps``, else
    ``outer_time`` ηt (default 1, as ``gbml mnk``; ``"inf"`` for the trained limit)."""
    conv = _mnk_conventions(locals())
    conv["outer"] = loop_block("outer", outer_lr, outer_steps, outer_time, outer_ridge, ridge_mode)
    inputs = {"x": x, "y": y, "test_x": test_x, "test_y": test_y}
    if (f0 is None) != (test_f0 is None):
        raise InvalidParameterError(
            "invalid parameter `f0` = (one of f0, test_f0): give both f0 and test_f0, or neither"
        )
    conv["f0"] = "zero" if f0 is None else "file"
    if f0 is not None:
        inputs.update(f0=f0, test_f0=test_f0)
    return reference("predictions", inputs, conv, precision)


def meta_gradient(
    params: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    support: int,
    query: int,
    layout: str = "per_task",
    depth: int,
    activation: str,
    sigma_w: float,
    sigma_b: Optional[float],
    parameterization: str = "ntk",
    width: Widths = None,
    layers: Any = None,
    inner_lr: float,
    inner_steps: int,
    loss: str = "sum",
    order: str = "second",
    variant: str = "maml",
) -> np.ndarray:
    """The MAML meta-gradient ∇_θ Σ_i ½‖f_{θ_τ^i}(X_i) − Y_i‖² of a finite MLP at the flat
    parameters ``params`` (per layer W row-major n_out × n_in, then b), exact second order
    (``order="first"`` drops the Hessian terms); ``inner_steps`` steps of rate ``inner_lr`` on
    each task's support set; ``width`` (hidden widths) is required."""
    conv = arch_block(**_arch(locals()))
    conv.update(_tasks(layout, support, query, loss, variant))
    conv["order"] = order
    conv["inner"] = loop_block("inner", inner_lr, inner_steps, 0.0, 0.0, "inverse_only")
    return reference("meta_gradient", {"params": params, "x": x, "y": y}, conv)


# --------------------------------------------------------------------------------------------
# Design guidance (gbml advise, issue 15)


def advise(
    xs: np.ndarray,
    ys: np.ndarray,
    xq: np.ndarray,
    yq: np.ndarray,
    *,
    depth: int = 1,
    activation: str = "relu",
    sigma_w: float = 2.0 ** 0.5,
    sigma_b: Optional[float] = 1.0,
    parameterization: str = "ntk",
    width: Widths = None,
    variant: str = "maml",
    inner_lr: Optional[float] = None,
    inner_steps: int = 1,
    ridge_rel: float = 0.01,
    groups: Optional[int] = None,
    width_study: bool = False,
    tol: float = 0.05,
) -> Dict[str, Any]:
    """``gbml advise`` on your own tasks: the advice as the dict ``gbml advise --json`` prints
    (same keys, same numbers): ``outer``/``inner`` (critical and best learning rates, MATH.md §2,
    §4), ``cv`` (leave-one-task-out losses of the base learner G and of the MNK predictor, the
    paired interval ``gain`` and ``verdict`` ``"helps"`` / ``"does_not_help"`` / ``"hurts"``),
    ``complexity``, ``affinity`` (held-out transfer between tasks), ``clustering``, ``groups``,
    ``influence`` and ``width`` (``None`` unless ``width_study=True``; fully-connected nets only).

    Tasks are stacked like the ``gbml advise --tasks npy`` folder: ``xs`` N × m × d and ``ys``
    N × m × k (support), ``xq`` N × n × d and ``yq`` N × n × k (query). The kernel is the analytic
    NTK of the fully-connected net (arguments as :func:`ntk`; defaults those of ``gbml advise``).
    ``inner_lr=None``: half the largest stable inner rate, as the CLI. Fewer than 5 tasks raise
    :class:`~gbml_testbed.errors.InvalidParameterError` ("need at least 5 tasks to
    cross-validate"); every number is an infinite-width prediction except the width study."""
    arch = arch_block(
        depth=depth,
        activation=activation,
        sigma_w=sigma_w,
        sigma_b=sigma_b,
        parameterization=parameterization,
        width=width,
        layers=None,
    )
    arch["variant"] = variant
    text = _core.advise(
        xs, ys, xq, yq, to_json(arch), inner_lr, int(inner_steps), float(ridge_rel), groups,
        bool(width_study), float(tol),
    )
    return json.loads(text)


# --------------------------------------------------------------------------------------------
# Comparison (gbml compare, in memory)


class Worst(NamedTuple):
    """The entry with the fewest correct digits."""

    index: Tuple[int, ...]
    value: float
    reference: float


class Diagnosis(NamedTuple):
    """An alternative convention under which a mismatching candidate does match."""

    name: str
    min_lre: float
    explanation: str


class Report:
    """The outcome of :func:`compare`: ``passed``, ``min_lre`` (correct digits of the worst
    entry; ``None`` when the shape did not match), ``worst`` (index, value, reference),
    ``diagnosis`` (alternative conventions that explain a mismatch), ``data`` (the whole report
    as ``gbml compare --json`` writes it); ``str(report)`` is ``gbml compare``'s text."""

    def __init__(self, data: Dict[str, Any], text: str) -> None:
        self.data = data
        self.text = text
        stats = data.get("stats")
        self.passed: bool = data["verdict"] == "pass"
        self.min_lre: Optional[float] = None if stats is None else stats["min_lre"]
        self.median_lre: Optional[float] = None if stats is None else stats["median_lre"]
        self.worst: Optional[Worst] = (
            None
            if stats is None
            else Worst(tuple(stats["worst_index"]), stats["worst_candidate"], stats["worst_reference"])
        )
        self.diagnosis: List[Diagnosis] = [
            Diagnosis(d["name"], d["min_lre"], d["explanation"]) for d in data["diagnoses"]
        ]
        self.required_digits: float = data["tolerance"]["min_digits"]

    def __str__(self) -> str:
        return self.text.rstrip("\n")

    def __repr__(self) -> str:
        return f"<gbml_testbed.Report {'PASS' if self.passed else 'MISMATCH'} min_lre={self.min_lre}>"


Tolerances = Union[None, float, str, Mapping[str, Any]]


def _tolerance_toml(quantity: str, tolerances: Tolerances) -> Optional[str]:
    """A tolerance override as the TOML text of ``gbml compare --tolerances``: a number (min
    digits for ``quantity``), a dict of one quantity's fields (``min_digits``, ``floor``,
    ``reason``), a dict of such dicts by quantity name, or TOML text."""
    if tolerances is None or isinstance(tolerances, str):
        return tolerances
    if isinstance(tolerances, (int, float)):
        tolerances = {quantity: {"min_digits": float(tolerances)}}
    elif "min_digits" in tolerances:
        tolerances = {quantity: tolerances}
    lines = []
    for q, entry in tolerances.items():
        lines.append(f"[{q}]")
        for k, v in entry.items():
            lines.append(f"{k} = {json.dumps(v) if isinstance(v, str) else repr(float(v))}")
    return "\n".join(lines) + "\n"


def compare(
    quantity: str,
    *,
    inputs: Mapping[str, np.ndarray],
    candidate: np.ndarray,
    arch: Optional[Mapping[str, Any]] = None,
    conventions: Optional[Mapping[str, Any]] = None,
    tolerances: Tolerances = None,
    implementation: str = "python",
) -> Report:
    """Judge a ``candidate`` value of ``quantity`` against our reference on the same ``inputs``
    (role → array: ``x1``/``x2`` for kernels; as docs/FORMAT.md otherwise), as ``gbml compare``
    does: correct digits (LRE) per entry, pass when the worst entry has at least the quantity's
    certified digits (or ``tolerances``), and for a mismatch the alternative conventions that
    explain it. ``arch``: a dict with the keyword arguments of :func:`ntk`; ``conventions``:
    further fields of the manifest's conventions block (``loss``, ``inner``, ``outer``,
    ``layout``, ``task_shape``, ``f0``, ``variant``, ``order``)."""
    block: Dict[str, Any] = {}
    if arch is not None:
        unknown = set(arch) - set(ARCH_KEYS)
        if unknown:
            raise InvalidParameterError(
                f"invalid parameter `arch` = {sorted(unknown)}: unknown keys, expected {list(ARCH_KEYS)}"
            )
        needed = {"sigma_w", "sigma_b"} | (set() if "layers" in arch else {"depth", "activation"})
        missing = needed - set(arch)
        if missing:
            raise InvalidParameterError(
                f"invalid parameter `arch` = {dict(arch)}: missing keys {sorted(missing)} "
                "(sigma_b=None means no bias)"
            )
        full = {"parameterization": "ntk", "width": None, "layers": None, "depth": None,
                "activation": None}
        full.update(arch)
        block.update(arch_block(**full))
    if conventions is not None:
        block.update(conventions)
    data, text = _core.compare(
        quantity,
        dict(inputs),
        candidate,
        to_json(block),
        _tolerance_toml(quantity, tolerances),
        implementation,
    )
    return Report(json.loads(data), text)


__all__ = [
    "kernels",
    "nngp",
    "ntk",
    "reference",
    "inner_operator",
    "mnk",
    "mnk_predict",
    "meta_gradient",
    "advise",
    "compare",
    "Report",
    "Worst",
    "Diagnosis",
] + list(_errors_all)
