//! A small hand-written SVG plot writer: line / dashed / marker series, linear or log axes with
//! ticks and labels, a title and a legend. No plotting crate.

use crate::checks::{Figure, Style};
use std::fmt::Write;

const W: f64 = 760.0;
const H: f64 = 500.0;
const ML: f64 = 86.0;
const MR: f64 = 24.0;
const MT: f64 = 44.0;
const MB: f64 = 64.0;
/// Colour cycle (matplotlib's tab10).
const COLORS: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One axis: data range and mapping to pixels.
struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
}

impl Axis {
    fn from_data(vals: impl Iterator<Item = f64>, log: bool) -> Axis {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for v in vals {
            if !v.is_finite() || (log && v <= 0.0) {
                continue;
            }
            let t = if log { v.log10() } else { v };
            lo = lo.min(t);
            hi = hi.max(t);
        }
        if !lo.is_finite() {
            lo = 0.0;
            hi = 1.0;
        }
        if hi - lo < 1e-12 {
            let pad = if log { 0.5 } else { lo.abs().max(1.0) * 0.1 };
            lo -= pad;
            hi += pad;
        } else {
            let pad = (hi - lo) * 0.05;
            lo -= pad;
            hi += pad;
        }
        Axis { log, lo, hi }
    }
    /// Transformed coordinate of a data value (None if not drawable).
    fn t(&self, v: f64) -> Option<f64> {
        if !v.is_finite() || (self.log && v <= 0.0) {
            return None;
        }
        Some(if self.log { v.log10() } else { v })
    }
    fn frac(&self, v: f64) -> Option<f64> {
        self.t(v).map(|t| (t - self.lo) / (self.hi - self.lo))
    }
    /// Tick positions (data values) and labels.
    fn ticks(&self) -> Vec<(f64, String)> {
        let mut out = Vec::new();
        if self.log {
            let span = self.hi - self.lo;
            let mults: &[f64] = if span < 1.2 {
                &[1.0, 2.0, 3.0, 5.0]
            } else if span < 2.6 {
                &[1.0, 2.0, 5.0]
            } else {
                &[1.0]
            };
            let step = if span > 12.0 {
                (span / 8.0).ceil() as i32
            } else {
                1
            };
            let k0 = self.lo.floor() as i32;
            let k1 = self.hi.ceil() as i32;
            let mut k = k0;
            while k <= k1 {
                for &m in mults {
                    let v = m * 10f64.powi(k);
                    let t = v.log10();
                    if t >= self.lo && t <= self.hi {
                        out.push((v, log_label(v)));
                    }
                }
                k += step;
            }
        } else {
            let span = self.hi - self.lo;
            let raw = span / 6.0;
            let p = 10f64.powf(raw.log10().floor());
            let step = [1.0, 2.0, 2.5, 5.0, 10.0]
                .iter()
                .map(|m| m * p)
                .find(|s| *s >= raw)
                .unwrap_or(10.0 * p);
            let mut v = (self.lo / step).ceil() * step;
            while v <= self.hi + 1e-9 * step {
                let vv = if v.abs() < 1e-12 * step { 0.0 } else { v };
                out.push((vv, lin_label(vv, step)));
                v += step;
            }
        }
        out
    }
}

fn log_label(v: f64) -> String {
    let k = v.log10();
    if (k - k.round()).abs() < 1e-9 {
        let k = k.round() as i32;
        if (-2..=3).contains(&k) {
            return crate::checks::fmt_num(v);
        }
        return format!("1e{k}");
    }
    if v >= 1e-2 && v < 1e5 {
        crate::checks::fmt_num(v)
    } else {
        format!("{:.0e}", v)
    }
}

fn lin_label(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() >= 1e5 || v.abs() < 1e-3 {
        return format!("{:.1e}", v);
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize
        + if (step / 10f64.powf(step.log10().floor()) - 2.5).abs() < 1e-9 {
            1
        } else {
            0
        };
    format!("{:.*}", decimals, v)
}

/// Render a figure to an SVG document. The legend goes to the corner of the plot area that
/// covers the fewest data points; if every corner covers some, the y axis is extended upwards
/// so that the legend sits above all data.
pub fn render(fig: &Figure) -> String {
    let (svg, covered, legend_h) = render_with(fig, None);
    if covered == 0 {
        return svg;
    }
    let ph = H - MT - MB;
    let keep = (ph - legend_h - 16.0).max(ph * 0.3);
    render_with(fig, Some(ph / keep)).0
}

/// Render with the y span stretched upwards by `stretch` (None: data range); returns the SVG,
/// the number of data points under the legend and the legend height in pixels.
fn render_with(fig: &Figure, stretch: Option<f64>) -> (String, usize, f64) {
    let mut legend_cover = 0usize;
    let mut legend_h = 0.0;
    let xa = Axis::from_data(
        fig.series.iter().flat_map(|s| s.x.iter().copied()),
        fig.log_x,
    );
    let mut ya = Axis::from_data(
        fig.series.iter().flat_map(|s| s.y.iter().copied()),
        fig.log_y,
    );
    if let Some(f) = stretch {
        ya.hi = ya.lo + (ya.hi - ya.lo) * f;
    }
    let pw = W - ML - MR;
    let ph = H - MT - MB;
    let px = |v: f64| xa.frac(v).map(|f| ML + f * pw);
    let py = |v: f64| ya.frac(v).map(|f| MT + (1.0 - f) * ph);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="26" font-size="16" text-anchor="middle" font-weight="bold">{}</text>"#,
        ML + pw / 2.0,
        esc(&fig.title)
    );
    // grid + ticks
    for (v, lab) in xa.ticks() {
        if let Some(x) = px(v) {
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{MT}" x2="{x:.1}" y2="{:.1}" stroke="#e4e4e4"/>"##,
                MT + ph
            );
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#333"/>"##,
                MT + ph,
                MT + ph + 5.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{x:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
                MT + ph + 19.0,
                esc(&lab)
            );
        }
    }
    for (v, lab) in ya.ticks() {
        if let Some(y) = py(v) {
            let _ = writeln!(
                s,
                r##"<line x1="{ML}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/>"##,
                ML + pw
            );
            let _ = writeln!(
                s,
                r##"<line x1="{:.1}" y1="{y:.1}" x2="{ML}" y2="{y:.1}" stroke="#333"/>"##,
                ML - 5.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"#,
                ML - 8.0,
                y + 4.0,
                esc(&lab)
            );
        }
    }
    let _ = writeln!(
        s,
        r##"<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    // axis labels
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="14" text-anchor="middle">{}</text>"#,
        ML + pw / 2.0,
        H - 16.0,
        esc(&format!(
            "{}{}",
            fig.x_label,
            if fig.log_x { " (log scale)" } else { "" }
        ))
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" font-size="14" text-anchor="middle" transform="rotate(-90 18 {:.1})">{}</text>"#,
        MT + ph / 2.0,
        MT + ph / 2.0,
        esc(&format!(
            "{}{}",
            fig.y_label,
            if fig.log_y { " (log scale)" } else { "" }
        ))
    );
    // clip
    let _ = writeln!(
        s,
        r#"<clipPath id="plot"><rect x="{ML}" y="{MT}" width="{pw}" height="{ph}"/></clipPath>"#
    );
    let _ = writeln!(s, r#"<g clip-path="url(#plot)">"#);
    for (i, ser) in fig.series.iter().enumerate() {
        let col = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = ser
            .x
            .iter()
            .zip(&ser.y)
            .filter_map(|(&x, &y)| Some((px(x)?, py(y)?)))
            .collect();
        if matches!(ser.style, Style::Line | Style::Dashed | Style::LineMarkers) && pts.len() > 1 {
            let d: String = pts
                .iter()
                .enumerate()
                .map(|(k, (x, y))| format!("{}{x:.1},{y:.1}", if k == 0 { "M" } else { " L" }))
                .collect();
            let dash = if ser.style == Style::Dashed {
                r#" stroke-dasharray="7,5""#
            } else {
                ""
            };
            let _ = writeln!(
                s,
                r#"<path d="{d}" fill="none" stroke="{col}" stroke-width="2"{dash}/>"#
            );
        }
        if matches!(ser.style, Style::Markers | Style::LineMarkers) {
            for (x, y) in &pts {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{col}" fill-opacity="0.8" stroke="white" stroke-width="0.8"/>"#
                );
            }
        }
    }
    let _ = writeln!(s, "</g>");
    // legend (top right inside the plot area)
    if !fig.series.is_empty() {
        let lw = fig
            .series
            .iter()
            .map(|ser| ser.label.chars().count())
            .max()
            .unwrap_or(0) as f64
            * 6.6
            + 48.0;
        let lh = 20.0 * fig.series.len() as f64 + 8.0;
        // place the legend in the corner that covers the fewest data points (and line vertices)
        let all: Vec<(f64, f64)> = fig
            .series
            .iter()
            .flat_map(|ser| {
                ser.x
                    .iter()
                    .zip(&ser.y)
                    .filter_map(|(&x, &y)| Some((px(x)?, py(y)?)))
                    .collect::<Vec<_>>()
            })
            .collect();
        let corners = [
            (ML + pw - lw - 8.0, MT + 8.0),
            (ML + 8.0, MT + 8.0),
            (ML + pw - lw - 8.0, MT + ph - lh - 8.0),
            (ML + 8.0, MT + ph - lh - 8.0),
        ];
        let covered = |(cx, cy): (f64, f64)| {
            all.iter()
                .filter(|(x, y)| {
                    *x >= cx - 4.0 && *x <= cx + lw + 4.0 && *y >= cy - 4.0 && *y <= cy + lh + 4.0
                })
                .count()
        };
        let (lx, ly) = corners
            .iter()
            .copied()
            .min_by_key(|&c| covered(c))
            .unwrap_or(corners[0]);
        legend_cover = covered((lx, ly));
        legend_h = lh;
        let _ = writeln!(
            s,
            r##"<rect x="{lx:.1}" y="{ly:.1}" width="{lw:.1}" height="{lh:.1}" fill="white" fill-opacity="0.88" stroke="#999"/>"##
        );
        for (i, ser) in fig.series.iter().enumerate() {
            let col = COLORS[i % COLORS.len()];
            let y = ly + 16.0 + 20.0 * i as f64;
            let x0 = lx + 8.0;
            match ser.style {
                Style::Markers => {
                    let _ = writeln!(
                        s,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{col}"/>"#,
                        x0 + 12.0,
                        y - 4.0
                    );
                }
                _ => {
                    let dash = if ser.style == Style::Dashed {
                        r#" stroke-dasharray="7,5""#
                    } else {
                        ""
                    };
                    let _ = writeln!(
                        s,
                        r#"<line x1="{x0:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{col}" stroke-width="2"{dash}/>"#,
                        y - 4.0,
                        x0 + 26.0,
                        y - 4.0
                    );
                    if ser.style == Style::LineMarkers {
                        let _ = writeln!(
                            s,
                            r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{col}"/>"#,
                            x0 + 13.0,
                            y - 4.0
                        );
                    }
                }
            }
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{y:.1}" font-size="12">{}</text>"#,
                x0 + 34.0,
                esc(&ser.label)
            );
        }
    }
    s.push_str("</svg>\n");
    (s, legend_cover, legend_h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Series;

    #[test]
    fn renders_log_axes() {
        let fig = Figure {
            id: "t".into(),
            title: "a < b".into(),
            x_label: "width".into(),
            y_label: "error".into(),
            log_x: true,
            log_y: true,
            series: vec![Series::new(
                "m",
                vec![64.0, 4096.0],
                vec![0.1, 0.0125],
                Style::Markers,
            )],
        };
        let s = render(&fig);
        assert!(s.starts_with("<svg") && s.contains("a &lt; b") && s.contains("<circle"));
        assert!(s.contains(">1000<"));
    }
}
