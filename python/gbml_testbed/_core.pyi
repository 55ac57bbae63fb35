"""Type stubs of the Rust extension module (python/src/lib.rs)."""

from typing import Dict, Optional, Tuple

import numpy as np

def kernels(
    x1: np.ndarray,
    x2: Optional[np.ndarray],
    arch: str,
    want: str,
    rows: Optional[Tuple[int, int]] = None,
) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]: ...
def reference(quantity: str, inputs: Dict[str, np.ndarray], conventions: str, precision: str = "f64") -> np.ndarray: ...
def compare(
    quantity: str,
    inputs: Dict[str, np.ndarray],
    candidate: np.ndarray,
    conventions: str,
    tolerances: Optional[str] = None,
    implementation: str = "python",
) -> Tuple[str, str]: ...
def time_kernels(x1: np.ndarray, arch: str, want: str, repeats: int) -> float: ...
def mnk_phi_rows(x: np.ndarray, y: np.ndarray, conventions: str, rows: Tuple[int, int]) -> np.ndarray: ...
def advise(
    xs: np.ndarray,
    ys: np.ndarray,
    xq: np.ndarray,
    yq: np.ndarray,
    arch: str,
    inner_lr: Optional[float],
    inner_steps: int,
    ridge_rel: float,
    groups: Optional[int],
    width_study: bool,
    tol: float,
) -> str: ...
