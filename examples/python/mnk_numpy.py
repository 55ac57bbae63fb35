#!/usr/bin/env python
"""The authors' published Meta Neural Kernel formulas, in NumPy/SciPy, checked by `gbml compare`.

Usage:
    JAX_ENABLE_X64=1 python mnk_numpy.py PACK_DIR [--gbml PATH] [--tolerances FILE]

Follows the MNK code of Wang, Sun & Li (AI-secure/Meta-Neural-Kernel) and MetaNTK-NAS
(YiteWang/MetaNTK-NAS) as described in MATH.md §8 of gbml-testbed:
- base kernel: neural-tangents' analytic NTK of the manifest's architecture;
- inner operator T = (Θ' + reg·I)^{-1} (I − expm(−t Θ')) with a single inner "time" t
  (`inner_lr_time`: λτ for a discrete inner loop, as in their code), ridge in the inverse only;
  infinite time: (Θ' + reg·I)^{-1};
- Φ_ij = Θ(X_i,X_j) − Θ(X_i,X'_i)T_iΘ(X'_i,X_j) − Θ(X_i,X'_j)T_jΘ(X'_j,X_j)
         + Θ(X_i,X'_i)T_iΘ(X'_i,X'_j)T_jΘ(X'_j,X_j)   (block by block, explicit inverses);
- predictions F = G_test + Φ(test,train) Φ^{-1}(I − expm(−ηt Φ))(Y − G_train), f0 = 0;
  infinite outer time: (Φ + reg·I)^{-1};
- complexity C = sqrt(tr(Ỹᵀ (Φ + reg·I)^{-1} Ỹ)/N).
For every task-set case of the pack it writes `<case>/mnk-numpy/candidate.npy` plus a candidate
manifest and runs `gbml compare run` on them. Exit code: gbml's.
"""
import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("JAX_ENABLE_X64", "1")
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
import scipy.linalg as sla  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_neural_tangents import kernel_fn  # noqa: E402

IMPL = "authors' MNK formulas (NumPy/SciPy, examples/python/mnk_numpy.py)"
SUB = "mnk-numpy"


def unstack(a, layout, m, n):
    per = m + n
    nt = a.shape[0] // per
    if layout == "per_task":
        s = [a[i * per:i * per + m] for i in range(nt)]
        q = [a[i * per + m:(i + 1) * per] for i in range(nt)]
    else:  # queries_first
        q = [a[i * n:(i + 1) * n] for i in range(nt)]
        s = [a[nt * n + i * m:nt * n + (i + 1) * m] for i in range(nt)]
    return s, q


def inner_T(theta_s, inner):
    """T with the authors' single inner time and ridge in the inverse only."""
    reg = inner["ridge"]
    eye = np.eye(theta_s.shape[0])
    if inner["kind"] == "infinite":
        return np.linalg.inv(theta_s + reg * eye)
    t = inner["time"] if inner["kind"] == "flow" else inner["lr"] * inner["steps"]
    return np.linalg.inv(theta_s + reg * eye) @ (eye - sla.expm(-t * theta_s))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pack")
    ap.add_argument("--gbml", default="gbml")
    ap.add_argument("--tolerances", default=None)
    args = ap.parse_args()
    index = json.load(open(os.path.join(args.pack, "index.json")))
    manifests = []
    for entry in index:
        q = entry["quantity"]
        if q not in ("inner_operator_t", "mnk_gram", "mnk_cross", "predictions", "complexity"):
            continue
        cdir = os.path.join(args.pack, entry["case"])
        man = json.load(open(os.path.join(cdir, "manifest.json")))
        conv = man["conventions"]
        kfn = kernel_fn(conv)
        K = lambda a, b: np.asarray(kfn(a, b, "ntk"), dtype=np.float64)  # noqa: E731
        load = lambda r: np.load(os.path.join(cdir, man["inputs"][r]))  # noqa: E731
        if q == "inner_operator_t":
            xs = load("x_support")
            out = inner_T(K(xs, xs), conv["inner"])
        else:
            m, n = conv["task_shape"]["support"], conv["task_shape"]["query"]
            xs, xq = unstack(load("x"), conv["layout"], m, n)
            ys, yq = unstack(load("y"), conv["layout"], m, n)
            N = len(xs)
            T = [inner_T(K(xs[i], xs[i]), conv["inner"]) for i in range(N)]

            def phi_block(xqi, xsi, Ti, xqj, xsj, Tj):
                return (K(xqi, xqj) - K(xqi, xsi) @ Ti @ K(xsi, xqj)
                        - K(xqi, xsj) @ Tj @ K(xsj, xqj)
                        + K(xqi, xsi) @ Ti @ K(xsi, xsj) @ Tj @ K(xsj, xqj))

            phi = np.block([[phi_block(xq[i], xs[i], T[i], xq[j], xs[j], T[j])
                             for j in range(N)] for i in range(N)])
            G = np.concatenate([K(xq[i], xs[i]) @ T[i] @ ys[i] for i in range(N)])
            Y = np.concatenate(yq)
            if q == "mnk_gram":
                out = phi
            elif q == "complexity":
                reg = conv["outer"]["ridge"] if "outer" in conv else 0.0
                R = Y - G
                out = np.array(np.sqrt(np.trace(R.T @ np.linalg.inv(phi + reg * np.eye(len(phi))) @ R) / N))
            else:
                txs, txq = unstack(load("test_x"), conv["layout"], m, n)
                tys, _ = unstack(load("test_y"), conv["layout"], m, n)
                Nt = len(txs)
                tT = [inner_T(K(txs[i], txs[i]), conv["inner"]) for i in range(Nt)]
                cross = np.block([[phi_block(txq[i], txs[i], tT[i], xq[j], xs[j], T[j])
                                   for j in range(N)] for i in range(Nt)])
                if q == "mnk_cross":
                    out = cross
                else:
                    Gt = np.concatenate([K(txq[i], txs[i]) @ tT[i] @ tys[i] for i in range(Nt)])
                    outer = conv["outer"]
                    eye = np.eye(len(phi))
                    if outer["kind"] == "infinite":
                        h = np.linalg.inv(phi + outer["ridge"] * eye)
                    else:
                        t = outer["time"] if outer["kind"] == "flow" else outer["lr"] * outer["steps"]
                        h = np.linalg.inv(phi + outer["ridge"] * eye) @ (eye - sla.expm(-t * phi))
                    out = Gt + cross @ h @ (Y - G)
        odir = os.path.join(cdir, SUB)
        os.makedirs(odir, exist_ok=True)
        np.save(os.path.join(odir, "candidate.npy"), np.asarray(out, dtype=np.float64))
        cand = dict(man)
        cand["implementation"] = IMPL
        cand["inputs"] = {r: os.path.join("..", p) for r, p in man["inputs"].items()}
        cand["output"] = "candidate.npy"
        cand.pop("certified_digits", None)
        cand["notes"] = "computed by examples/python/mnk_numpy.py"
        path = os.path.join(odir, "manifest.json")
        json.dump(cand, open(path, "w"), indent=2)
        manifests.append(path)
    cmd = [args.gbml, "compare", "run", *manifests]
    if args.tolerances:
        cmd += ["--tolerances", args.tolerances]
    print("+", " ".join(cmd[:3]), f"<{len(manifests)} manifests>", flush=True)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
