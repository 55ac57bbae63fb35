//! Tolerances and accuracy measures, in one place (statrs style).
//!
//! Accuracy is reported as the **LRE** (log relative error, NIST StRD): the number of correct
//! significant digits of a computed value `c` against a reference `r`,
//! `LRE = −log10(|c − r| / |r|)` (or `−log10|c − r|` when `r = 0`), capped at
//! [`LRE_MAX`] ≈ 15.95 (an exactly rounded f64 carries at most about 15.95 digits).

/// Machine epsilon of f64.
pub const EPS: f64 = f64::EPSILON;

/// The largest LRE an f64 can carry (−log10(2⁻⁵³) ≈ 15.95); exact agreement reports this value.
pub const LRE_MAX: f64 = 15.95;

/// Correct significant digits of `computed` against `reference` (NIST LRE), in `[0, LRE_MAX]`.
///
/// Non-finite input gives 0.
///
/// ```
/// use gbml_testbed::tol::lre;
/// assert_eq!(lre(1.0, 1.0), gbml_testbed::tol::LRE_MAX);
/// assert!((lre(1.001, 1.0) - 3.0).abs() < 1e-6);
/// assert!((lre(1e-7, 0.0) - 7.0).abs() < 1e-9);
/// ```
pub fn lre(computed: f64, reference: f64) -> f64 {
    if !computed.is_finite() || !reference.is_finite() {
        return 0.0;
    }
    let err = (computed - reference).abs();
    if err == 0.0 {
        return LRE_MAX;
    }
    let rel = if reference == 0.0 {
        err
    } else {
        err / reference.abs()
    };
    (-rel.log10()).clamp(0.0, LRE_MAX)
}

/// Minimum LRE over paired entries of two equally long slices (`LRE_MAX` for empty input).
pub fn min_lre(computed: &[f64], reference: &[f64]) -> f64 {
    assert_eq!(computed.len(), reference.len(), "min_lre: length mismatch");
    computed
        .iter()
        .zip(reference)
        .map(|(&c, &r)| lre(c, r))
        .fold(LRE_MAX, f64::min)
}

/// Normwise relative error `max|c − r| / max|r|` (0/0 counts as 0).
pub fn normwise_rel_err(computed: &[f64], reference: &[f64]) -> f64 {
    assert_eq!(
        computed.len(),
        reference.len(),
        "normwise_rel_err: length mismatch"
    );
    let num = computed
        .iter()
        .zip(reference)
        .map(|(c, r)| (c - r).abs())
        .fold(0.0, f64::max);
    let den = reference.iter().map(|r| r.abs()).fold(0.0, f64::max);
    if num == 0.0 {
        0.0
    } else if den == 0.0 {
        f64::INFINITY
    } else {
        num / den
    }
}

/// Tolerance for a reconstruction test of an `n`-dimensional computation: `c · n · ε`
/// relative to the scale of the result (faer style).
pub fn n_eps(c: f64, n: usize) -> f64 {
    c * (n.max(1) as f64) * EPS
}

/// Minimum correct digits required of analytic kernels against 50-digit references.
pub const KERNEL_MIN_DIGITS: f64 = 13.0;
/// Normwise relative tolerance for MNK quantities against high-precision references.
pub const MNK_NORMWISE_REL: f64 = 1e-12;
/// Minimum correct digits for gradients and Hessian-vector products vs Richardson differences.
pub const GRAD_MIN_DIGITS: f64 = 8.0;
/// Minimum correct digits for second-order meta-gradients (τ ≤ 3) vs Richardson differences.
pub const METAGRAD_MIN_DIGITS: f64 = 7.0;
/// Minimum correct digits against JAX float64 meta-gradient fixtures.
pub const JAX_MIN_DIGITS: f64 = 10.0;

/// Normwise relative tolerance of the exact linear-model identities of `checks::linear` (static
/// quantities: NTK, one inner loop, Φ̂ vs the MNK formula). Problem sizes there are ≤ 40, so this
/// is ~450 ε: machine precision (measured ≈ 1e-16–1e-15) with room for the conditioning of T.
pub const LINEAR_IDENTITY_REL: f64 = 1e-13;
/// Relative tolerance of linear-model trajectories after up to 300 outer steps (rounding grows
/// about linearly in the number of steps).
pub const LINEAR_TRAJECTORY_REL: f64 = 1e-12;
/// Relative tolerance on the late per-step loss *rate* −ln(L_{t+1}/L_t) against
/// −2 ln(1 − ηλ_min(Φ̂_T)) in the Theorem-1 check (finite width moves λ_min by O(width^{-1/2}),
/// and the second-slowest mode still contributes over a finite window).
pub const THEOREM1_RATE_REL: f64 = 0.1;
