#!/usr/bin/env python3
"""Peer for benches/mnk_gram.rs: the authors' per-task-pair MNK formulation in NumPy.

Same shapes as the Rust bench (m = 5 support, n = 15 query points per task, N tasks), starting,
like the Rust assembly measurement and like the authors' code (load_precompute_NTKs), from a
precomputed NTK Gram matrix over [all queries; all supports]. Per task: T_i = Θ'^{-1}(I − e^{−sΘ'})
(scipy expm + solve); per pair (i, j) the block formula

    Φ_ij = Θ(X_i,X_j) − A_i Θ(X'_i,X_j) − Θ(X_i,X'_j) A_jᵀ + A_i Θ(X'_i,X'_j) A_jᵀ,  A_i = Θ(X_i,X'_i) T_i.

The Gram matrix itself is a random PSD stand-in (the cost of the formula does not depend on the
values). Prints seconds per assembly (best of --repeat runs) for each N.

Run: /opt/pyref/bin/python benches/peers/mnk_per_pair.py [--sizes 50 200] [--repeat 3]
(numpy==1.26.4, scipy==1.13.1; single-threaded BLAS recommended for a fair comparison:
OPENBLAS_NUM_THREADS=1 — the per-pair blocks are too small to use threads anyway).
"""
import argparse
import time

import numpy as np
import scipy.linalg as sla

M, NQ = 5, 15


def per_pair_phi(K, n_tasks, s=1.0):
    nq = n_tasks * NQ
    qi = [np.arange(i * NQ, (i + 1) * NQ) for i in range(n_tasks)]
    si = [nq + np.arange(i * M, (i + 1) * M) for i in range(n_tasks)]
    A = []
    for i in range(n_tasks):
        ks = K[np.ix_(si[i], si[i])]
        T = np.linalg.solve(ks, np.eye(M) - sla.expm(-s * ks))
        A.append(K[np.ix_(qi[i], si[i])] @ T)
    phi = np.zeros((nq, nq))
    for i in range(n_tasks):
        for j in range(n_tasks):
            blk = (K[np.ix_(qi[i], qi[j])] - A[i] @ K[np.ix_(si[i], qi[j])]
                   - K[np.ix_(qi[i], si[j])] @ A[j].T + A[i] @ K[np.ix_(si[i], si[j])] @ A[j].T)
            phi[i * NQ:(i + 1) * NQ, j * NQ:(j + 1) * NQ] = blk
    return phi


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for n in args.sizes:
        p = n * (NQ + M)
        F = rng.normal(size=(p, 64))
        K = F @ F.T / 64 + 0.1 * np.eye(p)
        best = np.inf
        for _ in range(args.repeat):
            t = time.perf_counter()
            per_pair_phi(K, n)
            best = min(best, time.perf_counter() - t)
        print(f"per_pair N={n}: {best:.4f} s")


if __name__ == "__main__":
    main()
