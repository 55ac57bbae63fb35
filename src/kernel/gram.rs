//! The Gram drivers: the fused symmetric Gram path (per tile: Gram product, batched
//! recursion, streamed write of both triangles), the row-block path, and the per-layer path
//! (scalar recursion, [`super::pair`]).

use super::activation::{Diag, PairState};
use super::arch::Arch;
use super::batch;
use super::gram_tile;
use super::output::Kernels;
use super::pair::{
    diag_chain, first_layer, first_layer_naive, point_scales, recurse_with, row_norms2,
    scaled_first,
};
use crate::linalg::{self, SharedOut};
use ndarray::{s, Array2, ArrayView2, Axis};
use rayon::prelude::*;
use std::ops::Range;

/// Rows (and columns) per Gram tile: the unit of parallel work and of the fused recursion
/// (a 192 × 192 tile and its kernel values stay in L2). A multiple of [`gram_tile::NR`].
const TILE: usize = 192;

/// `X1[rows] · X2ᵀ`, computed by [`gram_tile`] in tiles of [`TILE`] rows and columns, in
/// parallel. Every entry is the ascending FMA chain of its two rows, so its bits do not
/// depend on which rows were asked for, on the thread count, or on the order of X1 and X2:
/// with X2 = X1 the result is exactly symmetric (the row-block API, [`kernels_rows`], needs
/// exactly that).
fn gram_rows(x1: ArrayView2<f64>, x2: ArrayView2<f64>, rows: Range<usize>) -> Array2<f64> {
    let pa = gram_tile::Packed::new(x1.slice(s![rows.clone(), ..]));
    let pb = gram_tile::Packed::new(x2);
    let (m, n) = (rows.len(), x2.nrows());
    let mut out = Array2::<f64>::zeros((m, n));
    out.axis_chunks_iter_mut(Axis(0), TILE)
        .into_par_iter()
        .with_max_len(1)
        .enumerate()
        .for_each(|(t, mut chunk)| {
            let r = t * TILE..t * TILE + chunk.nrows();
            let o = chunk.as_slice_mut().expect("row-major");
            for c0 in (0..n).step_by(TILE) {
                let c = c0..(c0 + TILE).min(n);
                gram_tile::tile_product(&pa, &pb, r.clone(), c, false, &mut o[c0..], n);
            }
        });
    out
}

/// Rows of Gram tile `t` of an n-row input.
fn tile_range(t: usize, n: usize) -> Range<usize> {
    t * TILE..((t + 1) * TILE).min(n)
}

/// The tiles (I, J), I ≥ J, of the lower block triangle of an n × n Gram matrix.
fn lower_tiles(n: usize) -> Vec<(usize, usize)> {
    let nt = n.div_ceil(TILE);
    (0..nt).flat_map(|i| (0..=i).map(move |j| (i, j))).collect()
}

/// Benchmark hook: the Gram product part of [`gram_sym`] alone (packing, then every
/// lower-triangle tile into the per-thread buffer; nothing is evaluated or written).
#[doc(hidden)]
pub fn bench_gram_tiles(x: ArrayView2<f64>) {
    let n = x.nrows();
    let px = gram_tile::Packed::new(x);
    lower_tiles(n)
        .par_iter()
        .with_max_len(1)
        .for_each(|&(bi, bj)| {
            TILE_BUFS.with_borrow_mut(|(gbuf, _, _)| {
                let (ri, rj) = (tile_range(bi, n), tile_range(bj, n));
                let mj = rj.len();
                gram_tile::tile_product(&px, &px, ri, rj, bi == bj, gbuf, mj);
            })
        });
}

/// The full symmetric kernel matrices K(X, X), fused per Gram tile: for every [`TILE`]×[`TILE`]
/// block (I, J), I ≥ J, the Gram tile `X_I X_Jᵀ` ([`gram_tile`]; lower half only on diagonal
/// blocks; the same bits as [`gram_rows`]) into a per-thread buffer, then the whole recursion for the
/// pairs of that block while its Gram entries are in cache ([`batch::eval_block`], j ≤ i in the
/// diagonal blocks) into per-thread tile buffers, which are written to K[I, J] and, transposed
/// in registers, to K[J, I] with streaming stores (each output cache line is written once and
/// never read: no read-for-ownership traffic). No M×M Gram matrix, no mirror pass; the
/// finiteness check is folded into the tile loop. Returns the matrices in `want` (the other
/// is 0×0) and whether every computed value is finite.
pub(crate) fn gram_sym(arch: &Arch, x: ArrayView2<f64>, want: Want) -> (Kernels, bool) {
    let n = x.nrows();
    let cx = batch::Ctx::new(arch, x.view(), None);
    let px = gram_tile::Packed::new(x);
    let blocks = lower_tiles(n);
    let alloc = |on: bool| {
        if on {
            linalg::zeros_huge(n, n)
        } else {
            Array2::<f64>::zeros((0, 0))
        }
    };
    let mut nngp = alloc(want != Want::Ntk);
    let mut ntk = alloc(want != Want::Nngp);
    let pn = SharedOut(nngp.as_mut_ptr());
    let pt = SharedOut(ntk.as_mut_ptr());
    let (wn, wt) = (want != Want::Ntk, want != Want::Nngp);
    let finite = std::sync::atomic::AtomicBool::new(true);
    // One tile per rayon job: with the default adaptive split a thread may run out of work
    // while the other still holds a long sequential run of tiles (measured: up to 9 ms of one
    // idle core at M = 4000).
    blocks.par_iter().with_max_len(1).for_each(|&(bi, bj)| {
        TILE_BUFS.with_borrow_mut(|(gbuf, kc, kt)| {
            let (ri, rj) = (tile_range(bi, n), tile_range(bj, n));
            let mj = rj.len();
            let diag = bi == bj;
            gram_tile::tile_product(&px, &px, ri.clone(), rj.clone(), diag, gbuf, mj);
            let (bad_c, bad_t) = batch::eval_block(
                &cx,
                batch::Block {
                    rows: ri.clone(),
                    j0: rj.start,
                    ncols: mj,
                    ld: mj,
                    lower: diag,
                    g: gbuf,
                    out_c: kc,
                    out_t: kt,
                    keep_c: wn,
                    keep_t: wt,
                },
            );
            let ok = bad_c == 0 && bad_t == 0;
            for (on, p, vals) in [(wn, pn, &mut *kc), (wt, pt, &mut *kt)] {
                if on {
                    write_tile(p, n, ri.clone(), rj.clone(), diag, vals);
                }
            }
            linalg::stream_fence();
            if !ok {
                finite.store(false, std::sync::atomic::Ordering::Relaxed);
            }
        })
    });
    (Kernels { nngp, ntk }, finite.into_inner())
}

thread_local! {
    /// Per-thread tile buffers of [`gram_sym`] (Gram tile; NNGP and NTK values), kept
    /// between tiles and calls: 3 × 288 KiB that are not re-zeroed.
    static TILE_BUFS: std::cell::RefCell<(Vec<f64>, Vec<f64>, Vec<f64>)> = std::cell::RefCell::new(
        (vec![0.0; TILE * TILE], vec![0.0; TILE * TILE], vec![0.0; TILE * TILE]),
    );
}

/// Write a computed tile (`vals`, |ri| × |rj| row-major; on a diagonal block only j ≤ i is
/// computed, the rest is filled here from it) to K[ri, rj] and its transpose to K[rj, ri]
/// with streaming stores (the transpose in registers, [`linalg::stream_transposed`]).
fn write_tile(
    p: SharedOut,
    n: usize,
    ri: Range<usize>,
    rj: Range<usize>,
    diag: bool,
    vals: &mut [f64],
) {
    let (mi, mj) = (ri.len(), rj.len());
    if diag {
        for li in 0..mi {
            for lj in li + 1..mj {
                vals[li * mj + lj] = vals[lj * mj + li];
            }
        }
    }
    // SAFETY (all writes below): rows ri × columns rj and rows rj × columns ri lie in the
    // n×n matrix, and each entry belongs to exactly one block (I, J) with I ≥ J, processed
    // by one worker.
    for (li, i) in ri.clone().enumerate() {
        unsafe { linalg::stream_copy(p.0.add(i * n + rj.start), &vals[li * mj..(li + 1) * mj]) };
    }
    if !diag {
        unsafe { linalg::stream_transposed(p.0.add(rj.start * n + ri.start), n, vals, mi, mj) };
    }
}

/// Which Gram matrices [`compute`] materialises (the per-layer path always computes both).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    Both,
    Nngp,
    Ntk,
}

/// Core: rows `rows` of the kernel matrices between X1 and X2 (X2 = X1 when `sym`), with an
/// optional per-layer sink. With `lower_only` (symmetric full matrix) only entries j ≤ i are
/// computed; the caller mirrors them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn compute(
    arch: &Arch,
    x1: ArrayView2<f64>,
    x2: ArrayView2<f64>,
    sym: bool,
    rows: Range<usize>,
    per_layer: bool,
    lower_only: bool,
    want: Want,
) -> (Kernels, Vec<Kernels>) {
    let g = if sym {
        gram_rows(x1, x1, rows.clone())
    } else {
        gram_rows(x1, x2, rows.clone())
    };
    let m = rows.len();
    let n = x2.nrows();
    if !per_layer {
        let cx = batch::Ctx::new(arch, x1.view(), if sym { None } else { Some(x2.view()) });
        // One row of pairs: `rn[j]`, `rt[j]` = (NNGP, NTK) of pair (i, j), j < jmax, by the
        // batched SIMD evaluator (the same code as the fused symmetric path, [`gram_sym`]).
        let row = |li: usize, rn: &mut [f64], rt: &mut [f64]| {
            let jmax = if lower_only { rows.start + li + 1 } else { n };
            let gr = g.row(li);
            let gs = gr.as_slice().expect("row-major Gram rows");
            batch::eval_block(
                &cx,
                batch::Block {
                    rows: rows.start + li..rows.start + li + 1,
                    j0: 0,
                    ncols: jmax,
                    ld: jmax,
                    lower: false,
                    g: &gs[..jmax],
                    out_c: &mut rn[..jmax],
                    out_t: &mut rt[..jmax],
                    keep_c: true,
                    keep_t: true,
                },
            );
        };
        // A kind that was not asked for is written to a per-thread scratch row and returned
        // as a 0×0 matrix: no M×M allocation, page faults or mirroring for it.
        let empty = || Array2::<f64>::zeros((0, 0));
        let scratch = || vec![0.0; n];
        let (nngp, ntk) = match want {
            Want::Both => {
                let mut nngp = linalg::zeros_huge(m, n);
                let mut ntk = linalg::zeros_huge(m, n);
                nngp.axis_iter_mut(Axis(0))
                    .into_par_iter()
                    .zip(ntk.axis_iter_mut(Axis(0)).into_par_iter())
                    .enumerate()
                    .for_each(|(li, (mut rn, mut rt))| {
                        row(
                            li,
                            rn.as_slice_mut().expect("row-major"),
                            rt.as_slice_mut().expect("row-major"),
                        )
                    });
                (nngp, ntk)
            }
            Want::Ntk => {
                let mut ntk = linalg::zeros_huge(m, n);
                ntk.axis_iter_mut(Axis(0))
                    .into_par_iter()
                    .enumerate()
                    .for_each_init(scratch, |sc, (li, mut rt)| {
                        row(li, sc, rt.as_slice_mut().expect("row-major"))
                    });
                (empty(), ntk)
            }
            Want::Nngp => {
                let mut nngp = linalg::zeros_huge(m, n);
                nngp.axis_iter_mut(Axis(0))
                    .into_par_iter()
                    .enumerate()
                    .for_each_init(scratch, |sc, (li, mut rn)| {
                        row(li, rn.as_slice_mut().expect("row-major"), sc)
                    });
                (nngp, empty())
            }
        };
        return (Kernels { nngp, ntk }, Vec::new());
    }
    // Tiny inputs rescaled by powers of two ([`point_scales`]); ordinary rows are unchanged.
    let (xs1, p1) = point_scales(arch, x1);
    let (xs2, p2) = if sym {
        (None, p1.clone())
    } else {
        point_scales(arch, x2)
    };
    let x1 = match &xs1 {
        Some(a) => a.view(),
        None => x1.view(),
    };
    let x2 = if sym {
        x1
    } else {
        match &xs2 {
            Some(a) => a.view(),
            None => x2.view(),
        }
    };
    let n1 = row_norms2(x1);
    let n2 = if sym { n1.clone() } else { row_norms2(x2) };
    let nl = arch.depth + 1;
    // Per-point diagonal chains (O((n1 + n2) L)), shared by all pairs.
    let dim = x1.ncols() as f64;
    let chains = |norms: &[f64]| -> Vec<Vec<Diag>> {
        norms
            .iter()
            .map(|&nn| diag_chain(arch, first_layer_naive(arch, dim, nn, nn, nn).q1))
            .collect()
    };
    let ch1 = chains(&n1);
    let ch2 = if sym { ch1.clone() } else { chains(&n2) };
    // Each entry (i, j) is computed from its own data only; in the symmetric case the pair is
    // ordered canonically (smaller index first) and the Gram matrix is exactly symmetric, so
    // K[i, j] and K[j, i] are the same bits.
    let entry = |li: usize, j: usize| -> (PairState, f64, f64, usize, usize) {
        let i = rows.start + li;
        let (a, b) = if sym && j < i { (j, i) } else { (i, j) };
        let same = sym && a == b;
        if p1[a] != 1.0 || p2[b] != 1.0 {
            let sc = p1[a] * p2[b];
            let (st, g_raw) = scaled_first(arch, x1.row(a), x2.row(b), n1[a], n2[b], sc, same);
            return (st, g_raw, sc, a, b);
        }
        let gij = g[[li, j]];
        let st = first_layer(arch, x1.row(a), x2.row(b), n1[a], n2[b], gij, same);
        (st, gij, 1.0, a, b)
    };
    let mut nngp = Array2::<f64>::zeros((m, n));
    let mut ntk = Array2::<f64>::zeros((m, n));
    let row_results: Vec<Vec<Vec<(f64, f64)>>> = (0..m)
        .into_par_iter()
        .map(|li| {
            let mut rl = vec![vec![(0.0, 0.0); n]; nl];
            let jmax = if lower_only { rows.start + li + 1 } else { n };
            for j in 0..jmax {
                let (st, gij, sc, a, b) = entry(li, j);
                recurse_with(arch, st, gij, sc, &ch1[a], &ch2[b], |h, s, t| {
                    rl[h - 1][j] = (s, t)
                });
            }
            rl
        })
        .collect();
    let mut layers: Vec<Kernels> = (0..nl)
        .map(|_| Kernels {
            nngp: Array2::zeros((m, n)),
            ntk: Array2::zeros((m, n)),
        })
        .collect();
    for (li, rl) in row_results.into_iter().enumerate() {
        for (h, v) in rl.into_iter().enumerate() {
            for (j, (s, t)) in v.into_iter().enumerate() {
                layers[h].nngp[[li, j]] = s;
                layers[h].ntk[[li, j]] = t;
            }
        }
    }
    if let Some(last) = layers.last() {
        nngp.assign(&last.nngp);
        ntk.assign(&last.ntk);
    }
    (Kernels { nngp, ntk }, layers)
}

/// Copy the lower triangle of a square matrix onto its upper triangle (in 64×64 blocks, so
/// that the transposed writes stay in cache; an empty matrix is left alone).
pub(crate) fn mirror_lower(mat: &mut Array2<f64>) {
    const B: usize = 64;
    let n = mat.nrows();
    for ib in (0..n).step_by(B) {
        for jb in (0..=ib).step_by(B) {
            for i in ib..(ib + B).min(n) {
                for j in jb..(jb + B).min(i) {
                    mat[[j, i]] = mat[[i, j]];
                }
            }
        }
    }
}
