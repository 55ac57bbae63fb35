//! Tables, JSON and SVG plots of check reports.
//!
//! - [`table`]: the text table `claim | measured | predicted | margin | verdict` printed by
//!   `gbml check`, followed by each family's parameters and details.
//! - [`to_json`]: the machine-readable report (`gbml check --json`).
//! - [`svg::render`] / [`write_figures`]: hand-written SVG plots (log axes, ticks, legend).
//! - [`snapshot_view`]: the rounded structure used by the insta snapshot.

pub mod svg;

use crate::checks::{fmt_num, CheckReport, Verdict};
use crate::error::{Error, Result};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Split `s` into lines of at most `n` characters, breaking at spaces only: a word longer than
/// `n` stays whole on its own line (numbers are never cut).
pub fn wrap(s: &str, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for w in s.split_whitespace() {
        let (lc, lw) = (cur.chars().count(), w.chars().count());
        if lc > 0 && lc + 1 + lw > n {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

fn pad(s: &str, n: usize) -> String {
    let c = s.chars().count();
    if c >= n {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(n - c))
    }
}

/// One table row whose cells are wrapped to the column widths (continuation lines below).
fn wrapped_row(s: &mut String, cells: &[(&str, usize)]) {
    let cols: Vec<Vec<String>> = cells.iter().map(|(t, w)| wrap(t, *w)).collect();
    let h = cols.iter().map(Vec::len).max().unwrap_or(1);
    for i in 0..h {
        let line: Vec<String> = cols
            .iter()
            .zip(cells)
            .map(|(c, (_, w))| pad(c.get(i).map_or("", String::as_str), *w))
            .collect();
        let _ = writeln!(s, "{}", line.join(" ").trim_end());
    }
}

/// Column widths of the table: id, claim, measured, predicted, margin, verdict.
const COLS: [usize; 6] = [41, 40, 30, 30, 9, 12];

/// Counts of claim verdicts and of controls over `reports`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Claims in total.
    pub claims: usize,
    /// PASS.
    pub pass: usize,
    /// FAIL.
    pub fail: usize,
    /// INCONCLUSIVE.
    pub inconclusive: usize,
    /// SANITY.
    pub sanity: usize,
    /// INFO.
    pub info: usize,
    /// Controls run.
    pub controls: usize,
    /// Controls that fail (as they must).
    pub controls_fail: usize,
}

impl Summary {
    /// Count the verdicts of `reports`.
    pub fn of(reports: &[CheckReport]) -> Self {
        let mut m = Summary::default();
        for c in reports.iter().flat_map(|r| &r.claims) {
            m.claims += 1;
            match c.verdict {
                Verdict::Pass => m.pass += 1,
                Verdict::Fail => m.fail += 1,
                Verdict::Inconclusive => m.inconclusive += 1,
                Verdict::Sanity => m.sanity += 1,
                Verdict::Info => m.info += 1,
            }
            m.controls += c.controls.len();
            m.controls_fail += c
                .controls
                .iter()
                .filter(|k| k.verdict == Verdict::Fail)
                .count();
        }
        m
    }
    /// The one-line summary printed under the table.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} claims: {} pass, {} fail, {} inconclusive, {} sanity, {} info",
            self.claims, self.pass, self.fail, self.inconclusive, self.sanity, self.info
        );
        if self.controls > 0 {
            let _ = write!(
                s,
                "; controls: {}/{} fail as required",
                self.controls_fail, self.controls
            );
            if self.controls_fail < self.controls {
                let _ = write!(s, " ({} DO NOT FAIL)", self.controls - self.controls_fail);
            }
        }
        s
    }
}

/// The text table of all claims (cells wrapped, never cut; each claim's controls below it),
/// then per family the parameters and details. With `verbose = false` only the table and a
/// one-line summary are printed.
pub fn table(reports: &[CheckReport], verbose: bool) -> String {
    let mut s = String::new();
    let head = ["id", "claim", "measured", "predicted", "margin", "verdict"];
    let cells: Vec<(&str, usize)> = head.iter().copied().zip(COLS).collect();
    wrapped_row(&mut s, &cells);
    let _ = writeln!(
        s,
        "{}",
        "-".repeat(COLS.iter().sum::<usize>() + COLS.len() - 1)
    );
    for r in reports {
        for c in &r.claims {
            let margin = fmt_num(c.margin);
            let row = [
                c.id.as_str(),
                c.claim.as_str(),
                c.measured_text.as_str(),
                c.predicted.as_str(),
                margin.as_str(),
                c.verdict.as_str(),
            ];
            wrapped_row(&mut s, &row.iter().copied().zip(COLS).collect::<Vec<_>>());
            for k in &c.controls {
                let id = format!("  control {}", k.id);
                let margin = fmt_num(k.margin);
                let row = [
                    id.as_str(),
                    k.description.as_str(),
                    k.measured_text.as_str(),
                    "must FAIL",
                    margin.as_str(),
                    k.verdict.as_str(),
                ];
                wrapped_row(&mut s, &row.iter().copied().zip(COLS).collect::<Vec<_>>());
            }
        }
    }
    let _ = writeln!(
        s,
        "\n{}; total time {:.1} s",
        Summary::of(reports).line(),
        reports.iter().map(|r| r.seconds).sum::<f64>()
    );
    if verbose {
        for r in reports {
            let _ = writeln!(
                s,
                "\n[{}] {} — {} ({:.1} s)",
                r.number,
                r.title,
                r.verdict.as_str(),
                r.seconds
            );
            if !r.params.is_empty() {
                let p: Vec<String> = r.params.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                let _ = writeln!(s, "  parameters: {}", p.join("; "));
            }
            for c in &r.claims {
                let _ = writeln!(
                    s,
                    "  {} [{}]: {} — measured {}, predicted {} ({})",
                    c.id,
                    c.verdict.as_str(),
                    c.claim,
                    c.measured_text,
                    c.predicted,
                    c.note
                );
            }
            for d in &r.details {
                let _ = writeln!(s, "  - {d}");
            }
        }
    }
    s
}

/// The table of `gbml check --seeds K`: per claim, how many of the seeds gave each verdict, and
/// per control how many seeds it failed on. `runs[i]` holds the reports of seed `seeds[i]`.
pub fn seeds_table(seeds: &[u64], runs: &[Vec<CheckReport>]) -> String {
    let mut s = String::new();
    let k = runs.len();
    let _ = writeln!(s, "seeds: {seeds:?}");
    let Some(first) = runs.first() else {
        return s;
    };
    let cw = [40usize, 24, 40];
    wrapped_row(
        &mut s,
        &[
            ("claim / control", cw[0]),
            ("verdicts over seeds", cw[1]),
            ("", cw[2]),
        ],
    );
    let _ = writeln!(s, "{}", "-".repeat(cw.iter().sum::<usize>() + 2));
    for (ri, r) in first.iter().enumerate() {
        for c in &r.claims {
            let find = |run: &Vec<CheckReport>| run.get(ri).and_then(|r| r.claim(&c.id)).cloned();
            let vs: Vec<Verdict> = runs
                .iter()
                .map(|run| find(run).map_or(Verdict::Fail, |x| x.verdict))
                .collect();
            let count = |v: Verdict| vs.iter().filter(|x| **x == v).count();
            let mut parts = vec![format!("{}/{k} pass", count(Verdict::Pass))];
            for v in [
                Verdict::Sanity,
                Verdict::Info,
                Verdict::Inconclusive,
                Verdict::Fail,
            ] {
                if count(v) > 0 {
                    parts.push(format!("{} {}", count(v), v.as_str().to_lowercase()));
                }
            }
            wrapped_row(&mut s, &[(&c.id, cw[0]), (&parts.join(", "), cw[1])]);
            for (ki, ctl) in c.controls.iter().enumerate() {
                let fails = runs
                    .iter()
                    .filter(|run| {
                        find(run).is_some_and(|x| {
                            x.controls
                                .get(ki)
                                .is_some_and(|x| x.verdict == Verdict::Fail)
                        })
                    })
                    .count();
                let id = format!("  control {}", ctl.id);
                let v = format!("{fails}/{k} fail");
                wrapped_row(
                    &mut s,
                    &[(&id, cw[0]), (&v, cw[1]), (&ctl.description, cw[2])],
                );
            }
        }
    }
    s
}

/// Pretty JSON of the reports (figures included).
pub fn to_json(reports: &[CheckReport]) -> Result<String> {
    serde_json::to_string_pretty(reports)
        .map_err(|e| Error::Unsupported(format!("JSON serialisation failed: {e}")))
}

/// Pretty JSON of a `--seeds K` run: a list of `{seed, families}` objects, `families` in the
/// shape of [`to_json`].
pub fn to_json_seeds(seeds: &[u64], runs: &[Vec<CheckReport>]) -> Result<String> {
    let v: Vec<serde_json::Value> = seeds
        .iter()
        .zip(runs)
        .map(|(s, r)| serde_json::json!({"seed": s, "families": r}))
        .collect();
    serde_json::to_string_pretty(&v)
        .map_err(|e| Error::Unsupported(format!("JSON serialisation failed: {e}")))
}

/// Write every figure of every report as `<dir>/<figure id>.svg`; returns the paths written.
pub fn write_figures(reports: &[CheckReport], dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        path: dir.display().to_string(),
        source: e,
    })?;
    let mut out = Vec::new();
    for r in reports {
        for f in &r.figures {
            let p = dir.join(format!("{}.svg", f.id));
            std::fs::write(&p, svg::render(f)).map_err(|e| Error::Io {
                path: p.display().to_string(),
                source: e,
            })?;
            out.push(p);
        }
    }
    Ok(out)
}

/// Round to `digits` significant digits (for snapshots).
pub fn round_sig(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let p = 10f64.powi(digits - 1 - v.abs().log10().floor() as i32);
    (v * p).round() / p
}

/// The snapshot view: for every claim its id, claim text and verdict (numbers are left out or
/// rounded to one significant digit so the snapshot only changes when the structure or a verdict
/// changes).
pub fn snapshot_view(reports: &[CheckReport]) -> serde_json::Value {
    serde_json::Value::Array(
        reports
            .iter()
            .map(|r| {
                serde_json::json!({
                    "family": r.id,
                    "number": r.number,
                    "title": r.title,
                    "verdict": r.verdict,
                    "claims": r.claims.iter().map(|c| serde_json::json!({
                        "id": c.id,
                        "claim": c.claim,
                        "predicted": c.predicted,
                        "verdict": c.verdict,
                        "controls": c.controls.iter().map(|k| serde_json::json!({
                            "id": k.id,
                            "verdict": k.verdict,
                        })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                    "figures": r.figures.iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}
