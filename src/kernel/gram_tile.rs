//! The Gram tiles `G[I, J] = X1_I · X2_Jᵀ` of the kernel matrices: a register-blocked product
//! on operands packed once per call.
//!
//! Every entry is one fused multiply-add chain over the input coordinates in ascending order,
//!
//! ```text
//! g ← 0;  for k = 0, …, d−1:  g ← fma(x_i[k], x_j[k], g)
//! ```
//!
//! whatever the tile, the micro-tile, the code path or the thread that computes it. Hence
//! `G[i, j]` and `G[j, i]` are the same bits (fma(a, b, c) = fma(b, a, c) exactly), a row
//! block has the same bits as the full matrix, and the AVX-512, AVX2 and portable paths
//! (chosen at run time like [`super::batch`], same [`crate::simd::force_portable`] hook)
//! agree bit for bit; `tests/kernel_simd.rs` checks it. The k loop is blocked ([`KC`]) only
//! for the caches: the accumulator is carried from block to block, so the blocking does not
//! change any bit.
//!
//! Why not a library GEMM per tile (as up to session 2, faer's): it re-packs both 192 × d
//! operands for every one of the ~M²/(2·192²) tiles (≈ 10 % of the kernel time at M = 4000),
//! and it cannot skip the strictly upper half of a diagonal tile. Here X is packed once into
//! panels of [`NR`] rows, coordinate-major (`data[(p·d + k)·NR + r] = x[p·NR + r, k]`, zero
//! rows past the end), which serve as both the row and the column operand.

use ndarray::ArrayView2;
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::ops::Range;

/// Rows of a packed panel (one AVX-512 register of f64), and rows of a micro-tile.
pub(crate) const NR: usize = 8;
/// Columns of a micro-tile (three panels: 3 × 8 accumulator registers).
const MC: usize = 3 * NR;
/// Coordinates per cache block at most (d is cut into ⌈d/KC⌉ equal blocks). Measured on the
/// Gram tiles alone at M = 4000, d = 784 (Zen 4, 2 threads, row panel outer): one block
/// 116–117 ms, 2 blocks 117–120, 4 blocks 120–122, 7 blocks 122–126: reloading the
/// accumulators costs more than the cache misses on the panels (sequential streams, which
/// the hardware prefetchers hide).
const KC: usize = 1024;
/// Column groups ([`MC`] columns each) per slab of a tile: 2 groups, 48 columns, 300 KiB of
/// panels at d = 784 (slabs of 1, 2, 4, 8 groups measured within 2 % of each other).
const JB: usize = 2;

/// One input set packed into panels of [`NR`] rows (module docs), plus [`MR`]/[`NR`] − 1 = 2
/// zero panels so that a micro-tile may read past the last row.
pub(crate) struct Packed {
    d: usize,
    /// The panels, from `buf[off]` on (`len` values, all written by [`Packed::new`]).
    buf: Vec<MaybeUninit<f64>>,
    off: usize,
    len: usize,
}

impl Packed {
    pub(crate) fn new(x: ArrayView2<f64>) -> Self {
        let (n, d) = x.dim();
        let np = n.div_ceil(NR) + 2;
        let len = np * d * NR;
        let (mut buf, off) = crate::linalg::huge_uninit(len);
        if d > 0 {
            // Every one of the `len` values is written exactly once (no zero pass).
            buf[off..off + len]
                .par_chunks_mut(d * NR)
                .with_max_len(16)
                .enumerate()
                .for_each(|(p, panel)| {
                    let rows = (p * NR).min(n)..(p * NR + NR).min(n);
                    let xs = x.slice(ndarray::s![rows, ..]);
                    match xs.as_slice() {
                        // Row-major rows: 8 contiguous streams in, one out.
                        Some(v) if xs.nrows() == NR => {
                            for (k, slot) in panel.chunks_exact_mut(NR).enumerate() {
                                for (r, e) in slot.iter_mut().enumerate() {
                                    e.write(v[r * d + k]);
                                }
                            }
                        }
                        _ => {
                            for (k, slot) in panel.chunks_exact_mut(NR).enumerate() {
                                for (r, e) in slot.iter_mut().enumerate() {
                                    e.write(if r < xs.nrows() { xs[[r, k]] } else { 0.0 });
                                }
                            }
                        }
                    }
                });
        }
        Packed { d, buf, off, len }
    }

    /// Panel `p` from coordinate `k0` on (up to two panels past the last row: zeros).
    #[inline(always)]
    fn at(&self, p: usize, k0: usize) -> *const f64 {
        debug_assert!(p * self.d * NR + k0 * NR <= self.len);
        // SAFETY (of later reads): callers read kc·NR values with k0 + kc ≤ d inside panel p,
        // all of which `new` initialised.
        self.buf[self.off + p * self.d * NR..]
            .as_ptr()
            .wrapping_add(k0 * NR) as *const f64
    }
}

/// `out[li·ldo + lj] = x1[ri.start + li] · x2[rj.start + lj]` (row-major |ri| × |rj| with row
/// stride `ldo` ≥ |rj|), as documented in the module. With `lower` (a diagonal tile, `ri == rj`) micro-tiles strictly
/// above the diagonal are skipped: only the entries lj ≤ li are guaranteed written.
/// `ri.start` and `rj.start` must be multiples of [`NR`].
pub(crate) fn tile_product(
    a: &Packed,
    b: &Packed,
    ri: Range<usize>,
    rj: Range<usize>,
    lower: bool,
    out: &mut [f64],
    ldo: usize,
) {
    assert!(
        ri.start.is_multiple_of(NR) && rj.start.is_multiple_of(NR),
        "tile origin off the panel grid"
    );
    assert!(
        !lower || ri == rj,
        "lower-only product of an off-diagonal tile"
    );
    assert_eq!(a.d, b.d, "inner dimensions differ");
    let (mi, mj) = (ri.len(), rj.len());
    assert!(
        ldo >= mj && (mi == 0 || out.len() >= (mi - 1) * ldo + mj),
        "tile buffer too small"
    );
    assert!(a.len >= ri.end.div_ceil(NR) * a.d * NR);
    assert!(b.len >= (rj.end.div_ceil(NR) + 2) * b.d * NR);
    let d = a.d;
    if d == 0 {
        for li in 0..mi {
            out[li * ldo..li * ldo + mj].fill(0.0);
        }
        return;
    }
    let nk = d.div_ceil(KC);
    let kc_max = d.div_ceil(nk);
    let path = crate::simd::level();
    let (pa, pb) = (ri.start / NR, rj.start / NR);
    for k0 in (0..d).step_by(kc_max) {
        let kc = kc_max.min(d - k0);
        let first = k0 == 0;
        let ngroups = mj.div_ceil(MC);
        // Column slabs of JB groups (their panels stay in L2) × row panels (in L1) × groups.
        for jb0 in (0..ngroups).step_by(JB) {
            for g in 0..mi.div_ceil(NR) {
                let ap = a.at(pa + g, k0);
                let rows = NR.min(mi - g * NR);
                for jq in jb0..(jb0 + JB).min(ngroups) {
                    if lower && jq * MC >= (g + 1) * NR {
                        break;
                    }
                    let bp = [
                        b.at(pb + 3 * jq, k0),
                        b.at(pb + 3 * jq + 1, k0),
                        b.at(pb + 3 * jq + 2, k0),
                    ];
                    let cols = MC.min(mj - jq * MC);
                    let c0 = g * NR * ldo + jq * MC;
                    if rows == NR && cols == MC {
                        // SAFETY: the 8 × 24 micro-tile at c0 (row stride ldo) lies in `out`;
                        // the panels hold kc·NR doubles from k0 (asserted sizes above).
                        unsafe { micro(path, kc, ap, bp, out[c0..].as_mut_ptr(), ldo, first) };
                    } else {
                        // Edge micro-tile: through a full 8 × 24 buffer.
                        let mut buf = [0.0; NR * MC];
                        if !first {
                            for r in 0..rows {
                                buf[r * MC..r * MC + cols]
                                    .copy_from_slice(&out[c0 + r * ldo..c0 + r * ldo + cols]);
                            }
                        }
                        // SAFETY: as above, with the local buffer (row stride MC).
                        unsafe { micro(path, kc, ap, bp, buf.as_mut_ptr(), MC, first) };
                        for r in 0..rows {
                            out[c0 + r * ldo..c0 + r * ldo + cols]
                                .copy_from_slice(&buf[r * MC..r * MC + cols]);
                        }
                    }
                }
            }
        }
    }
}

/// One 8 × 24 micro-tile over `kc` coordinates: `c[r·ldc + j]` ← the FMA chain of row r
/// (panel `a`) and column j (panels `b`), starting from 0 (`first`) or from the values in `c`.
///
/// # Safety
/// `a` and `b[q]` valid for kc·NR reads, `c` for an 8 × 24 tile with row stride `ldc`.
#[inline(always)]
unsafe fn micro(
    path: crate::simd::Level,
    kc: usize,
    a: *const f64,
    b: [*const f64; 3],
    c: *mut f64,
    ldc: usize,
    first: bool,
) {
    match path {
        #[cfg(target_arch = "x86_64")]
        crate::simd::Level::Avx512 => micro_avx512(kc, a, b, c, ldc, first),
        #[cfg(target_arch = "x86_64")]
        crate::simd::Level::Avx2 => {
            for (q, bq) in b.iter().enumerate() {
                micro_avx2(kc, a, *bq, c.add(q * NR), ldc, first);
            }
        }
        _ => {
            for (q, bq) in b.iter().enumerate() {
                micro_portable(kc, a, *bq, c.add(q * NR), ldc, first);
            }
        }
    }
}

/// AVX-512: 8 rows × 24 columns in 24 registers; per coordinate three column loads and eight
/// broadcasts (each used by three FMAs).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn micro_avx512(
    kc: usize,
    a: *const f64,
    b: [*const f64; 3],
    c: *mut f64,
    ldc: usize,
    first: bool,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_pd(); 3]; NR];
    if !first {
        for (r, ar) in acc.iter_mut().enumerate() {
            for (q, v) in ar.iter_mut().enumerate() {
                *v = _mm512_loadu_pd(c.add(r * ldc + q * NR));
            }
        }
    }
    for k in 0..kc {
        let bv = [
            _mm512_loadu_pd(b[0].add(k * NR)),
            _mm512_loadu_pd(b[1].add(k * NR)),
            _mm512_loadu_pd(b[2].add(k * NR)),
        ];
        let ak = a.add(k * NR);
        for (r, ar) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_pd(*ak.add(r));
            for (q, v) in ar.iter_mut().enumerate() {
                *v = _mm512_fmadd_pd(av, bv[q], *v);
            }
        }
    }
    for (r, ar) in acc.iter().enumerate() {
        for (q, v) in ar.iter().enumerate() {
            _mm512_storeu_pd(c.add(r * ldc + q * NR), *v);
        }
    }
}

/// AVX2 + FMA: 8 rows × 8 columns in two halves of 4 rows (8 registers each).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn micro_avx2(
    kc: usize,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    ldc: usize,
    first: bool,
) {
    use std::arch::x86_64::*;
    for h in 0..2 {
        let mut acc = [[_mm256_setzero_pd(); 2]; 4];
        if !first {
            for (r, v) in acc.iter_mut().enumerate() {
                let row = c.add((h * 4 + r) * ldc);
                v[0] = _mm256_loadu_pd(row);
                v[1] = _mm256_loadu_pd(row.add(4));
            }
        }
        for k in 0..kc {
            let b0 = _mm256_loadu_pd(b.add(k * NR));
            let b1 = _mm256_loadu_pd(b.add(k * NR + 4));
            let ak = a.add(k * NR + h * 4);
            for (r, v) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_pd(*ak.add(r));
                v[0] = _mm256_fmadd_pd(av, b0, v[0]);
                v[1] = _mm256_fmadd_pd(av, b1, v[1]);
            }
        }
        for (r, v) in acc.iter().enumerate() {
            let row = c.add((h * 4 + r) * ldc);
            _mm256_storeu_pd(row, v[0]);
            _mm256_storeu_pd(row.add(4), v[1]);
        }
    }
}

/// Portable: 8 × 8 with `f64::mul_add` (a correctly rounded FMA, as the vector paths).
unsafe fn micro_portable(
    kc: usize,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    ldc: usize,
    first: bool,
) {
    let mut acc = [[0.0f64; NR]; NR];
    if !first {
        for (r, v) in acc.iter_mut().enumerate() {
            for (j, x) in v.iter_mut().enumerate() {
                *x = *c.add(r * ldc + j);
            }
        }
    }
    for k in 0..kc {
        let bk = std::slice::from_raw_parts(b.add(k * NR), NR);
        let ak = std::slice::from_raw_parts(a.add(k * NR), NR);
        for (r, v) in acc.iter_mut().enumerate() {
            for (j, x) in v.iter_mut().enumerate() {
                *x = ak[r].mul_add(bk[j], *x);
            }
        }
    }
    for (r, v) in acc.iter().enumerate() {
        for (j, x) in v.iter().enumerate() {
            *c.add(r * ldc + j) = *x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    fn fma_dot(x: &[f64], y: &[f64]) -> f64 {
        x.iter().zip(y).fold(0.0, |g, (a, b)| a.mul_add(*b, g))
    }

    /// Every entry of every tile (edges, lower-only diagonal tiles, several k blocks) is the
    /// ascending FMA chain, on the path this CPU selects, on the AVX2 one and on the
    /// portable one.
    #[test]
    fn tiles_are_the_fma_chain() {
        use crate::simd::{force_avx2, force_portable};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for &(n, d) in &[
            (1usize, 1usize),
            (37, 5),
            (61, 300),
            (203, 513),
            (83, 2 * KC + 3),
        ] {
            let x = Array2::from_shape_simple_fn((n, d), || StandardNormal.sample(&mut rng));
            let p = Packed::new(x.view());
            for path in 0..3 {
                match path {
                    1 => force_avx2(true),
                    2 => force_portable(true),
                    _ => {}
                }
                for (ri, rj, lower) in [
                    (0..n, 0..n, false),
                    (0..n, 0..n, true),
                    (n / 16 * 8..n, 0..n / 16 * 8, false),
                ] {
                    let mut out = vec![f64::NAN; ri.len() * rj.len()];
                    tile_product(&p, &p, ri.clone(), rj.clone(), lower, &mut out, rj.len());
                    for (li, i) in ri.clone().enumerate() {
                        for (lj, j) in rj.clone().enumerate() {
                            if lower && lj > li {
                                continue;
                            }
                            let want =
                                fma_dot(x.row(i).as_slice().unwrap(), x.row(j).as_slice().unwrap());
                            let got = out[li * rj.len() + lj];
                            assert_eq!(
                                got.to_bits(),
                                want.to_bits(),
                                "n={n} d={d} ({i},{j}) path {path}"
                            );
                        }
                    }
                }
                force_portable(false);
            }
        }
    }
}
