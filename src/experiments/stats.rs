//! Statistics of accuracy comparisons: the Wilson score interval of a binomial proportion and a
//! paired one-sided comparison over test tasks.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Wilson score interval of a binomial proportion with `k` successes in `n` trials, two-sided
/// level `level` (e.g. 0.95), z = Φ⁻¹((1 + level)/2):
///
/// center = (p̂ + z²/(2n)) / (1 + z²/n),
/// half   = z / (1 + z²/n) · √(p̂(1 − p̂)/n + z²/(4n²)).
///
/// Returns (0, 1) for n = 0.
pub fn wilson(k: usize, n: usize, level: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = Normal::standard().inverse_cdf(0.5 + level / 2.0);
    let (nf, p) = (n as f64, k as f64 / n as f64);
    let z2n = z * z / nf;
    let center = (p + z2n / 2.0) / (1.0 + z2n);
    let half = z / (1.0 + z2n) * (p * (1.0 - p) / nf + z2n / (4.0 * nf)).sqrt();
    ((center - half).max(0.0), (center + half).min(1.0))
}

/// A paired comparison of two methods on the same test tasks: d_j = a_j − b_j.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PairedDiff {
    /// Mean difference d̄.
    pub mean: f64,
    /// One-sided lower confidence bound d̄ − t_{level, n−1} s/√n.
    pub lower: f64,
    /// Number of pairs.
    pub n: usize,
}

impl PairedDiff {
    /// The one-sided paired t bound at `level` (e.g. 0.95). With s = 0 the bound is d̄.
    pub fn of(a: &[f64], b: &[f64], level: f64) -> PairedDiff {
        assert_eq!(a.len(), b.len(), "paired samples");
        let n = a.len();
        let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
        let nf = n as f64;
        let mean = d.iter().sum::<f64>() / nf.max(1.0);
        if n < 2 {
            return PairedDiff {
                mean,
                lower: f64::NEG_INFINITY,
                n,
            };
        }
        let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (nf - 1.0);
        let t = StudentsT::new(0.0, 1.0, nf - 1.0)
            .expect("n ≥ 2")
            .inverse_cdf(level);
        PairedDiff {
            mean,
            lower: mean - t * (var / nf).sqrt(),
            n,
        }
    }

    /// "a beats b" is established iff the lower bound is above 0.
    pub fn established(&self) -> bool {
        self.lower > 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_textbook_value() {
        // k = 8, n = 10, 95 %: (0.4902, 0.9433), evaluated by hand from the formula (z = 1.959964).
        let (lo, hi) = wilson(8, 10, 0.95);
        assert!(
            (lo - 0.4902).abs() < 1e-4 && (hi - 0.9433).abs() < 1e-4,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0, 0.95), (0.0, 1.0));
    }

    #[test]
    fn paired_bound_detects_a_shift_and_not_its_absence() {
        let a: Vec<f64> = (0..30).map(|i| 0.5 + 0.01 * (i % 7) as f64).collect();
        let b: Vec<f64> = a.iter().map(|v| v - 0.05).collect();
        assert!(PairedDiff::of(&a, &b, 0.95).established());
        assert!(!PairedDiff::of(&b, &a, 0.95).established());
        assert!(!PairedDiff::of(&a, &a, 0.95).established());
    }
}
