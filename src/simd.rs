//! The one place that decides which SIMD code path runs, and the streaming stores.
//!
//! Every vectorised path of the crate (the kernel recursion in `kernel::batch`, the Gram tile
//! product, the conv-kernel planes, the MNK tiles in `mnk::gram`, the streamed output writes
//! here) asks [`level`] (or [`avx2_allowed`]) instead of detecting CPU features itself, so the
//! test hooks [`force_portable`] / [`force_avx2`] and the environment variable
//! `GBML_KERNEL_SIMD=portable|avx2` switch all of them at once. Every path gives the same bits
//! (vector IEEE operations are exact per lane; no implicit FMA contraction); the hooks exist to
//! test that.

use std::sync::atomic::{AtomicU8, Ordering};

/// Forced ceiling of the dispatch: 0 none, 1 portable, 2 AVX2 at most.
static FORCE: AtomicU8 = AtomicU8::new(0);

/// Test/benchmark hook: `true` forces the portable (baseline x86-64 / non-x86) code path for
/// every later kernel evaluation and Gram tile product in this process, `false` restores
/// run-time dispatch. The results are the same bits either way (that is what the hook is
/// for: to test it). The environment variable `GBML_KERNEL_SIMD=portable` sets it at
/// start-up (`=avx2`: at most the AVX2 path).
#[doc(hidden)]
pub fn force_portable(on: bool) {
    FORCE.store(if on { 1 } else { 0 }, Ordering::SeqCst);
}

/// Test hook: use at most the AVX2 path (on a CPU that has it; else the portable one), so an
/// AVX-512 machine can test the AVX2 code too. `force_portable(false)` restores dispatch.
#[doc(hidden)]
pub fn force_avx2(on: bool) {
    FORCE.store(if on { 2 } else { 0 }, Ordering::SeqCst);
}

fn forced() -> u8 {
    static ENV: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    let f = FORCE.load(Ordering::Relaxed);
    if f != 0 {
        return f;
    }
    *ENV.get_or_init(|| match std::env::var("GBML_KERNEL_SIMD") {
        Ok(v) if v.eq_ignore_ascii_case("portable") => 1,
        Ok(v) if v.eq_ignore_ascii_case("avx2") => 2,
        _ => 0,
    })
}

/// Which code path [`eval_block`] uses now: `"avx512"`, `"avx2"` or `"portable"`.
#[doc(hidden)]
pub fn active_path() -> &'static str {
    match level() {
        Level::Avx512 => "avx512",
        Level::Avx2 => "avx2",
        Level::Portable => "portable",
    }
}

/// A SIMD code path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Avx512,
    Avx2,
    Portable,
}

/// The code path of the batched evaluator and of the Gram tile product: the best the CPU
/// supports, under the ceiling set by the hooks above.
pub fn level() -> Level {
    let f = forced();
    if f == 1 {
        return Level::Portable;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if f == 0
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl")
        {
            return Level::Avx512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
    }
    Level::Portable
}

/// Whether a path may use AVX2 (+ FMA) now: [`level`] is AVX2 or AVX-512.
#[inline]
pub fn avx2_allowed() -> bool {
    level() != Level::Portable
}

/// Copy `src` to `dst` with non-temporal (streaming) stores where the target allows: for an
/// output written once and not read again by the writer, this avoids reading its cache lines
/// from memory before overwriting them.
///
/// # Safety
/// `dst..dst + src.len()` must be valid for writes and not aliased. Call [`stream_fence`]
/// before the written memory is handed to another thread.
#[inline]
pub(crate) unsafe fn stream_copy(dst: *mut f64, src: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    if level() != Level::Portable {
        use std::arch::x86_64::{_mm_loadu_pd, _mm_stream_pd};
        // Only whole 64-byte lines are streamed (a partial-line streaming store costs a
        // read-modify-write in memory); the partial lines at both ends are plain stores.
        let n = src.len();
        let mis = (dst as usize) % 64;
        let head = if mis == 0 {
            0
        } else if mis.is_multiple_of(8) {
            ((64 - mis) / 8).min(n)
        } else {
            n
        };
        let body = (n - head) / 8 * 8;
        std::ptr::copy_nonoverlapping(src.as_ptr(), dst, head);
        let mut i = head;
        while i < head + body {
            let s = src.as_ptr().add(i);
            let d = dst.add(i);
            _mm_stream_pd(d, _mm_loadu_pd(s));
            _mm_stream_pd(d.add(2), _mm_loadu_pd(s.add(2)));
            _mm_stream_pd(d.add(4), _mm_loadu_pd(s.add(4)));
            _mm_stream_pd(d.add(6), _mm_loadu_pd(s.add(6)));
            i += 8;
        }
        std::ptr::copy_nonoverlapping(src.as_ptr().add(i), dst.add(i), n - i);
        return;
    }
    std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len());
}

/// Order the streaming stores of this thread before later stores (x86 `sfence`).
#[inline]
pub(crate) fn stream_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: sfence has no preconditions (SSE is part of the x86_64 baseline).
    unsafe {
        std::arch::x86_64::_mm_sfence()
    }
}

/// `dst[c·ldd + r] = src[r·cols + c]`: the transpose of a row-major `rows × cols` tile written
/// into a row-major matrix (row stride `ldd`) as its `cols × rows` block. With AVX-512, 8 × 8
/// blocks are transposed in registers and each destination row segment (8 values, one cache
/// line when 64-byte aligned) is written with a streaming store; the edges, and CPUs without
/// AVX-512, use plain stores. Bit copies only.
///
/// # Safety
/// `src` holds ≥ rows·cols values; `dst[c·ldd + r]` is valid for writes and not aliased for
/// all r < rows, c < cols. Call [`stream_fence`] before the memory is handed to another thread.
pub(crate) unsafe fn stream_transposed(
    dst: *mut f64,
    ldd: usize,
    src: &[f64],
    rows: usize,
    cols: usize,
) {
    stream_transposed_with(dst, ldd, src, rows, cols, true)
}

/// [`stream_transposed`], with the AVX-512 blocks only if `simd` (tests use `false` to run the
/// plain path on an AVX-512 machine).
///
/// # Safety
/// As [`stream_transposed`].
unsafe fn stream_transposed_with(
    dst: *mut f64,
    ldd: usize,
    src: &[f64],
    rows: usize,
    cols: usize,
    simd: bool,
) {
    assert!(src.len() >= rows * cols);
    // The 8 × 8 blocks done with AVX-512 (none without it).
    let (r8, c8) = {
        #[cfg(target_arch = "x86_64")]
        {
            if simd && level() == Level::Avx512 {
                let (r8, c8) = (rows / 8 * 8, cols / 8 * 8);
                stream_transposed_avx512(dst, ldd, src.as_ptr(), r8, c8, cols);
                (r8, c8)
            } else {
                (0, 0)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = simd;
            (0, 0)
        }
    };
    let put = |r: usize, c: usize| *dst.add(c * ldd + r) = src[r * cols + c];
    for r in 0..r8 {
        for c in c8..cols {
            put(r, c);
        }
    }
    for r in r8..rows {
        for c in 0..cols {
            put(r, c);
        }
    }
}

/// The 8 × 8 blocks of [`stream_transposed`] over rows 0..r8 and columns 0..c8 (multiples
/// of 8); `cols` is the row stride of `src`.
///
/// # Safety
/// AVX-512F available; as [`stream_transposed`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn stream_transposed_avx512(
    dst: *mut f64,
    ldd: usize,
    src: *const f64,
    r8: usize,
    c8: usize,
    cols: usize,
) {
    use std::arch::x86_64::*;
    for c0 in (0..c8).step_by(8) {
        for r0 in (0..r8).step_by(8) {
            let r: [__m512d; 8] =
                std::array::from_fn(|i| _mm512_loadu_pd(src.add((r0 + i) * cols + c0)));
            // Pairs, then 128-bit lanes, then 256-bit halves.
            let t: [__m512d; 8] = std::array::from_fn(|i| {
                let (a, b) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
                if i % 2 == 0 {
                    _mm512_unpacklo_pd(a, b)
                } else {
                    _mm512_unpackhi_pd(a, b)
                }
            });
            // u[0]: cols {0,4} of rows 0–3; u[1]: {2,6}; u[2]: {1,5}; u[3]: {3,7}; u[4..8]:
            // the same for rows 4–7.
            let u: [__m512d; 8] = [
                _mm512_shuffle_f64x2::<0x88>(t[0], t[2]),
                _mm512_shuffle_f64x2::<0xDD>(t[0], t[2]),
                _mm512_shuffle_f64x2::<0x88>(t[1], t[3]),
                _mm512_shuffle_f64x2::<0xDD>(t[1], t[3]),
                _mm512_shuffle_f64x2::<0x88>(t[4], t[6]),
                _mm512_shuffle_f64x2::<0xDD>(t[4], t[6]),
                _mm512_shuffle_f64x2::<0x88>(t[5], t[7]),
                _mm512_shuffle_f64x2::<0xDD>(t[5], t[7]),
            ];
            let col: [__m512d; 8] = [
                _mm512_shuffle_f64x2::<0x88>(u[0], u[4]),
                _mm512_shuffle_f64x2::<0x88>(u[2], u[6]),
                _mm512_shuffle_f64x2::<0x88>(u[1], u[5]),
                _mm512_shuffle_f64x2::<0x88>(u[3], u[7]),
                _mm512_shuffle_f64x2::<0xDD>(u[0], u[4]),
                _mm512_shuffle_f64x2::<0xDD>(u[2], u[6]),
                _mm512_shuffle_f64x2::<0xDD>(u[1], u[5]),
                _mm512_shuffle_f64x2::<0xDD>(u[3], u[7]),
            ];
            for (q, v) in col.iter().enumerate() {
                let d = dst.add((c0 + q) * ldd + r0);
                if (d as usize).is_multiple_of(64) {
                    _mm512_stream_pd(d, *v);
                } else {
                    _mm512_storeu_pd(d, *v);
                }
            }
        }
    }
}

/// The transpose of a 4 × 4 block held as four row registers (AVX2 shuffles, exact).
///
/// # Safety
/// AVX2 available.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn tr4(w: [std::arch::x86_64::__m256d; 4]) -> [std::arch::x86_64::__m256d; 4] {
    use std::arch::x86_64::*;
    let a0 = _mm256_unpacklo_pd(w[0], w[1]);
    let a1 = _mm256_unpackhi_pd(w[0], w[1]);
    let a2 = _mm256_unpacklo_pd(w[2], w[3]);
    let a3 = _mm256_unpackhi_pd(w[2], w[3]);
    [
        _mm256_permute2f128_pd(a0, a2, 0x20),
        _mm256_permute2f128_pd(a1, a3, 0x20),
        _mm256_permute2f128_pd(a0, a2, 0x31),
        _mm256_permute2f128_pd(a1, a3, 0x31),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::zeros_huge;

    /// The streamed transpose equals the plain one for ragged shapes, aligned and unaligned
    /// destinations, and leaves everything outside the block untouched.
    #[test]
    fn stream_transposed_is_the_transpose() {
        for &(rows, cols, ldd, off) in &[
            (1usize, 1usize, 1usize, 0usize),
            (8, 8, 8, 0),
            (16, 24, 40, 8),
            (19, 13, 29, 3),
            (192, 160, 4000, 0),
            (37, 64, 70, 5),
        ] {
            for simd in [true, false] {
                let src: Vec<f64> = (0..rows * cols).map(|k| k as f64 + 0.5).collect();
                let mut dst = zeros_huge(cols + 1, ldd.max(rows + off) + 8);
                let w = dst.ncols();
                dst.fill(-1.0);
                // SAFETY: the block (cols × rows at row stride w, offset off) lies in `dst`.
                unsafe {
                    stream_transposed_with(dst.as_mut_ptr().add(off), w, &src, rows, cols, simd)
                };
                stream_fence();
                for ((c, j), &v) in dst.indexed_iter() {
                    let want = if c < cols && j >= off && j - off < rows {
                        src[(j - off) * cols + c]
                    } else {
                        -1.0
                    };
                    assert_eq!(
                        v, want,
                        "{rows}x{cols} ldd {w} off {off} simd {simd}: ({c}, {j})"
                    );
                }
            }
        }
    }
}
