//! Reusable theorem checkers (issue 5): each runs an experiment and returns a [`CheckReport`]
//! with the claim, what was measured, what theory predicts, the margin and a verdict.
//!
//! Tests (`tests/<family>.rs`) and `gbml check` call the same functions; no logic lives in the
//! tests. Every checker has the signature `fn check_xxx(&Settings) -> Result<CheckReport>` and
//! sizes its experiment from [`Settings::profile`]:
//!
//! | profile | used by | budget (2 cores) |
//! |---|---|---|
//! | [`Profile::Quick`] | CI tests, `gbml check --quick`, the insta snapshot | < 1 min for all checks |
//! | [`Profile::Default`] | `gbml check` | < 5 min |
//! | [`Profile::Full`] | `gbml check --full`, `#[ignore]`d tests | thorough (widths to 16384; measured 25 min at load 9) |
//!
//! Verdicts: [`Verdict::Pass`] / [`Verdict::Fail`] are decided by a stated criterion on measured
//! numbers; [`Verdict::Inconclusive`] is used when the experiment cannot decide (e.g. a fit with a
//! confidence interval too wide to say anything; `gbml check --strict` exits 1 on it).
//! [`Verdict::Sanity`] / [`Verdict::Info`] label claims no counterfactual can make fail (plumbing
//! checks, vacuous bounds); they are never counted among the passes.
//!
//! Negative controls (issue 11): each claim's acceptance test is one function of the measured
//! inputs; with [`Settings::controls`] the checker also feeds it documented counterfactuals (a
//! wrong kernel, a first-order meta-gradient, a predictor that ignores the training tasks, …)
//! and records their verdicts in [`ClaimResult::controls`]; every control must FAIL.
//! Where a claim fails on honest numbers the report's `details` say why (MATH.md §9).

pub mod common;
pub mod convergence;
pub mod equivalence;
pub mod functional;
pub mod generalization;
pub mod linear;
pub mod stability;
pub mod stats;
pub mod sweep;
pub mod theorem1;

use serde::Serialize;
use std::time::Instant;

/// Outcome of one claim (or of one negative control run through the claim's checker).
///
/// Only [`Verdict::Pass`] counts as a pass. [`Verdict::Sanity`] marks a claim that holds but that
/// no counterfactual can make fail (it checks our plumbing, e.g. a first-order Taylor remainder
/// true for any smooth model); [`Verdict::Info`] reports a number without an acceptance test
/// (e.g. a vacuous bound). Neither is counted among the passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Verdict {
    /// The measured numbers satisfy the stated criterion, and a negative control fails it.
    Pass,
    /// A plumbing check: the criterion holds, but no counterfactual makes it fail.
    Sanity,
    /// A reported number, no acceptance test (e.g. a vacuous bound).
    Info,
    /// The experiment could not decide (stated why in the report).
    Inconclusive,
    /// The measured numbers violate the stated criterion.
    Fail,
}

impl Verdict {
    /// Display name ("PASS", "SANITY", "INFO", "INCONCLUSIVE", "FAIL").
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Sanity => "SANITY",
            Verdict::Info => "INFO",
            Verdict::Inconclusive => "INCONCLUSIVE",
            Verdict::Fail => "FAIL",
        }
    }
    /// Pass if `ok`, else Fail.
    pub fn from_bool(ok: bool) -> Self {
        if ok {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }
    /// Aggregate of a family: Fail if any fails, else Inconclusive if any is, else Pass
    /// (Sanity and Info do not change the aggregate).
    pub fn aggregate(it: impl IntoIterator<Item = Verdict>) -> Verdict {
        let mut agg = Verdict::Pass;
        for v in it {
            match v {
                Verdict::Fail => return Verdict::Fail,
                Verdict::Inconclusive => agg = Verdict::Inconclusive,
                _ => {}
            }
        }
        agg
    }
}

/// A negative control of a claim: a documented counterfactual under which the claim is false,
/// run through the same checker function as the real measurement. Its verdict must be
/// [`Verdict::Fail`]; its margin says by how much it fails (same units as the claim's margin).
#[derive(Clone, Debug, Serialize)]
pub struct Control {
    /// Short id of the counterfactual (e.g. `nngp_for_ntk`).
    pub id: String,
    /// The counterfactual in words.
    pub description: String,
    /// Verdict of the claim's checker on the counterfactual (must be Fail).
    pub verdict: Verdict,
    /// Headline measured value of the counterfactual.
    pub measured: f64,
    /// Measured value as displayed.
    pub measured_text: String,
    /// Signed distance to the acceptance threshold (negative = the control fails, as it must).
    pub margin: f64,
}

impl Control {
    /// The control `id` whose checker output is `c` (the claim's checker run on the
    /// counterfactual inputs).
    pub fn from_claim(id: &str, description: &str, c: &ClaimResult) -> Self {
        Control {
            id: id.into(),
            description: description.into(),
            verdict: c.verdict,
            measured: c.measured,
            measured_text: c.measured_text.clone(),
            margin: c.margin,
        }
    }
}

/// One checked claim: a row of the `gbml check` table.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimResult {
    /// Stable id, `<family>.<name>` (e.g. `linear.phi_equals_jf`).
    pub id: String,
    /// The claim in words.
    pub claim: String,
    /// Headline measured value.
    pub measured: f64,
    /// Measured value as displayed (may include a CI).
    pub measured_text: String,
    /// What theory predicts / the acceptance criterion, as displayed.
    pub predicted: String,
    /// Signed distance to the acceptance threshold, positive = satisfied (units stated in `note`).
    pub margin: f64,
    /// Verdict.
    pub verdict: Verdict,
    /// How the margin is measured, and anything needed to read the row.
    pub note: String,
    /// Negative controls run through the same checker (empty unless [`Settings::controls`]).
    pub controls: Vec<Control>,
}

impl ClaimResult {
    /// A claim row with no controls.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: &str,
        claim: impl Into<String>,
        measured: f64,
        measured_text: impl Into<String>,
        predicted: impl Into<String>,
        margin: f64,
        verdict: Verdict,
        note: impl Into<String>,
    ) -> Self {
        ClaimResult {
            id: id.into(),
            claim: claim.into(),
            measured,
            measured_text: measured_text.into(),
            predicted: predicted.into(),
            margin,
            verdict,
            note: note.into(),
            controls: Vec::new(),
        }
    }

    /// `measured ≤ bound` (margin in decades: log10(bound/measured), +16 if measured is 0).
    pub fn at_most(id: &str, claim: &str, measured: f64, bound: f64) -> Self {
        let margin = if measured == 0.0 {
            16.0
        } else if measured.is_finite() {
            (bound / measured).log10()
        } else {
            f64::NEG_INFINITY
        };
        ClaimResult::new(
            id,
            claim,
            measured,
            fmt_num(measured),
            format!("≤ {}", fmt_num(bound)),
            margin,
            Verdict::from_bool(measured.is_finite() && measured <= bound),
            "margin in decades: log10(bound/measured)",
        )
    }

    /// `lo ≤ measured ≤ hi` (margin = distance to the nearer end, in the measured units).
    pub fn within(id: &str, claim: &str, measured: f64, lo: f64, hi: f64) -> Self {
        let margin = (measured - lo).min(hi - measured);
        ClaimResult::new(
            id,
            claim,
            measured,
            fmt_num(measured),
            format!("∈ [{}, {}]", fmt_num(lo), fmt_num(hi)),
            if margin.is_nan() {
                f64::NEG_INFINITY
            } else {
                margin
            },
            Verdict::from_bool(measured >= lo && measured <= hi),
            "margin = distance to the nearer end of the interval",
        )
    }

    /// Builder: replace the verdict.
    pub fn with_verdict(mut self, v: Verdict) -> Self {
        self.verdict = v;
        self
    }
    /// Builder: a plumbing check — a Pass becomes [`Verdict::Sanity`] (a failure stays Fail).
    pub fn as_sanity(mut self) -> Self {
        if self.verdict == Verdict::Pass {
            self.verdict = Verdict::Sanity;
        }
        self
    }
    /// Builder: a reported number — the verdict becomes [`Verdict::Info`] unless the
    /// measurement itself is not finite (then Fail: a silent NaN is never information).
    pub fn as_info(mut self) -> Self {
        self.verdict = if self.measured.is_finite() {
            Verdict::Info
        } else {
            Verdict::Fail
        };
        self
    }
    /// Builder: attach the control `id`, whose checker output on the counterfactual is `c`.
    pub fn with_control(mut self, id: &str, description: &str, c: &ClaimResult) -> Self {
        self.controls.push(Control::from_claim(id, description, c));
        self
    }
    /// Builder: replace the displayed measured text.
    pub fn with_measured_text(mut self, s: impl Into<String>) -> Self {
        self.measured_text = s.into();
        self
    }
    /// Builder: replace the displayed prediction.
    pub fn with_predicted(mut self, s: impl Into<String>) -> Self {
        self.predicted = s.into();
        self
    }
    /// Builder: replace the note.
    pub fn with_note(mut self, s: impl Into<String>) -> Self {
        self.note = s.into();
        self
    }
    /// Whether every control fails (true when there are none).
    pub fn controls_all_fail(&self) -> bool {
        self.controls.iter().all(|c| c.verdict == Verdict::Fail)
    }
}

/// Compact number formatting for tables: 4 significant digits, scientific outside [1e-3, 1e4).
pub fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if !v.is_finite() {
        format!("{v}")
    } else if v.abs() >= 1e-3 && v.abs() < 1e4 {
        let s = format!("{:.4}", v);
        let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
        s
    } else {
        format!("{:.3e}", v)
    }
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Style {
    /// Solid line.
    Line,
    /// Dashed line (theory, envelopes, fits).
    Dashed,
    /// Markers only (measurements).
    Markers,
    /// Solid line with markers.
    LineMarkers,
}

/// A named data series of a figure.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Abscissae.
    pub x: Vec<f64>,
    /// Ordinates.
    pub y: Vec<f64>,
    /// Drawing style.
    pub style: Style,
}

impl Series {
    /// New series.
    pub fn new(label: impl Into<String>, x: Vec<f64>, y: Vec<f64>, style: Style) -> Self {
        Series {
            label: label.into(),
            x,
            y,
            style,
        }
    }
}

/// A figure produced by a check (rendered to SVG by `report::svg`).
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// File stem (`<id>.svg`).
    pub id: String,
    /// Title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Data.
    pub series: Vec<Series>,
}

/// Result of one checker: several claims of one family, free-form details and figures.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// Family id (e.g. `linear`, `theorem1`).
    pub id: String,
    /// Number of the claim family in issue 5 (1–7).
    pub number: u8,
    /// Title of the family.
    pub title: String,
    /// Aggregate verdict: Fail if any claim fails, else Inconclusive if any is, else Pass.
    pub verdict: Verdict,
    /// The claims.
    pub claims: Vec<ClaimResult>,
    /// Parameters of the experiment (name → value as text).
    pub params: Vec<(String, String)>,
    /// Explanations, regime limits, diagnostics.
    pub details: Vec<String>,
    /// Figures.
    pub figures: Vec<Figure>,
    /// Wall time of the check in seconds (not part of the snapshot).
    pub seconds: f64,
}

impl CheckReport {
    /// Empty report of family `id`.
    pub fn new(id: &str, number: u8, title: &str) -> Self {
        CheckReport {
            id: id.into(),
            number,
            title: title.into(),
            verdict: Verdict::Pass,
            claims: Vec::new(),
            params: Vec::new(),
            details: Vec::new(),
            figures: Vec::new(),
            seconds: 0.0,
        }
    }
    /// Add a claim (the aggregate verdict is updated).
    pub fn push(&mut self, c: ClaimResult) {
        self.claims.push(c);
        self.verdict = Verdict::aggregate(self.claims.iter().map(|c| c.verdict));
    }
    /// Mutable access to a claim by id (to attach controls after the fact).
    pub fn claim_mut(&mut self, id: &str) -> Option<&mut ClaimResult> {
        self.claims.iter_mut().find(|c| c.id == id)
    }
    /// Add a parameter line.
    pub fn param(&mut self, name: &str, value: impl std::fmt::Display) {
        self.params.push((name.into(), value.to_string()));
    }
    /// Add a detail line.
    pub fn detail(&mut self, s: impl Into<String>) {
        self.details.push(s.into());
    }
    /// Look up a claim by id.
    pub fn claim(&self, id: &str) -> Option<&ClaimResult> {
        self.claims.iter().find(|c| c.id == id)
    }
}

/// Size profile of the experiments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
pub enum Profile {
    /// CI / `--quick`: every check in seconds.
    Quick,
    /// `gbml check` default.
    #[default]
    Default,
    /// `--full`: thorough sweeps.
    Full,
}

/// The fixed seeds of `gbml check --seeds K` (the first K are used): the paper's arXiv date
/// 20200626 first, then further fixed values.
pub const SEEDS: [u64; 10] = [
    20200626, 20200627, 20200628, 20200629, 20200630, 20200701, 20200702, 20200703, 20200704,
    20200705,
];

/// Settings shared by all checkers.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Size profile.
    pub profile: Profile,
    /// Base seed (each check derives its own streams from it).
    pub seed: u64,
    /// Show indicatif progress bars on long steps.
    pub progress: bool,
    /// Run the negative controls of every claim (`gbml check --controls`).
    pub controls: bool,
}

impl Settings {
    /// Settings for a profile with the default seed 20200626 (the paper's arXiv date) and no bars.
    pub fn new(profile: Profile) -> Self {
        Settings {
            profile,
            seed: SEEDS[0],
            progress: false,
            controls: false,
        }
    }
    /// CI-sized settings (= quick profile).
    pub fn quick() -> Self {
        Self::new(Profile::Quick)
    }
    /// Builder: run (or skip) the negative controls.
    pub fn with_controls(mut self, on: bool) -> Self {
        self.controls = on;
        self
    }
    /// Builder: base seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Pick a value by profile.
    pub fn pick<T>(&self, quick: T, default: T, full: T) -> T {
        match self.profile {
            Profile::Quick => quick,
            Profile::Default => default,
            Profile::Full => full,
        }
    }
    /// A progress bar of `len` steps (hidden unless `progress`).
    pub fn bar(&self, len: u64, msg: &str) -> indicatif::ProgressBar {
        if !self.progress {
            return indicatif::ProgressBar::hidden();
        }
        let pb = indicatif::ProgressBar::new(len);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "  {msg:<36} [{bar:30}] {pos}/{len} {elapsed_precise}",
            )
            .unwrap()
            .progress_chars("=> "),
        );
        pb.set_message(msg.to_string());
        pb
    }
}

/// A checker: the common signature.
pub type Checker = fn(&Settings) -> crate::Result<CheckReport>;

/// All checkers in issue order, with their family ids.
pub fn all_checkers() -> Vec<(&'static str, Checker)> {
    vec![
        ("convergence", convergence::check_kernel_convergence),
        ("theorem1", theorem1::check_theorem1),
        ("stability", stability::check_kernel_stability),
        ("equivalence", equivalence::check_kernel_regression),
        ("functional", functional::check_functional_gd),
        ("linear", linear::check_linear_identities),
        ("generalization", generalization::check_generalization),
    ]
}

/// Run a checker and record its wall time.
pub fn timed(f: Checker, s: &Settings) -> crate::Result<CheckReport> {
    let t0 = Instant::now();
    let mut r = f(s)?;
    r.seconds = t0.elapsed().as_secs_f64();
    Ok(r)
}
