//! Hand-written SVG charts of a metric against the number of timesteps: accuracy vs T, and
//! the dynamic-threshold factor ω(t) of Lan et al. 2023 (Fig. 4).
//!
//! The SVG is built as text (no font files or system fonts are needed, and the output
//! is byte-for-byte deterministic). Structure, useful for tests and for styling:
//! * `<g class="series" data-label="...">` per series with one `<path class="line">` and
//!   one marker per point;
//! * `<g class="ann" data-label="ANN (model)">` per ANN reference line (dashed);
//! * `<g class="legend">` with one `<g class="legend-entry">` per series and ANN line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::{ANN_METHOD, ReportError, ResultRow, push_unique, seed_stats};

pub(crate) const PALETTE: [&str; 10] =
    ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const ANN_COLOR: &str = "#444444";
/// Dash patterns of the ANN reference lines (cycled).
const ANN_DASHES: [&str; 3] = ["6 4", "2 3", "10 3 2 3"];
const PLOT_LEFT: f64 = 72.0;
const PLOT_TOP: f64 = 56.0;
const PLOT_W: f64 = 560.0;
const PLOT_H: f64 = 360.0;
const BOTTOM_MARGIN: f64 = 64.0;
const LEGEND_GAP: f64 = 24.0;
const LEGEND_ROW: f64 = 20.0;
/// Rough advance width of one character at font-size 12 (for layout only).
const CHAR_W: f64 = 7.0;
/// Rough advance width of one character at font-size 11.
const LABEL_CHAR_W: f64 = 6.4;

/// Escapes text for SVG content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Coordinate formatting: two decimals, fixed.
pub(crate) fn n(v: f64) -> String {
    format!("{v:.2}")
}

/// A "nice" step (1, 2 or 5 × 10^k) giving about `target` intervals over `span`.
pub(crate) fn nice_step(span: f64, target: f64) -> f64 {
    let raw = span / target;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

struct Series {
    label: String,
    /// (T, seed-averaged accuracy), ascending T.
    points: Vec<(u32, f64)>,
}

struct AnnLine {
    label: String,
    value: f64,
}

/// Draws accuracy (metric `"accuracy"`, rows with an empty `layer`) against T as SVG.
///
/// * One line with markers per (model, method, variant) series, seed-averaged; the data
///   set is added to the series key (and label) when the rows hold more than one.
///   Non-ANN rows with `T = 0` cannot be placed on the log axis and are skipped, as are
///   non-finite values.
/// * x axis log2-scaled with tick labels at the T values present; y axis in percent with
///   gridlines, range fitted to the data in steps of 10.
/// * The ANN (method `"ann"`) value of each model as a dashed horizontal line labelled
///   `ANN (model)` (plus the variant when not empty), also listed in the legend.
///
/// Returns [`ReportError::NoData`] when there is no finite accuracy value to draw.
/// The result starts with `<svg` and ends with `</svg>`.
pub fn accuracy_vs_t_svg(title: &str, rows: &[ResultRow]) -> Result<String, ReportError> {
    metric_vs_t_svg(title, rows, &YAxis { metric: "accuracy", label: "accuracy (%)", percent: true })
}

/// The task's primary metric of `rows` (`accuracy`, a detector's `map50`, a segmenter's
/// `miou`: the first of them with a whole-network row), else `accuracy`.
pub fn primary_metric_of(rows: &[ResultRow]) -> &'static str {
    const PRIMARY: [&str; 3] = ["accuracy", "map50", "miou"];
    PRIMARY.into_iter().find(|m| rows.iter().any(|r| r.metric == *m && r.layer.is_empty())).unwrap_or("accuracy")
}

/// [`accuracy_vs_t_svg`] for the task's primary metric ([`primary_metric_of`]): accuracy for
/// classifiers, mAP@0.5 for detectors, mIoU for segmenters.
pub fn primary_metric_vs_t_svg(title: &str, rows: &[ResultRow]) -> Result<String, ReportError> {
    let metric = primary_metric_of(rows);
    let label = match metric {
        "map50" => "mAP@0.5 (%)",
        "miou" => "mIoU (%)",
        _ => "accuracy (%)",
    };
    metric_vs_t_svg(title, rows, &YAxis { metric, label, percent: true })
}

/// The y axis of [`metric_vs_t_svg`].
struct YAxis<'a> {
    /// Rows of this metric (and an empty layer) are drawn.
    metric: &'a str,
    /// Axis label.
    label: &'a str,
    /// Percent values: range in steps of 10 within [0, 100] where the data allow, `%` in
    /// tooltips. Otherwise the range is the data's, padded by 5 %.
    percent: bool,
}

/// Stems `d` of the neuron diagnostics in `rows`: metrics with `d_mean`, `d_min` and `d_max`
/// rows (e.g. `omega`, the dynamic-threshold factor of Lan et al. 2023), in first-seen order.
pub fn diagnostic_stems(rows: &[ResultRow]) -> Vec<String> {
    diagnostic_stems_of(rows.iter().map(|r| r.metric.as_str()))
}

/// [`diagnostic_stems`] of a sequence of metric names.
pub fn diagnostic_stems_of<'a>(metrics: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut order: Vec<&str> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for m in metrics {
        if seen.insert(m) {
            order.push(m);
        }
    }
    let mut stems: Vec<String> = Vec::new();
    for stem in order.iter().filter_map(|m| m.strip_suffix("_mean")) {
        if ["min", "max"].iter().all(|x| seen.contains(format!("{stem}_{x}").as_str())) {
            stems.push(stem.to_string());
        }
    }
    stems
}

/// Draws a neuron diagnostic `stem` (e.g. `omega`: ω(t), Lan et al. 2023's Fig. 4) against t
/// as SVG: for every method with `<stem>_mean`/`_min`/`_max` rows (whole-network rows: the
/// first layer recording it), three series `method (mean|min|max)`. [`ReportError::NoData`]
/// when there are no such rows.
pub fn diagnostic_vs_t_svg(title: &str, stem: &str, rows: &[ResultRow]) -> Result<String, ReportError> {
    let prefix = format!("{stem}_");
    let series: Vec<ResultRow> = rows
        .iter()
        .filter(|r| r.layer.is_empty() && r.method != ANN_METHOD)
        .filter_map(|r| {
            let stat = r.metric.strip_prefix(&prefix).filter(|s| ["mean", "min", "max"].contains(s))?;
            Some(ResultRow { method: format!("{} ({stat})", r.method), metric: stem.into(), ..r.clone() })
        })
        .collect();
    let label = format!("{stem}(t) over samples");
    metric_vs_t_svg(title, &series, &YAxis { metric: stem, label: &label, percent: false })
}

fn metric_vs_t_svg(title: &str, rows: &[ResultRow], axis: &YAxis) -> Result<String, ReportError> {
    let acc: Vec<&ResultRow> =
        rows.iter().filter(|r| r.metric == axis.metric && r.layer.is_empty() && r.value.is_finite()).collect();
    let mut datasets: Vec<&str> = Vec::new();
    for r in &acc {
        push_unique(&mut datasets, r.dataset.as_str());
    }
    let multi_dataset = datasets.len() > 1;

    // Series, in first-appearance order.
    let mut series_keys: Vec<[&str; 4]> = Vec::new();
    let mut series_rows: Vec<BTreeMap<u32, Vec<&ResultRow>>> = Vec::new();
    let mut ann_keys: Vec<[&str; 3]> = Vec::new();
    let mut ann_rows: Vec<Vec<&ResultRow>> = Vec::new();
    for r in &acc {
        if r.method == ANN_METHOD {
            let key = [r.dataset.as_str(), r.model.as_str(), r.variant.as_str()];
            let i = ann_keys.iter().position(|k| *k == key).unwrap_or_else(|| {
                ann_keys.push(key);
                ann_rows.push(Vec::new());
                ann_keys.len() - 1
            });
            ann_rows[i].push(r);
        } else if r.t > 0 {
            let key = [r.dataset.as_str(), r.model.as_str(), r.method.as_str(), r.variant.as_str()];
            let i = series_keys.iter().position(|k| *k == key).unwrap_or_else(|| {
                series_keys.push(key);
                series_rows.push(BTreeMap::new());
                series_keys.len() - 1
            });
            series_rows[i].entry(r.t).or_default().push(r);
        }
    }
    let series: Vec<Series> = series_keys
        .iter()
        .zip(&series_rows)
        .map(|([d, m, meth, v], by_t)| {
            let mut label = if multi_dataset { format!("{d} / {m} / {meth}") } else { format!("{m} / {meth}") };
            if !v.is_empty() {
                let _ = write!(label, " ({v})");
            }
            let points = by_t
                .iter()
                .filter_map(|(&t, rs)| {
                    seed_stats(rs.iter().copied()).map(|s| (t, s.mean)).filter(|(_, m)| m.is_finite())
                })
                .collect();
            Series { label, points }
        })
        .filter(|s: &Series| !s.points.is_empty())
        .collect();
    let anns: Vec<AnnLine> = ann_keys
        .iter()
        .zip(&ann_rows)
        .filter_map(|([d, m, v], rs)| {
            let s = seed_stats(rs.iter().copied())?;
            let mut inner: Vec<&str> = Vec::new();
            if multi_dataset {
                inner.push(d);
            }
            inner.push(m);
            if !v.is_empty() {
                inner.push(v);
            }
            Some(AnnLine { label: format!("ANN ({})", inner.join(", ")), value: s.mean })
        })
        .filter(|a| a.value.is_finite())
        .collect();
    if series.is_empty() && anns.is_empty() {
        return Err(ReportError::NoData(format!("no finite whole-network {} values to plot", axis.metric)));
    }

    // x scale (log2 of T).
    let mut ts: Vec<u32> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    ts.sort_unstable();
    ts.dedup();
    let (lx_lo, lx_hi) = match (ts.first(), ts.last()) {
        (Some(&a), Some(&b)) if a < b => {
            let (la, lb) = (f64::from(a).log2(), f64::from(b).log2());
            let pad = (0.06 * (lb - la)).max(0.3);
            (la - pad, lb + pad)
        }
        (Some(&a), _) => (f64::from(a).log2() - 1.0, f64::from(a).log2() + 1.0),
        _ => (0.0, 5.0),
    };
    let x_of = |t: u32| PLOT_LEFT + (f64::from(t).log2() - lx_lo) / (lx_hi - lx_lo) * PLOT_W;

    // y scale (percent).
    let ys: Vec<f64> =
        series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).chain(anns.iter().map(|a| a.value)).collect();
    let y_min = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let y_max = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if axis.percent {
        let mut lo = ((y_min - 2.0) / 10.0).floor() * 10.0;
        let mut hi = ((y_max + 2.0) / 10.0).ceil() * 10.0;
        if y_min >= 0.0 {
            lo = lo.max(0.0);
        }
        if y_max <= 100.0 {
            hi = hi.min(100.0);
        }
        if hi - lo < 10.0 {
            hi = lo + 10.0;
        }
        (lo, hi)
    } else {
        let pad = ((y_max - y_min) * 0.05).max(y_max.abs() * 0.01).max(1e-6);
        let step = nice_step(y_max - y_min + 2.0 * pad, 8.0);
        ((((y_min - pad) / step).floor() * step), (((y_max + pad) / step).ceil() * step))
    };
    let step = nice_step(hi - lo, if axis.percent { 10.0 } else { 8.0 });
    let y_of = |v: f64| PLOT_TOP + (hi - v) / (hi - lo) * PLOT_H;

    // Canvas size (legend to the right of the plot).
    let legend_labels: Vec<&str> =
        series.iter().map(|s| s.label.as_str()).chain(anns.iter().map(|a| a.label.as_str())).collect();
    let longest = legend_labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
    let legend_x = PLOT_LEFT + PLOT_W + LEGEND_GAP;
    let width = (legend_x + 44.0 + longest * CHAR_W + 16.0).ceil();
    let legend_h = legend_labels.len() as f64 * LEGEND_ROW + 16.0;
    let height = (PLOT_TOP + PLOT_H + BOTTOM_MARGIN).max(PLOT_TOP + legend_h + 16.0).ceil();
    let (x0, x1, y0, y1) = (PLOT_LEFT, PLOT_LEFT + PLOT_W, PLOT_TOP, PLOT_TOP + PLOT_H);

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"#,
        w = width,
        h = height
    );
    let _ = writeln!(s, "<title>{}</title>", esc(title));
    let _ = writeln!(s, r##"<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text class="title" x="{}" y="30" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        n(x0 + PLOT_W / 2.0),
        esc(title)
    );

    // Grid and ticks.
    let _ = writeln!(s, r##"<g class="grid" stroke="#dddddd" stroke-width="1">"##);
    let n_steps = ((hi - lo) / step).round().clamp(0.0, 1000.0) as usize;
    let y_ticks: Vec<f64> = (0..=n_steps).map(|i| lo + i as f64 * step).collect();
    for &v in &y_ticks {
        let y = n(y_of(v));
        let _ = writeln!(s, r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}"/>"#, n(x0), n(x1));
    }
    for &t in &ts {
        let x = n(x_of(t));
        let _ = writeln!(s, r#"<line x1="{x}" y1="{}" x2="{x}" y2="{}"/>"#, n(y0), n(y1));
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(
        s,
        r##"<rect class="frame" x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#333333" stroke-width="1"/>"##,
        n(x0),
        n(y0),
        n(PLOT_W),
        n(PLOT_H)
    );
    let decimals = if step >= 1.0 { 0 } else { (-step.log10().floor()) as usize };
    let _ = writeln!(s, r##"<g class="y-ticks" text-anchor="end" fill="#333333">"##);
    for &v in &y_ticks {
        let _ = writeln!(s, r#"<text x="{}" y="{}" dy="0.35em">{v:.decimals$}</text>"#, n(x0 - 8.0), n(y_of(v)));
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, r##"<g class="x-ticks" text-anchor="middle" fill="#333333">"##);
    let mut last_x: Option<(f64, usize)> = None;
    for &t in &ts {
        let x = x_of(t);
        let label = t.to_string();
        let len = label.chars().count();
        let fits = last_x.is_none_or(|(lx, llen)| x - lx >= CHAR_W * (len.max(llen) as f64) + 6.0);
        if fits {
            let _ = writeln!(s, r#"<text x="{}" y="{}">{label}</text>"#, n(x), n(y1 + 18.0));
            last_x = Some((x, len));
        }
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(
        s,
        r#"<text class="x-label" x="{}" y="{}" text-anchor="middle">timesteps T (log2 scale)</text>"#,
        n(x0 + PLOT_W / 2.0),
        n(y1 + 44.0)
    );
    let _ = writeln!(
        s,
        r#"<text class="y-label" x="{x}" y="{y}" text-anchor="middle" transform="rotate(-90 {x} {y})">{label}</text>"#,
        x = n(24.0),
        y = n(y0 + PLOT_H / 2.0),
        label = esc(axis.label)
    );

    // ANN reference lines (dashed, a different pattern each).
    let ann_ys: Vec<f64> = anns.iter().map(|a| y_of(a.value)).collect();
    for (i, a) in anns.iter().enumerate() {
        let y = ann_ys[i];
        let dash = ANN_DASHES[i % ANN_DASHES.len()];
        let _ = writeln!(s, r#"<g class="ann" data-label="{}">"#, esc(&a.label));
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{ANN_COLOR}" stroke-width="1.5" stroke-dasharray="{dash}"/>"#,
            n(x0),
            n(y),
            n(x1),
            n(y)
        );
        let _ = writeln!(s, "</g>");
    }

    // Series.
    for (i, se) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let shape = (i / PALETTE.len()) % 3;
        let _ = writeln!(s, r#"<g class="series" data-label="{}" stroke="{color}" fill="{color}">"#, esc(&se.label));
        let d: Vec<String> = se
            .points
            .iter()
            .enumerate()
            .map(|(j, &(t, v))| format!("{}{} {}", if j == 0 { "M" } else { "L" }, n(x_of(t)), n(y_of(v))))
            .collect();
        let _ = writeln!(s, r#"<path class="line" d="{}" fill="none" stroke-width="2"/>"#, d.join(" "));
        for &(t, v) in &se.points {
            let tip = if axis.percent { format!("T={t}: {v:.2}%") } else { format!("T={t}: {v:.4}") };
            marker(&mut s, shape, x_of(t), y_of(v), &tip);
        }
        let _ = writeln!(s, "</g>");
    }

    // Direct ANN labels, on top of everything in the plot, where they collide with
    // no other ANN line or label (and preferably no series); else the legend suffices.
    let polylines: Vec<Vec<(f64, f64)>> =
        series.iter().map(|se| se.points.iter().map(|&(t, v)| (x_of(t), y_of(v))).collect()).collect();
    let mut placed: Vec<[f64; 4]> = Vec::new();
    let _ = writeln!(s, r#"<g class="ann-labels">"#);
    for (i, a) in anns.iter().enumerate() {
        let y = ann_ys[i];
        let text = format!("{}: {:.2}%", a.label, a.value);
        let text_w = text.chars().count() as f64 * LABEL_CHAR_W;
        // (x, anchor, box [left, top, right, bottom]); left end first, where series
        // (accuracy rising with T) are usually far below the ANN.
        let candidates = [
            (x0 + 6.0, "start", [x0 + 4.0, y - 16.0, x0 + 8.0 + text_w, y - 3.0]),
            (x0 + 6.0, "start", [x0 + 4.0, y + 3.0, x0 + 8.0 + text_w, y + 16.0]),
            (x1 - 6.0, "end", [x1 - 8.0 - text_w, y - 16.0, x1 - 4.0, y - 3.0]),
            (x1 - 6.0, "end", [x1 - 8.0 - text_w, y + 3.0, x1 - 4.0, y + 16.0]),
        ];
        let acceptable = |b: &[f64; 4]| {
            b[1] >= y0
                && b[3] <= y1
                && ann_ys.iter().enumerate().all(|(j, &oy)| j == i || oy < b[1] - 1.0 || oy > b[3] + 1.0)
                && placed.iter().all(|p| p[2] < b[0] || p[0] > b[2] || p[3] < b[1] || p[1] > b[3])
        };
        let clear = |b: &[f64; 4]| polylines.iter().all(|pl| !polyline_hits_box(pl, b));
        let spot = candidates
            .iter()
            .find(|c| acceptable(&c.2) && clear(&c.2))
            .or_else(|| candidates.iter().find(|c| acceptable(&c.2)));
        if let Some(&(x, anchor, b)) = spot {
            placed.push(b);
            let _ = writeln!(
                s,
                r##"<text x="{}" y="{}" text-anchor="{anchor}" font-size="11" fill="{ANN_COLOR}" stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke">{}</text>"##,
                n(x),
                n(b[3] - 3.0),
                esc(&text)
            );
        }
    }
    let _ = writeln!(s, "</g>");

    // Legend.
    let _ = writeln!(s, r#"<g class="legend">"#);
    let _ = writeln!(
        s,
        r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#ffffff" stroke="#bbbbbb"/>"##,
        n(legend_x),
        n(y0),
        n(width - legend_x - 8.0),
        n(legend_h)
    );
    let mut ly = y0 + 18.0;
    for (i, se) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let shape = (i / PALETTE.len()) % 3;
        let _ = writeln!(s, r#"<g class="legend-entry" stroke="{color}" fill="{color}">"#);
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke-width="2"/>"#,
            n(legend_x + 8.0),
            n(ly),
            n(legend_x + 36.0),
            n(ly)
        );
        marker(&mut s, shape, legend_x + 22.0, ly, "");
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" dy="0.35em" stroke="none" fill="#222222">{}</text>"##,
            n(legend_x + 44.0),
            n(ly),
            esc(&se.label)
        );
        let _ = writeln!(s, "</g>");
        ly += LEGEND_ROW;
    }
    for (i, a) in anns.iter().enumerate() {
        let dash = ANN_DASHES[i % ANN_DASHES.len()];
        let _ = writeln!(s, r#"<g class="legend-entry">"#);
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{ANN_COLOR}" stroke-width="1.5" stroke-dasharray="{dash}"/>"#,
            n(legend_x + 8.0),
            n(ly),
            n(legend_x + 36.0),
            n(ly)
        );
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" dy="0.35em" fill="#222222">{}</text>"##,
            n(legend_x + 44.0),
            n(ly),
            esc(&a.label)
        );
        let _ = writeln!(s, "</g>");
        ly += LEGEND_ROW;
    }
    let _ = writeln!(s, "</g>");
    s.push_str("</svg>");
    Ok(s)
}

/// Does the polyline (or one of its markers) come within 4 px of the box
/// `[left, top, right, bottom]`? Segments are sampled, which is plenty at this scale.
fn polyline_hits_box(points: &[(f64, f64)], b: &[f64; 4]) -> bool {
    let inside = |(x, y): (f64, f64)| x >= b[0] - 4.0 && x <= b[2] + 4.0 && y >= b[1] - 4.0 && y <= b[3] + 4.0;
    if points.iter().any(|&p| inside(p)) {
        return true;
    }
    points.windows(2).any(|w| {
        let ((xa, ya), (xb, yb)) = (w[0], w[1]);
        (1..64).any(|k| {
            let f = f64::from(k) / 64.0;
            inside((xa + (xb - xa) * f, ya + (yb - ya) * f))
        })
    })
}

/// Writes one marker (circle, square or triangle) centred on (x, y), with a tooltip.
pub(crate) fn marker(s: &mut String, shape: usize, x: f64, y: f64, tooltip: &str) {
    let tip = if tooltip.is_empty() { String::new() } else { format!("<title>{}</title>", esc(tooltip)) };
    let end = |tag: &str| {
        if tip.is_empty() { "/>".to_string() } else { format!(">{tip}</{tag}>") }
    };
    let _ = match shape {
        0 => writeln!(
            s,
            r##"<circle class="marker" cx="{}" cy="{}" r="4" stroke="#ffffff" stroke-width="1"{}"##,
            n(x),
            n(y),
            end("circle")
        ),
        1 => writeln!(
            s,
            r##"<rect class="marker" x="{}" y="{}" width="8" height="8" stroke="#ffffff" stroke-width="1"{}"##,
            n(x - 4.0),
            n(y - 4.0),
            end("rect")
        ),
        _ => writeln!(
            s,
            r##"<polygon class="marker" points="{},{} {},{} {},{}" stroke="#ffffff" stroke-width="1"{}"##,
            n(x),
            n(y - 5.0),
            n(x - 4.5),
            n(y + 4.0),
            n(x + 4.5),
            n(y + 4.0),
            end("polygon")
        ),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::row;

    fn fixture() -> Vec<ResultRow> {
        let mut rows =
            vec![row("vgg16", "ann", 0, 0, 93.5), row("vgg16", "ann", 0, 1, 93.7), row("resnet20", "ann", 0, 0, 91.2)];
        for (t, v) in [(1, 60.1), (2, 80.0), (4, 90.0), (8, 92.5), (32, 93.4)] {
            rows.push(row("vgg16", "qcfs", t, 0, v));
            rows.push(row("vgg16", "qcfs", t, 1, v + 0.4));
        }
        for (t, v) in [(1, 10.0), (2, 25.5), (4, 55.25), (8, 80.0), (32, 91.0)] {
            rows.push(row("vgg16", "tb", t, 0, v));
        }
        for (t, v) in [(4, 70.0), (8, 85.0), (32, 90.5)] {
            let mut r = row("resnet20", "qcfs", t, 0, v);
            r.variant = "alpha=0.5,n=2".into();
            rows.push(r);
        }
        // Ignored: per-layer row, other metric, non-finite value.
        let mut l = row("vgg16", "qcfs", 4, 0, 0.2);
        l.layer = "conv1".into();
        rows.push(l);
        let mut m = row("vgg16", "qcfs", 4, 0, 1e9);
        m.metric = "sops".into();
        rows.push(m);
        rows.push(row("vgg16", "qcfs", 16, 0, f64::NAN));
        rows
    }

    #[test]
    fn svg_structure() {
        let svg = accuracy_vs_t_svg("Accuracy vs T <CIFAR-10 & co>", &fixture()).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.ends_with("</svg>"));
        // One line path per series.
        assert_eq!(svg.matches(r#"<path class="line""#).count(), 3);
        assert_eq!(svg.matches(r#"<g class="series""#).count(), 3);
        for label in ["vgg16 / qcfs", "vgg16 / tb", "resnet20 / qcfs (alpha=0.5,n=2)", "ANN (vgg16)", "ANN (resnet20)"]
        {
            assert!(svg.contains(&format!(">{label}</text>")), "legend label {label} missing");
        }
        assert_eq!(svg.matches(r#"<g class="ann""#).count(), 2);
        assert_eq!(svg.matches(r#"<g class="legend-entry""#).count(), 5);
        assert!(svg.contains("stroke-dasharray"));
        // Seed average at T=1 for vgg16/qcfs is 60.30 (tooltip of the marker).
        assert!(svg.contains("T=1: 60.30%"));
        // Text is escaped; the NaN point at T=16 is dropped (no tick at 16).
        assert!(svg.contains("&lt;CIFAR-10 &amp; co&gt;"));
        assert!(!svg.contains(">16</text>"));
        for t in [1, 2, 4, 8, 32] {
            assert!(svg.contains(&format!(">{t}</text>")), "tick {t}");
        }
        assert!(!svg.contains("NaN"));
        assert_well_formed(&svg);
    }

    #[test]
    fn svg_is_deterministic() {
        let rows = fixture();
        assert_eq!(accuracy_vs_t_svg("t", &rows).unwrap(), accuracy_vs_t_svg("t", &rows).unwrap());
    }

    #[test]
    fn svg_edge_cases_do_not_panic() {
        assert!(matches!(accuracy_vs_t_svg("x", &[]), Err(ReportError::NoData(_))));
        // Only the ANN, a single T, out-of-range values.
        let svg = accuracy_vs_t_svg("x", &[row("m", "ann", 0, 0, 90.0)]).unwrap();
        assert_well_formed(&svg);
        let svg = accuracy_vs_t_svg("x", &[row("m", "q", 8, 0, 50.0)]).unwrap();
        assert_eq!(svg.matches(r#"<path class="line""#).count(), 1);
        let svg = accuracy_vs_t_svg("x", &[row("m", "q", 1, 0, -5.0), row("m", "q", u32::MAX, 0, 1e6)]).unwrap();
        assert_well_formed(&svg);
        // Many series cycle colours and marker shapes.
        let rows: Vec<ResultRow> = (0..25).map(|i| row("m", &format!("method{i}"), 4, 0, f64::from(i))).collect();
        let svg = accuracy_vs_t_svg("x", &rows).unwrap();
        assert_eq!(svg.matches(r#"<path class="line""#).count(), 25);
        assert!(svg.contains("<polygon class=\"marker\""));
        assert_well_formed(&svg);
    }

    /// Minimal XML well-formedness check: balanced tags, no stray `<`/`&`.
    fn assert_well_formed(svg: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let text = &rest[..start];
            assert!(!text.contains('>'), "stray > in {text:?}");
            for (i, _) in text.match_indices('&') {
                let ent = &text[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].iter().any(|e| ent.starts_with(e)),
                    "bad entity in {text:?}"
                );
            }
            let end = rest[start..].find('>').expect("unclosed tag") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "nested < in tag {tag:?}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap_or("");
                stack.push(name.to_string());
            }
            rest = &rest[end + 1..];
        }
        assert!(rest.trim().is_empty());
        assert!(stack.is_empty(), "unclosed {stack:?}");
    }

    #[test]
    fn omega_plot_draws_mean_min_max_per_method_on_a_free_axis() {
        let mut rows = Vec::new();
        for (t, mean, min, max) in [(1, 0.62, 0.5, 0.9), (2, 0.93, 0.8, 0.99), (4, 0.999, 0.99, 1.0)] {
            for (stat, v) in [("mean", mean), ("min", min), ("max", max)] {
                let mut r = row("pointnet", "dynamic", t, 0, v);
                r.metric = format!("omega_{stat}");
                rows.push(r.clone());
                // Per-layer rows and other metrics are not drawn.
                r.layer = "feat.relu".into();
                rows.push(r);
            }
        }
        rows.push(row("pointnet", "dynamic", 4, 0, 91.0));
        let svg = diagnostic_vs_t_svg("ω(t)", "omega", &rows).unwrap();
        assert_eq!(diagnostic_stems(&rows), vec!["omega".to_string()]);
        for stat in ["mean", "min", "max"] {
            assert!(svg.contains(&format!(r#"data-label="pointnet / dynamic ({stat})""#)), "{stat}");
        }
        assert_eq!(svg.matches(r#"<g class="series""#).count(), 3);
        assert!(svg.contains("omega(t) over samples") && svg.contains("T=1: 0.5000"));
        // The axis fits ω's range (ticks below 1 with decimals), not the 0–100 % scale.
        assert!(svg.contains(">0.5<") || svg.contains(">0.50<") || svg.contains(">0.45<"), "{svg}");
        assert!(!svg.contains(">100<"));
        assert!(matches!(diagnostic_vs_t_svg("x", "omega", &[row("m", "q", 8, 0, 50.0)]), Err(ReportError::NoData(_))));
    }

    /// Writes the fixture's SVG for a visual check:
    /// `REPORT_SVG_OUT=/tmp/x.svg cargo test write_sample -- --ignored`.
    #[test]
    #[ignore]
    fn write_sample() {
        let out = std::env::var("REPORT_SVG_OUT").unwrap_or_else(|_| "sample.svg".into());
        let svg = accuracy_vs_t_svg("Accuracy vs T (CIFAR-10)", &fixture()).unwrap();
        crate::report::write_atomic(std::path::Path::new(&out), svg.as_bytes()).unwrap();
    }
}
