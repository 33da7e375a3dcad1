//! `ringcast-load plot A.json B.json -o out.svg`: latency percentile curves as SVG.
//!
//! The x axis is the percentile on the scale HdrHistogram's plots use,
//! `log10(1 / (1 − p))`, so 90 %, 99 %, 99.9 %, … are evenly spaced and the
//! tail gets as much room as the median; the y axis is latency in ms. One
//! line per run, a legend with the file names. The SVG is written by hand:
//! polylines, text and a few lines are all it needs.

#![forbid(unsafe_code)]

use std::fmt::Write;

use serde_json::Value;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 540.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 8] =
    ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
/// Percentiles at and beyond this are clipped: 1/(1-p) grows without bound at 100 %.
const MAX_PERCENTILE: f64 = 99.9999;

/// One run to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label (the file name).
    pub label: String,
    /// `(percentile 0..100, latency µs)`, ascending.
    pub points: Vec<(f64, f64)>,
}

/// Why a results file could not be plotted.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The file holds no usable latency data.
    #[error("{0}: no latency_curve or latency_us percentiles")]
    NoData(String),
}

/// Extracts the latency curve from a `--json` document.
pub fn series_from_json(label: &str, doc: &Value) -> Result<Series, PlotError> {
    let mut points: Vec<(f64, f64)> = match doc.get("latency_curve").and_then(Value::as_array) {
        Some(curve) if !curve.is_empty() => {
            curve.iter().filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?))).collect()
        }
        // Older or foreign files: fall back to the fixed percentiles.
        _ => {
            let lat = doc.get("latency_us").ok_or_else(|| PlotError::NoData(label.to_owned()))?;
            [(50.0, "p50"), (90.0, "p90"), (99.0, "p99"), (99.9, "p999"), (99.99, "p9999")]
                .iter()
                .filter_map(|&(p, k)| Some((p, lat.get(k)?.as_f64()?)))
                .collect()
        }
    };
    points.retain(|&(p, v)| (0.0..=MAX_PERCENTILE).contains(&p) && v.is_finite());
    if points.is_empty() {
        return Err(PlotError::NoData(label.to_owned()));
    }
    Ok(Series { label: label.to_owned(), points })
}

/// The x coordinate scale: `log10(1/(1-p))`.
pub fn percentile_x(p: f64) -> f64 {
    (1.0 / (1.0 - p / 100.0)).log10()
}

/// A "nice" upper bound (1, 2, 5 × 10^k) at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= v {
            return m * mag;
        }
    }
    10.0 * mag
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Renders the chart.
pub fn render_svg(series: &[Series]) -> String {
    let x_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|&(p, _)| percentile_x(p)))
        .fold(2.0f64, f64::max)
        .ceil();
    let y_max_ms = nice_ceiling(
        series.iter().flat_map(|s| s.points.iter().map(|&(_, v)| v / 1000.0)).fold(0.0, f64::max)
            * 1.05,
    );
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let sx = |x: f64| LEFT + x / x_max * plot_w;
    let sy = |ms: f64| TOP + plot_h - ms / y_max_ms * plot_h;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="25" text-anchor="middle" font-size="15">Latency by percentile</text>"#,
        WIDTH / 2.0
    );
    // X grid: 0 %, 50 %, then 90 %, 99 %, ... one decade apart.
    let mut ticks = vec![(0.0, "0%".to_owned()), (percentile_x(50.0), "50%".to_owned())];
    let mut nines = String::from("90");
    // x_max is a small whole number of decades (at most 6 after clipping at 99.9999 %).
    #[allow(clippy::cast_possible_truncation)]
    let decades = x_max.min(16.0) as u32;
    for decade in 1..=decades {
        ticks.push((f64::from(decade), format!("{nines}%")));
        nines = if decade == 1 {
            "99".to_owned()
        } else if decade == 2 {
            "99.9".to_owned()
        } else {
            format!("{nines}9")
        };
    }
    for (x, label) in &ticks {
        let px = sx(*x);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0
        );
    }
    // Y grid: five steps.
    for i in 0..=5 {
        let ms = y_max_ms * f64::from(i) / 5.0;
        let py = sy(ms);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            py + 4.0,
            format_ms(ms)
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 15.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="20" y="{:.1}" text-anchor="middle" transform="rotate(-90 20 {:.1})">latency (ms)</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|&(p, us)| format!("{:.1},{:.1}", sx(percentile_x(p)), sy(us / 1000.0)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        let ly = TOP + 18.0 + 18.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            LEFT + 12.0,
            LEFT + 36.0,
            LEFT + 42.0,
            ly + 4.0,
            escape(&s.label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn format_ms(ms: f64) -> String {
    if ms == 0.0 {
        "0".to_owned()
    } else if ms < 1.0 {
        format!("{ms:.3}")
    } else if ms < 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percentile_scale() {
        let cases: &[(f64, f64)] =
            &[(0.0, 0.0), (90.0, 1.0), (99.0, 2.0), (99.9, 3.0), (99.99, 4.0)];
        for &(p, want) in cases {
            assert!((percentile_x(p) - want).abs() < 1e-9, "{p}");
        }
    }

    #[test]
    fn reads_curves_and_falls_back_to_fixed_percentiles() {
        let doc = json!({"latency_curve": [[0.0, 10], [50.0, 20], [100.0, 99]]});
        let s = series_from_json("a.json", &doc).unwrap();
        // 100 % is clipped: it has no place on a log(1/(1-p)) axis.
        assert_eq!(s.points, vec![(0.0, 10.0), (50.0, 20.0)]);
        let doc = json!({"latency_us": {"p50": 1, "p90": 2, "p99": 3, "p999": 4, "p9999": 5}});
        assert_eq!(series_from_json("b", &doc).unwrap().points.len(), 5);
        assert!(series_from_json("c", &json!({})).is_err());
    }

    #[test]
    fn svg_has_one_line_per_run_and_a_legend() {
        let a = Series { label: "a<1>.json".into(), points: vec![(0.0, 100.0), (99.9, 5000.0)] };
        let b = Series { label: "b.json".into(), points: vec![(0.0, 50.0), (99.0, 900.0)] };
        let svg = render_svg(&[a, b]);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a&lt;1&gt;.json") && svg.contains("b.json"));
        for label in ["50%", "90%", "99%", "99.9%"] {
            assert!(svg.contains(&format!(">{label}<")), "{label}");
        }
    }
}
