"""Scale-out on Dask: the kernel Gram matrices as a ``dask.array`` whose blocks are row tiles
computed by the Rust core on the workers (``kernel::kernels_rows_between``, a bit-exact slice of
the full matrix), so ``.compute()`` equals :func:`gbml_testbed.ntk` bit for bit whatever the
chunking, the scheduler or the number of workers; ``.to_zarr(path)`` writes it tile by tile.

Needs ``dask[array]`` (and ``distributed`` for a cluster). With a ``dask.distributed.Client``
active, ``.compute()`` runs on its workers; each worker needs ``gbml_testbed`` installed.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _core
from ._conventions import Widths, arch_block, to_json
from . import _arch

try:
    import dask
    import dask.array as da
except ImportError as e:  # pragma: no cover - exercised only without dask
    raise ImportError("gbml_testbed.dask needs dask[array]: pip install 'dask[array]'") from e


def _tile(x1: np.ndarray, x2: Optional[np.ndarray], arch: str, kind: str, start: int, stop: int) -> np.ndarray:
    """Rows start..stop of one kernel (runs on a worker)."""
    nngp, ntk = _core.kernels(x1, x2, arch, kind, (start, stop))
    return ntk if kind == "ntk" else nngp


def _chunks_ok(chunks: Any) -> None:
    if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 1:
        from .errors import InvalidParameterError

        raise InvalidParameterError(
            f"invalid parameter `chunks` = {chunks!r}: expected a number of rows >= 1"
        )


def _stack_rows(tile: Any, args: tuple, n1: int, n2: int, chunks: int) -> "da.Array":
    """Rows 0..n1 as a dask array of delayed row tiles ``tile(*args, a, b)``."""
    blocks = [
        da.from_delayed(tile(*args, a, min(a + chunks, n1)), shape=(min(a + chunks, n1) - a, n2),
                        dtype=np.float64)
        for a in range(0, n1, chunks)
    ]
    if not blocks:
        return da.zeros((0, n2), dtype=np.float64)
    return da.concatenate(blocks, axis=0)


def _gram(kind: str, x1: np.ndarray, x2: Optional[np.ndarray], chunks: int, arch: dict) -> "da.Array":
    _chunks_ok(chunks)
    spec = to_json(arch_block(**arch))
    # Validate eagerly (architecture, dtype, layout, rank, NaN): an empty row range checks the
    # inputs exactly as the full computation does, so bad input raises here, not on a worker.
    _core.kernels(x1, x2, spec, kind, (0, 0))
    n1 = x1.shape[0]
    n2 = n1 if x2 is None else x2.shape[0]
    x1d = dask.delayed(x1, pure=True)
    x2d = None if x2 is None else dask.delayed(x2, pure=True)
    return _stack_rows(dask.delayed(_tile, pure=True), (x1d, x2d, spec, kind), n1, n2, chunks)


def ntk(
    x1: np.ndarray,
    x2: Optional[np.ndarray] = None,
    *,
    chunks: int,
    depth: Optional[int] = None,
    activation: Optional[str] = None,
    sigma_w: float,
    sigma_b: Optional[float],
    parameterization: str = "ntk",
    width: Widths = None,
    layers: Any = None,
) -> "da.Array":
    """Θ(x1, x2) as a dask array of row tiles of ``chunks`` rows (arguments as
    :func:`gbml_testbed.ntk`, including ``layers=`` for conv nets on NHWC images);
    ``.compute()`` is bit-identical to it."""
    return _gram("ntk", x1, x2, chunks, _arch(locals()))


def nngp(
    x1: np.ndarray,
    x2: Optional[np.ndarray] = None,
    *,
    chunks: int,
    depth: Optional[int] = None,
    activation: Optional[str] = None,
    sigma_w: float,
    sigma_b: Optional[float],
    parameterization: str = "ntk",
    width: Widths = None,
    layers: Any = None,
) -> "da.Array":
    """Σ(x1, x2) as a dask array of row tiles of ``chunks`` rows (arguments as
    :func:`gbml_testbed.nngp`, including ``layers=`` for conv nets on NHWC images);
    ``.compute()`` is bit-identical to it."""
    return _gram("nngp", x1, x2, chunks, _arch(locals()))


def _phi_tile(x: np.ndarray, y: np.ndarray, conv: str, start: int, stop: int) -> np.ndarray:
    """Rows start..stop of Φ (runs on a worker)."""
    return _core.mnk_phi_rows(x, y, conv, (start, stop))


def mnk(x: np.ndarray, y: np.ndarray, *, chunks: int, **kwargs: Any) -> "da.Array":
    """The Meta Neural Kernel Φ of the training tasks stacked in ``x``, ``y`` as a dask array of
    row tiles of ``chunks`` query rows; keyword arguments as :func:`gbml_testbed.mnk` (without
    ``test_x``/``test_y``). ``.compute()`` is bit-identical to ``gbml_testbed.mnk(x, y, ...)``.
    Every tile recomputes the tasks' inner-loop adapters (N small m × m solves) and the base
    kernel only on its rows and the supports of the tasks they touch (``Mnk::phi_rows``)."""
    import inspect

    from . import _mnk_conventions
    from . import mnk as _mnk

    _chunks_ok(chunks)
    bound = inspect.signature(_mnk).bind(x, y, **kwargs)
    bound.apply_defaults()
    a = bound.arguments
    if a["test_x"] is not None or a["test_y"] is not None:
        from .errors import UnsupportedError

        raise UnsupportedError("unsupported: gbml_testbed.dask.mnk computes Φ of the training tasks; "
                               "use gbml_testbed.mnk for the cross kernel")
    conv = to_json(_mnk_conventions(a))
    _core.mnk_phi_rows(x, y, conv, (0, 0))  # validate eagerly, as _gram
    nq = (x.shape[0] // (a["support"] + a["query"])) * a["query"]
    xd, yd = dask.delayed(x, pure=True), dask.delayed(y, pure=True)
    return _stack_rows(dask.delayed(_phi_tile, pure=True), (xd, yd, conv), nq, nq, chunks)


__all__ = ["ntk", "nngp", "mnk"]
