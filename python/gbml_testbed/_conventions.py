"""Keyword arguments -> the exchange manifest's ``conventions`` block (docs/FORMAT.md), the one
schema the Rust core parses for the package, ``gbml compare`` and the manifests alike."""

from __future__ import annotations

import json
import math
from typing import Any, Mapping, Optional, Sequence, Union

from .errors import InvalidParameterError

Widths = Union[int, Sequence[int], None]
Time = Union[float, str]

#: The keys of an architecture dict (the keyword arguments of the kernel functions).
ARCH_KEYS = ("depth", "activation", "sigma_w", "sigma_b", "parameterization", "width", "layers")

_RIDGE_MODES = {
    "inverse_only": "inverse_only",
    "inverse-only": "inverse_only",
    "inverse_and_exponent": "inverse_and_exponent",
    "both": "inverse_and_exponent",
}


def arch_block(
    *,
    depth: Optional[int] = None,
    activation: Optional[str] = None,
    sigma_w: float,
    sigma_b: Optional[float],
    parameterization: str = "ntk",
    width: Widths = None,
    layers: Any = None,
) -> dict:
    """The architecture fields of a conventions block: a fully-connected net (``depth``,
    ``activation``) or a convolutional one (``layers``: the layer-spec string of ``gbml kernel
    --layers``, e.g. ``"conv:3:same,relu,gap,dense"``, or a list of its words; ``width`` then is
    the one channel width N of the standard parameterization)."""
    if isinstance(width, bool) or not (width is None or isinstance(width, (int, list, tuple))):
        raise InvalidParameterError(
            f"invalid parameter `width` = {width!r}: expected an int or a list of ints"
        )
    if isinstance(parameterization, str):
        # As the CLI's --parameterization (src/bin/gbml/vocab.rs): case-insensitive, std = standard.
        parameterization = parameterization.lower()
        parameterization = "standard" if parameterization == "std" else parameterization
    block = {
        "parameterization": parameterization,
        "sigma_w": float(sigma_w),
        "sigma_b": None if sigma_b is None else float(sigma_b),
    }
    if layers is not None:
        if depth is not None or activation is not None:
            raise InvalidParameterError(
                f"invalid parameter `layers` = {layers!r}: give either layers= (a conv "
                "architecture) or depth= and activation= (a fully-connected one), not both"
            )
        if not isinstance(layers, str):
            if not (isinstance(layers, (list, tuple)) and all(isinstance(w, str) for w in layers)):
                raise InvalidParameterError(
                    f"invalid parameter `layers` = {layers!r}: expected a layer-spec string or "
                    "a list of layer words"
                )
            layers = ",".join(layers)
        if isinstance(width, int):
            widths: Optional[list] = [width]
        else:
            widths = None if width is None else [int(w) for w in width]
        block.update({"widths": widths, "layers": layers})
        return block
    for name, value in (("depth", depth), ("activation", activation)):
        if value is None:
            raise InvalidParameterError(
                f"invalid parameter `{name}` = None: a fully-connected net needs depth= and "
                "activation= (or describe a conv net with layers=)"
            )
    if isinstance(width, int):
        widths = [width] * int(depth)
    else:
        widths = None if width is None else [int(w) for w in width]
    block.update({"depth": int(depth), "activation": activation, "widths": widths})
    return block


def loop_block(
    name: str, lr: Optional[float], steps: Optional[int], time: Time, ridge: float, ridge_mode: str
) -> dict:
    """An inner or outer loop: ``lr`` and ``steps`` (discrete steps), else ``time`` (gradient-flow
    time, ``"inf"`` or ``math.inf`` for the infinite-time limit), as ``gbml mnk``'s
    ``--inner-lr --inner-steps --inner-time --inner-ridge --ridge-mode``."""
    mode = _RIDGE_MODES.get(ridge_mode)
    if mode is None:
        raise InvalidParameterError(
            f"invalid parameter `ridge_mode` = {ridge_mode}: expected inverse_only or both"
        )
    base = {"ridge": float(ridge), "ridge_mode": mode}
    if (lr is None) != (steps is None):
        raise InvalidParameterError(
            f"invalid parameter `{name}_lr` = {lr}: give both {name}_lr and {name}_steps, or neither"
        )
    if lr is not None:
        return {"kind": "steps", "lr": float(lr), "steps": int(steps), **base}
    if isinstance(time, str) and time.strip().lower() in ("inf", "infinite", "∞"):
        return {"kind": "infinite", **base}
    t = float(time)
    if math.isinf(t) and t > 0:
        return {"kind": "infinite", **base}
    return {"kind": "flow", "time": t, **base}


def to_json(block: Mapping[str, Any]) -> str:
    """JSON text of a conventions block (NaN is refused by the parser on the Rust side)."""
    return json.dumps(block, allow_nan=True)
