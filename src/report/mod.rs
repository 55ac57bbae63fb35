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

fn trunc(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn pad(s: &str, n: usize) -> String {
    let c = s.chars().count();
    if c >= n {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(n - c))
    }
}

/// The text table of all claims, then per family the parameters and details.
/// With `verbose = false` only the table and a one-line summary are printed.
pub fn table(reports: &[CheckReport], verbose: bool) -> String {
    let mut s = String::new();
    let (wi, wc, wm, wp, wg) = (30, 56, 28, 36, 9);
    let _ = writeln!(
        s,
        "{} {} {} {} {} verdict",
        pad("id", wi),
        pad("claim", wc),
        pad("measured", wm),
        pad("predicted", wp),
        pad("margin", wg)
    );
    let _ = writeln!(s, "{}", "-".repeat(wi + wc + wm + wp + wg + 17));
    for r in reports {
        for c in &r.claims {
            let _ = writeln!(
                s,
                "{} {} {} {} {} {}",
                pad(&trunc(&c.id, wi), wi),
                pad(&trunc(&c.claim, wc), wc),
                pad(&trunc(&c.measured_text, wm), wm),
                pad(&trunc(&c.predicted, wp), wp),
                pad(&fmt_num(c.margin), wg),
                c.verdict.as_str()
            );
        }
    }
    let n = |v: Verdict| {
        reports
            .iter()
            .flat_map(|r| &r.claims)
            .filter(|c| c.verdict == v)
            .count()
    };
    let _ = writeln!(
        s,
        "\n{} claims: {} pass, {} fail, {} inconclusive; total time {:.1} s",
        reports.iter().map(|r| r.claims.len()).sum::<usize>(),
        n(Verdict::Pass),
        n(Verdict::Fail),
        n(Verdict::Inconclusive),
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

/// Pretty JSON of the reports (figures included).
pub fn to_json(reports: &[CheckReport]) -> Result<String> {
    serde_json::to_string_pretty(reports)
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
                    })).collect::<Vec<_>>(),
                    "figures": r.figures.iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}
