//! Charts as server-rendered SVG: bars (stacked or not) and lines over days, with axes, a
//! legend, a tooltip per mark and the numbers in a table underneath (for screen readers and
//! for copying). No script: the SVG scales to the page's width, phone included.

use maud::{html, Markup};

/// One series: a name, a colour and a value per day (`None`: nothing that day).
pub struct Series {
    /// Shown in the legend and tooltips.
    pub name: String,
    /// A CSS colour.
    pub color: &'static str,
    /// One per label.
    pub values: Vec<Option<f64>>,
}

const W: f64 = 720.0;
const H: f64 = 240.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 34.0;

/// Colours that stay apart for the common dispositions, then a cycle for the rest.
pub fn disposition_color(name: &str, i: usize) -> &'static str {
    match name {
        "completed" => "#2e7d32",
        "voicemail" => "#6a1b9a",
        "no-answer" => "#f9a825",
        "busy" => "#ef6c00",
        "failed" => "#c62828",
        "canceled" => "#757575",
        "in-progress" => "#1565c0",
        _ => ["#00838f", "#8d6e63", "#ad1457", "#558b2f"][i % 4],
    }
}

/// 1, 2 or 5 times a power of ten, at least `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn fmt(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Axes, grid lines and day labels; the marks go inside.
fn frame(
    id: &str,
    title: &str,
    labels: &[String],
    y_max: f64,
    unit: &str,
    marks: Markup,
    series: &[Series],
) -> Markup {
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = labels.len().max(1);
    let every = n.div_ceil(8).max(1);
    let slot = plot_w / n as f64;
    html! {
        figure.chart-box id=(id) {
            figcaption { (title) }
            svg.chart viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(title) preserveAspectRatio="xMidYMid meet" {
                @for k in 0..=4 {
                    @let v = y_max * k as f64 / 4.0;
                    @let y = TOP + plot_h - plot_h * k as f64 / 4.0;
                    line x1=(LEFT) x2=(W - RIGHT) y1=(y) y2=(y) stroke="#d0d5dd" stroke-width="1" {}
                    text x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" font-size="11" fill="#555" { (fmt(v)) (unit) }
                }
                @for (i, l) in labels.iter().enumerate() {
                    @if i % every == 0 {
                        text x=(LEFT + slot * (i as f64 + 0.5)) y=(H - BOTTOM + 16.0) text-anchor="middle" font-size="11" fill="#555" {
                            (l.get(5..).unwrap_or(l))
                        }
                    }
                }
                (marks)
            }
            @if series.len() > 1 {
                ul.legend {
                    @for s in series {
                        li { span.swatch style={ "background:" (s.color) } {} (s.name) }
                    }
                }
            }
            details {
                summary { "The numbers" }
                div.table-wrap {
                    table.list.chart-data {
                        thead { tr { th { "Day" } @for s in series { th { (s.name) } } } }
                        tbody {
                            @for (i, l) in labels.iter().enumerate() {
                                tr {
                                    td { (l) }
                                    @for s in series {
                                        td { @match s.values.get(i).copied().flatten() { Some(v) => (fmt(v)), None => "—" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Bars per day; `stacked` piles the series (e.g. calls by disposition).
pub fn bars(
    id: &str,
    title: &str,
    labels: &[String],
    series: &[Series],
    stacked: bool,
    unit: &str,
) -> Markup {
    let n = labels.len().max(1);
    let per_day = |i: usize| -> f64 {
        let vals = series
            .iter()
            .map(|s| s.values.get(i).copied().flatten().unwrap_or(0.0));
        if stacked {
            vals.sum()
        } else {
            vals.fold(0.0, f64::max)
        }
    };
    let y_max = nice_ceiling((0..labels.len()).map(per_day).fold(0.0, f64::max));
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / n as f64;
    let groups = if stacked { 1 } else { series.len().max(1) };
    let bar_w = slot * 0.8 / groups as f64;
    let mut rects = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let mut base = 0.0;
        for (k, s) in series.iter().enumerate() {
            let Some(v) = s.values.get(i).copied().flatten().filter(|v| *v > 0.0) else {
                continue;
            };
            let h = plot_h * v / y_max;
            let (x, y) = if stacked {
                (
                    LEFT + slot * i as f64 + slot * 0.1,
                    TOP + plot_h - h - plot_h * base / y_max,
                )
            } else {
                (
                    LEFT + slot * i as f64 + slot * 0.1 + bar_w * k as f64,
                    TOP + plot_h - h,
                )
            };
            base += v;
            let tip = format!("{label} · {}: {}{unit}", s.name, fmt(v));
            rects.push((x, y, h, s.color, tip));
        }
    }
    let marks = html! {
        @for (x, y, h, color, tip) in &rects {
            rect x=(format!("{x:.1}")) y=(format!("{y:.1}")) width=(format!("{bar_w:.1}")) height=(format!("{h:.1}")) fill=(color) {
                title { (tip) }
            }
        }
    };
    frame(id, title, labels, y_max, unit, marks, series)
}

/// Lines per day (gaps where a day has no value).
pub fn lines(
    id: &str,
    title: &str,
    labels: &[String],
    series: &[Series],
    unit: &str,
    fixed_max: Option<f64>,
) -> Markup {
    let n = labels.len().max(1);
    let top = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .fold(0.0, f64::max);
    let y_max = fixed_max.unwrap_or_else(|| nice_ceiling(top));
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / n as f64;
    let point = |i: usize, v: f64| {
        (
            LEFT + slot * (i as f64 + 0.5),
            TOP + plot_h - plot_h * v.min(y_max) / y_max,
        )
    };
    let marks = html! {
        @for s in series {
            @for run in runs(&s.values) {
                @let pts: Vec<String> = run.iter().map(|(i, v)| { let (x, y) = point(*i, *v); format!("{x:.1},{y:.1}") }).collect();
                polyline points=(pts.join(" ")) fill="none" stroke=(s.color) stroke-width="2" {}
            }
            @for (i, v) in s.values.iter().enumerate() {
                @if let Some(v) = v {
                    @let (x, y) = point(i, *v);
                    circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="3" fill=(s.color) {
                        title { (labels[i]) " · " (s.name) ": " (fmt(*v)) (unit) }
                    }
                }
            }
        }
    };
    frame(id, title, labels, y_max, unit, marks, series)
}

/// Consecutive days with values.
fn runs(values: &[Option<f64>]) -> Vec<Vec<(usize, f64)>> {
    let mut out: Vec<Vec<(usize, f64)>> = Vec::new();
    let mut cur = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => cur.push((i, *v)),
            None if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_to_readable_numbers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(13.0), 20.0);
        assert_eq!(nice_ceiling(420.0), 500.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
    }

    #[test]
    fn stacked_bars_pile_up_and_lines_break_on_gaps() {
        let labels = vec!["2026-11-01".to_owned(), "2026-11-02".to_owned()];
        let s = [
            Series {
                name: "completed".into(),
                color: "#000",
                values: vec![Some(3.0), Some(1.0)],
            },
            Series {
                name: "failed".into(),
                color: "#111",
                values: vec![Some(2.0), None],
            },
        ];
        let svg = bars("c", "Calls", &labels, &s, true, "").into_string();
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("2026-11-01 · failed: 2"));
        assert_eq!(runs(&[Some(1.0), None, Some(2.0), Some(3.0)]).len(), 2);
        let l = lines("l", "Rate", &labels, &s[1..], "%", Some(100.0)).into_string();
        assert_eq!(l.matches("<circle").count(), 1);
    }
}
