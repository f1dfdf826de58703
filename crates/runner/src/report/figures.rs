//! Figures a spec asks for by name (`[table] figures = [...]`), each an x–y chart drawn from
//! the result rows: accuracy vs energy, accuracy vs mean exit step, the exit-step
//! distribution, and the per-layer search curves of Adaptive Calibration (Wang et al. 2024,
//! Figs. 3, 4, 8, 9).
//!
//! SVG structure as in [`crate::report::plot`]: `<g class="series" data-label="...">` per
//! series (a `<path class="line">` when its points are joined, one marker per point) and a
//! `<g class="legend">`. Deterministic: the same rows give the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::plot::{PALETTE, esc, marker, n, nice_step};
use crate::report::{ANN_METHOD, ReportError, ResultRow, push_unique};

/// Every figure name a spec may list, with what it draws.
pub const FIGURES: [(&str, &str); 19] = [
    ("accuracy_vs_energy", "accuracy vs energy per image (energy_mj), one point per T, a line per method"),
    (
        "accuracy_vs_exit_step",
        "accuracy vs mean exit step (early-exit readouts), a line per method through its variants and T",
    ),
    ("exit_step_distribution", "share of test images exiting at each step (exit_share), per method at its largest T"),
    (
        "exit_frontier",
        "accuracy vs mean exit step of replayed exit rules ([eval] exit_frontier): fixed T, uniform, fitted and averaged-output thresholds, the stable-prediction oracle, per method at its largest T (Wang et al. 2024, Fig. 9)",
    ),
    ("sensitivity_vs_phi", "per-layer sensitivity vs φ of the AdaFire φ search (Wang et al. 2024, Fig. 3a)"),
    ("sensitivity_vs_rho", "per-layer sensitivity vs threshold ratio ρ of SSC (Wang et al. 2024, Fig. 3b)"),
    ("pareto_frontier", "the φ search's Pareto frontier, spikes vs sensitivity, with the chosen point (Fig. 4)"),
    ("firing_rate_vs_t", "whole-network firing rate (spikes per neuron and step) vs T, a line per method"),
    ("additions_vs_t", "additions per image (SOPs + the analog first layer) vs T, a line per method"),
    (
        "sops_per_layer",
        "synaptic events per image caused by each layer's spikes, a line per method at its largest T (Liu et al. 2022, Fig. 7)",
    ),
    (
        "firing_rate_per_layer",
        "firing rate of each spiking layer, a line per method at its largest T (He et al. 2023, Fig. 5)",
    ),
    (
        "threshold_per_layer",
        "each spiking layer's threshold (mean over channels), a line per method (at its largest calibration T)",
    ),
    (
        "sin_ratio_per_layer",
        "SIN ratio of each layer (neurons with ANN activation ≤ 0 that spiked), a line per method at its largest T",
    ),
    ("sin_ratio_vs_t", "whole-network SIN ratio vs t, a line per method (He et al. 2023, Fig. 2 and 4)"),
    (
        "sin_ratio_per_layer_vs_t",
        "SIN ratio of each layer, a line per method and evaluated T (He et al. 2023, Fig. 2 and 4)",
    ),
    (
        "firing_rate_per_layer_vs_t",
        "firing rate of each spiking layer, a line per method and evaluated T (He et al. 2023, Fig. 5 at T = 16)",
    ),
    (
        "conversion_error_vs_ratio",
        "SpikeConverter: a layer's conversion error vs the first step's V_th/U_in,max (Liu et al. 2022, Fig. 5b)",
    ),
    ("conversion_error_vs_k", "SpikeConverter: a layer's smallest conversion error vs k, a line per T (Fig. 5a)"),
    (
        "detections",
        "detectors: the boxes of the first test images (ground truth dashed), the ANN's and each method's at its largest T",
    ),
];

/// Points of a recorded Pareto frontier kept in results.csv (see [`thin_frontiers`]).
pub const MAX_FRONTIER_POINTS: usize = 200;

/// A row that may hold a point of a recorded Pareto frontier: its frontier (rows of one
/// method, variant, seed and T share one), metric and layer.
pub trait FrontierRow {
    /// The frontier the row belongs to: (method, variant, seed, T).
    fn frontier(&self) -> (String, String, u64, u32);
    /// The row's metric.
    fn metric(&self) -> &str;
    /// The row's layer (`point <i>` for frontier points).
    fn layer(&self) -> &str;
}

impl FrontierRow for ResultRow {
    fn frontier(&self) -> (String, String, u64, u32) {
        (self.method.clone(), self.variant.clone(), self.seed, self.t)
    }
    fn metric(&self) -> &str {
        &self.metric
    }
    fn layer(&self) -> &str {
        &self.layer
    }
}

/// The measures of one stage: one variant and seed.
impl FrontierRow for crate::evaluate::Measure {
    fn frontier(&self) -> (String, String, u64, u32) {
        (self.method.clone(), String::new(), 0, self.t)
    }
    fn metric(&self) -> &str {
        &self.metric
    }
    fn layer(&self) -> &str {
        &self.layer
    }
}

/// Thins every recorded Pareto frontier (`pareto_energy` / `pareto_sensitivity` /
/// `pareto_chosen` rows, layer `point <i>`) of more than [`MAX_FRONTIER_POINTS`] points to that
/// many, evenly spaced by index, keeping both ends and the chosen point: a search over 19 layers
/// leaves thousands of frontier points, which would make results.csv (and a stage's cached
/// measures) megabytes long. Thinning twice gives the rows of thinning once.
pub fn thin_frontiers<R: FrontierRow>(rows: Vec<R>) -> Vec<R> {
    let index = |r: &R| r.layer().strip_prefix("point ").and_then(|i| i.parse::<usize>().ok());
    let mut sizes: BTreeMap<(String, String, u64, u32), usize> = BTreeMap::new();
    let mut chosen: BTreeMap<(String, String, u64, u32), usize> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.metric().starts_with("pareto_")) {
        if let Some(i) = index(r) {
            let n = sizes.entry(r.frontier()).or_default();
            *n = (*n).max(i + 1);
            if r.metric() == "pareto_chosen" {
                chosen.insert(r.frontier(), i);
            }
        }
    }
    rows.into_iter()
        .filter(|r| {
            if !r.metric().starts_with("pareto_") {
                return true;
            }
            let Some(i) = index(r) else { return true };
            let Some(&n) = sizes.get(&r.frontier()) else { return true };
            if n <= MAX_FRONTIER_POINTS {
                return true;
            }
            let stride = n.div_ceil(MAX_FRONTIER_POINTS - 2).max(1);
            i % stride == 0 || i + 1 == n || chosen.get(&r.frontier()) == Some(&i)
        })
        .collect()
}

/// Keeps a neuron model's per-step diagnostic rows (`<d>_mean`/`_min`/`_max`, with all three
/// present) per layer only at the evaluated T of their method (the T with an `accuracy`,
/// `map50` or `miou` row of the same method, variant and seed); the whole-network rows (empty
/// layer) keep every step, which is what `<d>_vs_t.svg` draws. Every step of every layer made
/// results.csv of a T = 256 MSAT run tens of megabytes (3 rows × 14 layers × 256 steps per
/// method). Thinning twice gives the rows of thinning once.
pub fn thin_diagnostics<R: FrontierRow>(rows: Vec<R>) -> Vec<R> {
    let stems = crate::report::plot::diagnostic_stems_of(rows.iter().map(|r| r.metric()));
    if stems.is_empty() {
        return rows;
    }
    let evaluated: std::collections::BTreeSet<(String, String, u64, u32)> = rows
        .iter()
        .filter(|r| crate::evaluate::PRIMARY_METRICS.contains(&r.metric()) && r.layer().is_empty())
        .map(|r| r.frontier())
        .collect();
    let is_diagnostic = |metric: &str| {
        ["_mean", "_min", "_max"]
            .iter()
            .any(|x| metric.strip_suffix(x).is_some_and(|stem| stems.iter().any(|s| s == stem)))
    };
    rows.into_iter()
        .filter(|r| r.layer().is_empty() || !is_diagnostic(r.metric()) || evaluated.contains(&r.frontier()))
        .collect()
}

/// The rows a stage stores and a table reports: [`thin_frontiers`], then [`thin_diagnostics`].
pub fn thin_rows<R: FrontierRow>(rows: Vec<R>) -> Vec<R> {
    thin_diagnostics(thin_frontiers(rows))
}

/// Whether `name` is a figure of [`FIGURES`].
pub fn is_figure(name: &str) -> bool {
    FIGURES.iter().any(|(f, _)| *f == name)
}

/// Draws figure `name` from `rows`. [`ReportError::NoData`] when the rows hold nothing to
/// draw; [`ReportError::InvalidSpec`] for an unknown name.
pub fn render_figure(name: &str, title: &str, rows: &[ResultRow]) -> Result<String, ReportError> {
    render_figure_with_images(name, title, rows, &[])
}

/// [`render_figure`], the `detections` panels of test image k drawn over `images[k]` (a
/// [`png_data_uri`]; images beyond the list are drawn as grey squares). Other figures ignore
/// `images`.
pub fn render_figure_with_images(
    name: &str,
    title: &str,
    rows: &[ResultRow],
    images: &[String],
) -> Result<String, ReportError> {
    if name == "detections" {
        return detection_panels(title, rows, images)
            .ok_or_else(|| ReportError::NoData(format!("no box rows for `{name}`")));
    }
    let chart = match name {
        "accuracy_vs_energy" => per_t_chart(title, rows, "energy_mj", "energy per image (mJ)", true),
        "accuracy_vs_exit_step" => per_t_chart(title, rows, "mean_exit_step", "mean exit step", false),
        "exit_step_distribution" => exit_distribution(title, rows),
        "exit_frontier" => exit_frontier(title, rows),
        "sensitivity_vs_phi" => {
            search_curves(title, rows, "sensitivity_phi", "φ (spikes per step at most)", SENSITIVITY)
        }
        "sensitivity_vs_rho" => search_curves(title, rows, "sensitivity_rho", "threshold ratio ρ", SENSITIVITY),
        "pareto_frontier" => pareto(title, rows),
        "firing_rate_vs_t" => metric_vs_t(title, rows, "firing_rate", "firing rate (spikes per neuron and step)"),
        "additions_vs_t" => metric_vs_t(title, rows, "additions", "additions per image"),
        "sops_per_layer" => per_layer(title, rows, "sops", "synaptic events (additions) per image"),
        "firing_rate_per_layer" => per_layer(title, rows, "firing_rate", "firing rate (spikes per neuron and step)"),
        "sin_ratio_per_layer" => per_layer(title, rows, "sin_ratio", "SIN ratio"),
        "threshold_per_layer" => per_layer(title, rows, "threshold", "threshold θ (mean over channels)"),
        "sin_ratio_vs_t" => metric_vs_t(title, rows, "sin_ratio", "SIN ratio (silent ANN neurons that spiked)"),
        "sin_ratio_per_layer_vs_t" => per_layer_every_t(title, rows, "sin_ratio", "SIN ratio"),
        "firing_rate_per_layer_vs_t" => {
            per_layer_every_t(title, rows, "firing_rate", "firing rate (spikes per neuron and step)")
        }
        "conversion_error_vs_ratio" => search_curves(
            title,
            rows,
            "conversion_error_ratio",
            "first step's threshold V_th/U_in,max",
            "E|U_in − U_out| / U_in,max",
        ),
        "conversion_error_vs_k" => {
            search_curves(title, rows, "conversion_error_k", "k", "smallest E|U_in − U_out| / U_in,max")
        }
        other => {
            let names: Vec<&str> = FIGURES.iter().map(|(f, _)| *f).collect();
            return Err(ReportError::InvalidSpec(format!("unknown figure `{other}` (figures: {})", names.join(", "))));
        }
    };
    let chart = chart.filter(|c| c.series.iter().any(|s| !s.points.is_empty()));
    chart.map(|c| c.svg()).ok_or_else(|| ReportError::NoData(format!("no rows to draw figure `{name}`")))
}

/// An image as a `data:image/png;base64,…` URI, for an SVG `<image href>`. `pixels`: planar
/// 8-bit `[channels, height, width]` with 1 (grey) or 3 (RGB) channels.
pub fn png_data_uri(pixels: &[u8], channels: usize, height: usize, width: usize) -> Result<String, ReportError> {
    let plane = height * width;
    if !matches!(channels, 1 | 3) || pixels.len() != channels * plane || plane == 0 {
        return Err(ReportError::InvalidSpec(format!(
            "an image of {} values is not [{channels}, {height}, {width}] with 1 or 3 channels",
            pixels.len()
        )));
    }
    let interleaved: Vec<u8> = (0..plane).flat_map(|p| (0..channels).map(move |c| pixels[c * plane + p])).collect();
    let colour = if channels == 3 { image::ExtendedColorType::Rgb8 } else { image::ExtendedColorType::L8 };
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &interleaved,
        width as u32,
        height as u32,
        colour,
    )
    .map_err(|e| ReportError::InvalidSpec(format!("encoding a figure image: {e}")))?;
    Ok(format!("data:image/png;base64,{}", base64(&png)))
}

/// Standard base64 (RFC 4648, with padding).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(v >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A box of the `detections` figure: corners in pixels, class, score.
struct DrawnBox {
    corners: [f64; 4],
    class: usize,
    score: f64,
}

/// The boxes of rows with layer `image <k> <kind> <j>` (the `box_*` metrics of
/// [`crate::task::Task::figure_rows`]), per image k.
fn boxes_of<'a>(rows: impl Iterator<Item = &'a ResultRow>, kind: &str) -> BTreeMap<usize, Vec<DrawnBox>> {
    let mut parts: BTreeMap<(usize, usize), [f64; 6]> = BTreeMap::new();
    for r in rows {
        let mut words = r.layer.split(' ');
        let (Some("image"), Some(k), Some(w), Some(j)) = (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        let (Ok(k), Ok(j)) = (k.parse::<usize>(), j.parse::<usize>()) else { continue };
        let Some(slot) = crate::task::BOX_METRICS.iter().position(|m| *m == r.metric) else { continue };
        if w == kind {
            parts.entry((k, j)).or_insert([f64::NAN; 6])[slot] = r.value;
        }
    }
    let mut out: BTreeMap<usize, Vec<DrawnBox>> = BTreeMap::new();
    for ((k, _), v) in parts {
        if v.iter().all(|x| x.is_finite()) {
            out.entry(k).or_default().push(DrawnBox {
                corners: [v[0], v[1], v[2], v[3]],
                class: v[4] as usize,
                score: v[5],
            });
        }
    }
    out
}

/// The `detections` figure: a grid of panels, a column per test image and a row per series
/// (the ANN, then each method at its largest T; series are those with `map50` rows), each panel the image's square
/// with its ground-truth boxes dashed and the series' boxes solid, coloured by class and
/// labelled `class score`, over the test image itself where `images` has it.
fn detection_panels(title: &str, rows: &[ResultRow], canvases: &[String]) -> Option<String> {
    let size = rows.iter().find(|r| r.metric == "image_size" && r.method == ANN_METHOD)?.value;
    let truth = boxes_of(rows.iter().filter(|r| r.method == ANN_METHOD), "truth");
    let mut series: Vec<(String, BTreeMap<usize, Vec<DrawnBox>>)> = Vec::new();
    let mut methods: Vec<(String, String)> = Vec::new();
    // Every scored series, boxes or not (a method may find none above the drawing score).
    for r in rows.iter().filter(|r| r.metric == "map50" && r.layer.is_empty()) {
        push_unique(&mut methods, (r.model.clone(), r.method.clone()));
    }
    for (model, method) in methods {
        let mine = || rows.iter().filter(|r| r.model == model && r.method == method);
        let t = mine().filter(|r| r.metric == "map50" && r.layer.is_empty()).map(|r| r.t).max().unwrap_or(0);
        let label = if method == ANN_METHOD { format!("{model} ANN") } else { format!("{model} {method}, T={t}") };
        series.push((label, boxes_of(mine().filter(|r| r.t == t), "box")));
    }
    let images = truth.keys().copied().max().map_or(0, |k| k + 1);
    if series.is_empty() || images == 0 {
        return None;
    }
    let (panel, gap, left, top) = (160.0, 12.0, 150.0, 48.0);
    let width = left + images as f64 * (panel + gap);
    let height = top + series.len() as f64 * (panel + gap) + 8.0;
    let scale = panel / size;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" font-family="sans-serif" font-size="11">"#,
        n(width),
        n(height),
        n(width),
        n(height)
    );
    let _ = write!(svg, r#"<text x="8" y="20" font-size="14">{}</text>"#, esc(title));
    // Each test image once, drawn under the boxes of every series' panel of it.
    if !canvases.is_empty() {
        svg.push_str("<defs>");
        for (k, uri) in canvases.iter().take(images).enumerate() {
            let _ = write!(
                svg,
                r#"<image id="canvas-{k}" width="{}" height="{}" preserveAspectRatio="none" style="image-rendering:pixelated" href="{uri}"/>"#,
                n(panel),
                n(panel)
            );
        }
        svg.push_str("</defs>");
    }
    for k in 0..images {
        let x = left + k as f64 * (panel + gap);
        let _ = write!(svg, r#"<text x="{}" y="{}">test image {k}</text>"#, n(x), n(top - 8.0));
    }
    for (row, (label, found)) in series.iter().enumerate() {
        let y0 = top + row as f64 * (panel + gap);
        let _ = write!(
            svg,
            r#"<g class="series" data-label="{}"><text x="8" y="{}">{}</text>"#,
            esc(label),
            n(y0 + panel / 2.0),
            esc(label)
        );
        for k in 0..images {
            let x0 = left + k as f64 * (panel + gap);
            let _ = write!(
                svg,
                r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#f4f4f4" stroke="#999"/>"##,
                n(x0),
                n(y0),
                n(panel),
                n(panel)
            );
            if k < canvases.len() {
                let _ = write!(svg, r##"<use class="canvas" href="#canvas-{k}" x="{}" y="{}"/>"##, n(x0), n(y0));
            }
            let draw = |svg: &mut String, b: &DrawnBox, dashed: bool| {
                let [x1, y1, x2, y2] = b.corners.map(|v| v.clamp(0.0, size) * scale);
                let colour = PALETTE[b.class % PALETTE.len()];
                let dash = if dashed { r#" stroke-dasharray="4 3""# } else { "" };
                let _ = write!(
                    svg,
                    r#"<rect class="{}" x="{}" y="{}" width="{}" height="{}" fill="none" stroke="{colour}" stroke-width="{}"{dash}/>"#,
                    if dashed { "truth" } else { "box" },
                    n(x0 + x1),
                    n(y0 + y1),
                    n(x2 - x1),
                    n(y2 - y1),
                    if dashed { 1 } else { 2 }
                );
                if !dashed {
                    let _ = write!(
                        svg,
                        r#"<text x="{}" y="{}" fill="{colour}">{} {:.2}</text>"#,
                        n(x0 + x1 + 2.0),
                        n(y0 + y1 + 11.0),
                        b.class,
                        b.score
                    );
                }
            };
            for b in truth.get(&k).into_iter().flatten() {
                draw(&mut svg, b, true);
            }
            for b in found.get(&k).into_iter().flatten() {
                draw(&mut svg, b, false);
            }
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    Some(svg)
}

struct Point {
    x: f64,
    y: f64,
    tip: String,
}

struct Line {
    label: String,
    points: Vec<Point>,
    /// Join the points (sorted by x) with a line.
    joined: bool,
}

struct Chart {
    title: String,
    x_label: String,
    y_label: String,
    series: Vec<Line>,
    log_x: bool,
}

fn series_label(r: &ResultRow) -> String {
    label_of(&r.model, &r.method, &r.variant)
}

fn label_of(model: &str, method: &str, variant: &str) -> String {
    if variant.is_empty() { format!("{model} / {method}") } else { format!("{model} / {method} ({variant})") }
}

/// Mean over seeds of whole-network `metric` per (model, method, variant, T).
fn whole_network(rows: &[ResultRow], metric: &str) -> BTreeMap<(String, String, String, u32), f64> {
    let mut sums: BTreeMap<(String, String, String, u32), (f64, usize)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.metric == metric && r.layer.is_empty() && r.value.is_finite()) {
        let e = sums.entry((r.model.clone(), r.method.clone(), r.variant.clone(), r.t)).or_default();
        e.0 += r.value;
        e.1 += 1;
    }
    sums.into_iter().map(|(k, (s, c))| (k, s / c as f64)).collect()
}

/// Accuracy against a per-T metric `x_metric`, one point per (variant, T): a line per
/// method and variant (`per_variant`), or per method through all its variants.
fn per_t_chart(title: &str, rows: &[ResultRow], x_metric: &str, x_label: &str, per_variant: bool) -> Option<Chart> {
    let xs = whole_network(rows, x_metric);
    let primary = super::plot::primary_metric_of(rows);
    let acc = whole_network(rows, primary);
    let mut order: Vec<String> = Vec::new();
    let mut lines: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.metric == x_metric && r.layer.is_empty() && r.t > 0) {
        let label = if per_variant { series_label(r) } else { label_of(&r.model, &r.method, "") };
        push_unique(&mut order, label);
    }
    for ((model, method, variant, t), x) in &xs {
        if *t == 0 && method != ANN_METHOD {
            continue;
        }
        let Some(y) = acc.get(&(model.clone(), method.clone(), variant.clone(), *t)) else { continue };
        let label = if per_variant { label_of(model, method, variant) } else { label_of(model, method, "") };
        let tip = if variant.is_empty() { format!("T={t}") } else { format!("{variant}, T={t}") };
        lines.entry(label.clone()).or_default().push(Point { x: *x, y: *y, tip });
        push_unique(&mut order, label);
    }
    let series = order
        .into_iter()
        .filter_map(|label| lines.remove(&label).map(|points| Line { label, points, joined: true }))
        .collect();
    Some(Chart {
        title: title.into(),
        x_label: x_label.into(),
        y_label: format!("{primary} (%)"),
        series,
        log_x: x_metric == "energy_mj",
    })
}

/// `frontier_accuracy` / `frontier_mean_step` rows (layer = the rule, `fixed t=…`,
/// `uniform α=…`, `fitted Δ=…`) of each method at its largest T: one line per method and
/// family, points sorted by mean step.
fn exit_frontier(title: &str, rows: &[ResultRow]) -> Option<Chart> {
    let mut largest: Vec<(String, u32)> = Vec::new();
    for r in rows.iter().filter(|r| r.metric == "frontier_accuracy") {
        let label = series_label(r);
        match largest.iter_mut().find(|(l, _)| *l == label) {
            Some(k) => k.1 = k.1.max(r.t),
            None => largest.push((label, r.t)),
        }
    }
    let mut series = Vec::new();
    for (label, t) in largest {
        let at = |metric: &str| -> BTreeMap<&str, f64> {
            rows.iter()
                .filter(|r| r.metric == metric && r.t == t && series_label(r) == label)
                .map(|r| (r.layer.as_str(), r.value))
                .collect()
        };
        let (accuracy, steps) = (at("frontier_accuracy"), at("frontier_mean_step"));
        for family in crate::exit_frontier::FAMILIES {
            let mut points: Vec<Point> = accuracy
                .iter()
                .filter(|(rule, _)| rule.starts_with(family))
                .filter_map(|(rule, &y)| {
                    let x = *steps.get(rule)?;
                    Some(Point { x, y, tip: format!("{rule}: {y:.2}% at {x:.2} steps") })
                })
                .collect();
            points.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
            if !points.is_empty() {
                series.push(Line { label: format!("{label}, {family} (T={t})"), points, joined: true });
            }
        }
    }
    Some(Chart {
        title: title.into(),
        x_label: "mean exit step".into(),
        y_label: "accuracy (%)".into(),
        series,
        log_x: false,
    })
}

/// `exit_share` rows (layer `t=<k>`) of each method at its largest T.
fn exit_distribution(title: &str, rows: &[ResultRow]) -> Option<Chart> {
    let shares: Vec<&ResultRow> = rows.iter().filter(|r| r.metric == "exit_share").collect();
    let mut keys: Vec<(String, u32)> = Vec::new();
    for r in &shares {
        let label = series_label(r);
        match keys.iter_mut().find(|(l, _)| *l == label) {
            Some(k) => k.1 = k.1.max(r.t),
            None => keys.push((label, r.t)),
        }
    }
    let series = keys
        .into_iter()
        .map(|(label, t)| {
            let points = shares
                .iter()
                .filter(|r| series_label(r) == label && r.t == t)
                .filter_map(|r| {
                    let step: f64 = r.layer.strip_prefix("t=")?.parse().ok()?;
                    Some(Point { x: step, y: 100.0 * r.value, tip: format!("step {step}: {:.1}%", 100.0 * r.value) })
                })
                .collect();
            Line { label: format!("{label}, T={t}"), points, joined: true }
        })
        .collect();
    Some(Chart {
        title: title.into(),
        x_label: "exit step".into(),
        y_label: "test images exiting (%)".into(),
        series,
        log_x: false,
    })
}

const SENSITIVITY: &str = "sensitivity (symmetric KL to the ANN)";

/// A whole-network per-T `metric` against T (log scale), a line per method and variant.
fn metric_vs_t(title: &str, rows: &[ResultRow], metric: &str, y_label: &str) -> Option<Chart> {
    let mut order: Vec<String> = Vec::new();
    let mut lines: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for ((model, method, variant, t), y) in whole_network(rows, metric) {
        if t == 0 {
            continue;
        }
        let label = label_of(&model, &method, &variant);
        lines.entry(label.clone()).or_default().push(Point { x: t as f64, y, tip: format!("T={t}: {y:.4}") });
        push_unique(&mut order, label);
    }
    let series = order
        .into_iter()
        .filter_map(|label| lines.remove(&label).map(|points| Line { label, points, joined: true }))
        .collect();
    Some(Chart { title: title.into(), x_label: "T".into(), y_label: y_label.into(), series, log_x: true })
}

/// Per-slot `metric` rows of every method (and variant) at its largest T against the slot's
/// position (1 = first slot), a line each.
fn per_layer(title: &str, rows: &[ResultRow], metric: &str, y_label: &str) -> Option<Chart> {
    let per_layer: Vec<&ResultRow> = rows.iter().filter(|r| r.metric == metric && !r.layer.is_empty()).collect();
    let mut last_t: BTreeMap<String, u32> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for r in &per_layer {
        let label = series_label(r);
        let t = last_t.entry(label.clone()).or_insert(0);
        *t = (*t).max(r.t);
        push_unique(&mut order, label);
    }
    let mut lines: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for r in &per_layer {
        let label = series_label(r);
        if Some(&r.t) != last_t.get(&label) || r.seed != per_layer[0].seed {
            continue;
        }
        let points = lines.entry(label).or_default();
        let x = points.len() as f64 + 1.0;
        points.push(Point { x, y: r.value, tip: format!("{} (T={}): {:.3e}", r.layer, r.t, r.value) });
    }
    let series = order
        .into_iter()
        .filter_map(|label| {
            let t = last_t[&label];
            lines.remove(&label).map(|points| Line { label: format!("{label}, T={t}"), points, joined: true })
        })
        .collect();
    Some(Chart {
        title: title.into(),
        x_label: "spiking layer (forward order)".into(),
        y_label: y_label.into(),
        series,
        log_x: false,
    })
}

/// Per-slot `metric` rows of every method (and variant) and every evaluated T against the
/// slot's position (1 = first slot), a line per method and T (first seed).
fn per_layer_every_t(title: &str, rows: &[ResultRow], metric: &str, y_label: &str) -> Option<Chart> {
    let per_layer: Vec<&ResultRow> = rows.iter().filter(|r| r.metric == metric && !r.layer.is_empty()).collect();
    let seed = per_layer.first()?.seed;
    let mut order: Vec<(String, u32)> = Vec::new();
    let mut lines: BTreeMap<(String, u32), Vec<Point>> = BTreeMap::new();
    for r in per_layer.iter().filter(|r| r.seed == seed && r.t > 0) {
        let key = (series_label(r), r.t);
        let points = lines.entry(key.clone()).or_default();
        let x = points.len() as f64 + 1.0;
        points.push(Point { x, y: r.value, tip: format!("{} (T={}): {:.3e}", r.layer, r.t, r.value) });
        push_unique(&mut order, key);
    }
    // Lines of one method together, in rising T.
    let labels: Vec<String> = order.iter().map(|(l, _)| l.clone()).fold(Vec::new(), |mut v, l| {
        push_unique(&mut v, l);
        v
    });
    order.sort_by_key(|(l, t)| (labels.iter().position(|x| x == l), *t));
    let series = order
        .into_iter()
        .filter_map(|key| {
            let label = format!("{}, T={}", key.0, key.1);
            lines.remove(&key).map(|points| Line { label, points, joined: true })
        })
        .collect();
    Some(Chart {
        title: title.into(),
        x_label: "spiking layer (forward order)".into(),
        y_label: y_label.into(),
        series,
        log_x: false,
    })
}

/// The first method (and variant) with `<prefix><candidate>` per-layer rows: a line per layer.
fn search_curves(title: &str, rows: &[ResultRow], prefix: &str, x_label: &str, y_label: &str) -> Option<Chart> {
    let first = rows.iter().find(|r| r.metric.starts_with(prefix) && !r.layer.is_empty())?;
    let (method, variant, seed) = (first.method.clone(), first.variant.clone(), first.seed);
    let mut layers: Vec<String> = Vec::new();
    let mut points: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.method == method && r.variant == variant && r.seed == seed && r.t == first.t) {
        let Some(x) = r.metric.strip_prefix(prefix).and_then(|k| k.parse::<f64>().ok()) else { continue };
        push_unique(&mut layers, r.layer.clone());
        points.entry(r.layer.clone()).or_default().push(Point {
            x,
            y: r.value,
            tip: format!("{}: {x} → {:.4}", r.layer, r.value),
        });
    }
    let series = layers
        .into_iter()
        .filter_map(|l| points.remove(&l).map(|p| Line { label: l, points: p, joined: true }))
        .collect();
    let which = if variant.is_empty() { method } else { format!("{method} ({variant})") };
    Some(Chart {
        title: format!("{title} — {which}"),
        x_label: x_label.into(),
        y_label: y_label.into(),
        series,
        log_x: false,
    })
}

/// `pareto_energy` / `pareto_sensitivity` rows (layer `point <i>`) of the first method that has
/// them, the chosen point (`pareto_chosen`) as a series of its own.
fn pareto(title: &str, rows: &[ResultRow]) -> Option<Chart> {
    let first = rows.iter().find(|r| r.metric == "pareto_energy")?;
    let mine: Vec<&ResultRow> = rows
        .iter()
        .filter(|r| r.method == first.method && r.variant == first.variant && r.seed == first.seed && r.t == first.t)
        .collect();
    let value =
        |metric: &str, point: &str| mine.iter().find(|r| r.metric == metric && r.layer == point).map(|r| r.value);
    let mut frontier = Vec::new();
    let mut chosen = Vec::new();
    for r in mine.iter().filter(|r| r.metric == "pareto_energy") {
        let Some(s) = value("pareto_sensitivity", &r.layer) else { continue };
        let p = || Point { x: r.value, y: s, tip: format!("{}: {:.0} spikes, S = {s:.4}", r.layer, r.value) };
        frontier.push(p());
        if value("pareto_chosen", &r.layer).is_some() {
            chosen.push(p());
        }
    }
    let which =
        if first.variant.is_empty() { first.method.clone() } else { format!("{} ({})", first.method, first.variant) };
    Some(Chart {
        title: format!("{title} — {which}"),
        x_label: "spikes per image of the chosen φ (Σ over layers)".into(),
        y_label: "Σ sensitivity".into(),
        series: vec![
            Line { label: "Pareto frontier".into(), points: frontier, joined: true },
            Line { label: "chosen".into(), points: chosen, joined: false },
        ],
        log_x: false,
    })
}

#[cfg(test)]
fn blank() -> ResultRow {
    ResultRow {
        experiment: String::new(),
        dataset: String::new(),
        model: String::new(),
        method: String::new(),
        variant: String::new(),
        t: 0,
        seed: 0,
        metric: String::new(),
        layer: String::new(),
        value: 0.0,
        n_images: 0,
        git_hash: String::new(),
        burn_version: String::new(),
        backend: String::new(),
        date: String::new(),
        stage_key: String::new(),
    }
}

const LEFT: f64 = 80.0;
const TOP: f64 = 56.0;
const W: f64 = 560.0;
const H: f64 = 360.0;
const CHAR_W: f64 = 7.0;
/// Joined series with more points than this are drawn without markers.
const MAX_MARKED_POINTS: usize = 60;

impl Chart {
    fn svg(mut self) -> String {
        for line in &mut self.series {
            line.points.retain(|p| p.x.is_finite() && p.y.is_finite() && (!self.log_x || p.x > 0.0));
            line.points.sort_by(|a, b| a.x.total_cmp(&b.x));
        }
        let fx = |x: f64| if self.log_x { x.log10() } else { x };
        let all: Vec<&Point> = self.series.iter().flat_map(|s| &s.points).collect();
        let range = |v: Vec<f64>| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let pad = ((hi - lo) * 0.06).max(hi.abs() * 0.01).max(1e-9);
            (lo - pad, hi + pad)
        };
        let (x_lo, x_hi) = range(all.iter().map(|p| fx(p.x)).collect());
        let (y_lo, y_hi) = range(all.iter().map(|p| p.y).collect());
        let x_of = |x: f64| LEFT + (fx(x) - x_lo) / (x_hi - x_lo) * W;
        let y_of = |y: f64| TOP + (y_hi - y) / (y_hi - y_lo) * H;
        let longest = self.series.iter().map(|s| s.label.chars().count()).max().unwrap_or(0) as f64;
        let legend_x = LEFT + W + 24.0;
        let width = (legend_x + 44.0 + longest * CHAR_W + 16.0).ceil();
        let legend_h = self.series.len() as f64 * 20.0 + 16.0;
        let height = (TOP + H + 64.0).max(TOP + legend_h + 16.0).ceil();

        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, "<title>{}</title>", esc(&self.title));
        let _ = writeln!(s, r##"<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>"##);
        let _ = writeln!(
            s,
            r#"<text class="title" x="16" y="30" font-size="15" font-weight="bold">{}</text>"#,
            esc(&self.title)
        );
        // Ticks: "nice" steps on the linear axes, decades (and 2, 5 ×) on a log x axis.
        let _ = writeln!(s, r##"<g class="grid" stroke="#dddddd" stroke-width="1">"##);
        let y_step = nice_step(y_hi - y_lo, 8.0);
        let y_ticks: Vec<f64> = ticks(y_lo, y_hi, y_step);
        let x_ticks: Vec<f64> = if self.log_x {
            let (a, b) = (x_lo.floor() as i32, x_hi.ceil() as i32);
            (a..=b)
                .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
                .filter(|v| (x_lo..=x_hi).contains(&v.log10()))
                .collect()
        } else {
            ticks(x_lo, x_hi, nice_step(x_hi - x_lo, 8.0))
        };
        for &v in &y_ticks {
            let _ = writeln!(s, r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}"/>"#, n(LEFT), n(LEFT + W), y = n(y_of(v)));
        }
        for &v in &x_ticks {
            let _ = writeln!(s, r#"<line x1="{x}" y1="{}" x2="{x}" y2="{}"/>"#, n(TOP), n(TOP + H), x = n(x_of(v)));
        }
        let _ = writeln!(s, "</g>");
        let _ = writeln!(
            s,
            r##"<rect class="frame" x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#333333"/>"##,
            n(LEFT),
            n(TOP),
            n(W),
            n(H)
        );
        let _ = writeln!(s, r##"<g class="y-ticks" text-anchor="end" fill="#333333">"##);
        for &v in &y_ticks {
            let _ =
                writeln!(s, r#"<text x="{}" y="{}" dy="0.35em">{}</text>"#, n(LEFT - 8.0), n(y_of(v)), tick_label(v));
        }
        let _ = writeln!(s, "</g>");
        let _ = writeln!(s, r##"<g class="x-ticks" text-anchor="middle" fill="#333333">"##);
        for &v in &x_ticks {
            let _ = writeln!(s, r#"<text x="{}" y="{}">{}</text>"#, n(x_of(v)), n(TOP + H + 18.0), tick_label(v));
        }
        let _ = writeln!(s, "</g>");
        let scale = if self.log_x { " (log scale)" } else { "" };
        let _ = writeln!(
            s,
            r#"<text class="x-label" x="{}" y="{}" text-anchor="middle">{}{scale}</text>"#,
            n(LEFT + W / 2.0),
            n(TOP + H + 44.0),
            esc(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text class="y-label" x="{x}" y="{y}" text-anchor="middle" transform="rotate(-90 {x} {y})">{}</text>"#,
            esc(&self.y_label),
            x = n(22.0),
            y = n(TOP + H / 2.0)
        );
        for (i, line) in self.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let shape = (i / PALETTE.len()) % 3;
            let _ =
                writeln!(s, r#"<g class="series" data-label="{}" stroke="{color}" fill="{color}">"#, esc(&line.label));
            if line.joined && line.points.len() > 1 {
                let d: Vec<String> = line
                    .points
                    .iter()
                    .enumerate()
                    .map(|(j, p)| format!("{}{} {}", if j == 0 { "M" } else { "L" }, n(x_of(p.x)), n(y_of(p.y))))
                    .collect();
                let _ = writeln!(s, r#"<path class="line" d="{}" fill="none" stroke-width="2"/>"#, d.join(" "));
            }
            // A dense curve (a long frontier) is drawn as its line alone: markers would hide it.
            if !line.joined || line.points.len() <= MAX_MARKED_POINTS {
                for p in &line.points {
                    marker(&mut s, if line.joined { shape } else { 2 }, x_of(p.x), y_of(p.y), &p.tip);
                }
            }
            let _ = writeln!(s, "</g>");
        }
        let _ = writeln!(s, r#"<g class="legend">"#);
        let _ = writeln!(
            s,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#ffffff" stroke="#bbbbbb"/>"##,
            n(legend_x),
            n(TOP),
            n(width - legend_x - 8.0),
            n(legend_h)
        );
        for (i, line) in self.series.iter().enumerate() {
            let ly = TOP + 18.0 + 20.0 * i as f64;
            let color = PALETTE[i % PALETTE.len()];
            let _ = writeln!(s, r#"<g class="legend-entry" stroke="{color}" fill="{color}">"#);
            if line.joined {
                let _ = writeln!(
                    s,
                    r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke-width="2"/>"#,
                    n(legend_x + 8.0),
                    n(ly),
                    n(legend_x + 36.0),
                    n(ly)
                );
            }
            marker(&mut s, if line.joined { (i / PALETTE.len()) % 3 } else { 2 }, legend_x + 22.0, ly, "");
            let _ = writeln!(
                s,
                r##"<text x="{}" y="{}" dy="0.35em" stroke="none" fill="#222222">{}</text>"##,
                n(legend_x + 44.0),
                n(ly),
                esc(&line.label)
            );
            let _ = writeln!(s, "</g>");
        }
        let _ = writeln!(s, "</g>");
        s.push_str("</svg>");
        s
    }
}

fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).take(200).map(|k| k as f64 * step).collect()
}

fn tick_label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        // Three significant digits at most: 1.25e6, 8e5.
        let s = format!("{v:.2e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((s.as_str(), "0"));
        format!("{}e{exponent}", mantissa.trim_end_matches('0').trim_end_matches('.'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str, t: u32, metric: &str, layer: &str, value: f64) -> ResultRow {
        ResultRow {
            method: method.into(),
            model: "m".into(),
            t,
            metric: metric.into(),
            layer: layer.into(),
            value,
            ..blank()
        }
    }

    fn series_count(svg: &str) -> usize {
        svg.matches(r#"<g class="series""#).count()
    }

    /// The six rows of one drawn box.
    fn box_rows(method: &str, t: u32, layer: &str, b: [f64; 6]) -> Vec<ResultRow> {
        crate::task::BOX_METRICS.iter().zip(b).map(|(m, v)| row(method, t, m, layer, v)).collect()
    }

    #[test]
    fn detections_draw_truth_and_each_series_boxes_per_image() {
        let mut rows = vec![row("ann", 0, "image_size", "", 64.0), row("ann", 0, "map50", "", 90.0)];
        rows.extend([8, 16].map(|t| row("m", t, "map50", "", 80.0)));
        rows.extend(box_rows("ann", 0, "image 0 truth 0", [8.0, 8.0, 24.0, 24.0, 1.0, 1.0]));
        rows.extend(box_rows("ann", 0, "image 1 truth 0", [0.0, 0.0, 32.0, 16.0, 0.0, 1.0]));
        rows.extend(box_rows("ann", 0, "image 0 box 0", [9.0, 8.0, 24.0, 25.0, 1.0, 0.9]));
        // A method with boxes at T = 8 and 16: only its largest T is drawn.
        rows.extend(box_rows("m", 8, "image 0 box 0", [0.0, 0.0, 4.0, 4.0, 0.0, 0.5]));
        rows.extend(box_rows("m", 16, "image 0 box 0", [8.0, 9.0, 23.0, 24.0, 1.0, 0.8]));
        rows.extend(box_rows("m", 16, "image 1 box 0", [1.0, 0.0, 31.0, 16.0, 0.0, 0.7]));
        let svg = render_figure("detections", "boxes", &rows).unwrap();
        assert_eq!(series_count(&svg), 2, "the ANN and m");
        assert!(svg.contains("m ANN") && svg.contains("m m, T=16") && !svg.contains("T=8"), "{svg}");
        // Ground truth in every series' panels: 2 images' boxes × 2 series.
        assert_eq!(svg.matches(r#"class="truth""#).count(), 4);
        assert_eq!(svg.matches(r#"class="box""#).count(), 3, "ANN 1 + m 2 at T = 16");
        assert!(svg.contains(">1 0.90<") && svg.contains(">0 0.70<"), "{svg}");
        assert_eq!(svg, render_figure("detections", "boxes", &rows).unwrap(), "deterministic");
        let no_boxes: Vec<ResultRow> = rows.iter().filter(|r| !r.metric.starts_with("box_")).cloned().collect();
        assert!(matches!(render_figure("detections", "boxes", &no_boxes), Err(ReportError::NoData(_))));
    }

    #[test]
    fn detection_panels_draw_their_test_image_under_the_boxes() {
        let mut rows = vec![row("ann", 0, "image_size", "", 4.0), row("ann", 0, "map50", "", 90.0)];
        rows.extend(box_rows("ann", 0, "image 0 truth 0", [1.0, 1.0, 3.0, 3.0, 0.0, 1.0]));
        rows.extend(box_rows("ann", 0, "image 1 truth 0", [0.0, 0.0, 2.0, 2.0, 0.0, 1.0]));
        // Only image 0 has a picture: image 1 stays a grey square.
        let uri = png_data_uri(&[200; 3 * 4 * 4], 3, 4, 4).unwrap();
        let svg = render_figure_with_images("detections", "t", &rows, std::slice::from_ref(&uri)).unwrap();
        // Defined once, drawn in its panel of each series (the ANN's here).
        assert_eq!(svg.matches("<image").count(), 1, "{svg}");
        assert_eq!(svg.matches(r##"<use class="canvas" href="#canvas-0""##).count(), 1, "{svg}");
        // The picture comes before (under) the boxes of its panel.
        let (image, truth) = (svg.find(r#"<use class="canvas""#).unwrap(), svg.find(r#"class="truth""#).unwrap());
        assert!(image < truth, "{svg}");
        assert!(!render_figure("detections", "t", &rows).unwrap().contains("<image"));
    }

    /// Decodes standard base64 (the test's own inverse of [`base64`]).
    fn unbase64(text: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let digits: Vec<u32> = text
            .bytes()
            .filter(|&b| b != b'=')
            .map(|b| ALPHABET.iter().position(|&a| a == b).unwrap() as u32)
            .collect();
        let mut out = Vec::new();
        for chunk in digits.chunks(4) {
            let v = chunk.iter().enumerate().fold(0u32, |v, (k, d)| v | d << (18 - 6 * k));
            out.extend((0..chunk.len() - 1).map(|k| (v >> (16 - 8 * k)) as u8));
        }
        out
    }

    #[test]
    fn images_become_png_data_uris_that_decode_to_the_same_pixels() {
        for (text, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(text.as_bytes()), encoded);
        }
        // Planar RGB [3, 2, 3]: red ramps along x, green along y, blue constant.
        let (h, w) = (2, 3);
        let mut pixels = vec![0u8; 3 * h * w];
        for y in 0..h {
            for x in 0..w {
                pixels[y * w + x] = (80 * x) as u8;
                pixels[h * w + y * w + x] = (100 * y) as u8;
                pixels[2 * h * w + y * w + x] = 7;
            }
        }
        let uri = png_data_uri(&pixels, 3, h, w).unwrap();
        let png = unbase64(uri.strip_prefix("data:image/png;base64,").unwrap());
        let decoded = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!((decoded.width(), decoded.height()), (3, 2));
        assert_eq!(decoded.get_pixel(2, 1).0, [160, 100, 7]);
        assert_eq!(decoded.get_pixel(1, 0).0, [80, 0, 7]);
        assert!(png_data_uri(&pixels, 2, h, w).is_err() && png_data_uri(&pixels[1..], 3, h, w).is_err());
    }

    #[test]
    fn accuracy_vs_energy_has_a_point_per_t_and_a_line_per_method() {
        let rows = vec![
            row("a", 4, "accuracy", "", 50.0),
            row("a", 4, "energy_mj", "", 0.1),
            row("a", 8, "accuracy", "", 70.0),
            row("a", 8, "energy_mj", "", 0.2),
            row("b", 8, "accuracy", "", 60.0),
            row("b", 8, "energy_mj", "", 0.05),
            row("b", 8, "sops", "", 1e6),
        ];
        let svg = render_figure("accuracy_vs_energy", "t", &rows).unwrap();
        assert_eq!(series_count(&svg), 2);
        assert_eq!(svg.matches(r#"class="marker""#).count(), 3 + 2, "3 points + 2 legend markers");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg, render_figure("accuracy_vs_energy", "t", &rows).unwrap());
    }

    #[test]
    fn search_curves_draw_one_line_per_layer_and_pareto_marks_the_choice() {
        let mut rows = Vec::new();
        for (l, layer) in ["conv1", "conv2"].iter().enumerate() {
            for k in 1..=3 {
                rows.push(row("adafire", 0, &format!("sensitivity_phi{k}"), layer, (l + 1) as f64 / k as f64));
            }
        }
        rows.push(row("adafire", 0, "pareto_energy", "point 0", 10.0));
        rows.push(row("adafire", 0, "pareto_sensitivity", "point 0", 2.0));
        rows.push(row("adafire", 0, "pareto_energy", "point 1", 20.0));
        rows.push(row("adafire", 0, "pareto_sensitivity", "point 1", 1.0));
        rows.push(row("adafire", 0, "pareto_chosen", "point 1", 1.0));
        let svg = render_figure("sensitivity_vs_phi", "t", &rows).unwrap();
        assert_eq!(series_count(&svg), 2);
        assert!(svg.contains(r#"data-label="conv2""#));
        let p = render_figure("pareto_frontier", "t", &rows).unwrap();
        assert!(p.contains(r#"data-label="chosen""#));
        assert!(matches!(render_figure("sensitivity_vs_rho", "t", &rows), Err(ReportError::NoData(_))));
        assert!(matches!(render_figure("nope", "t", &rows), Err(ReportError::InvalidSpec(_))));
    }

    #[test]
    fn metric_vs_t_and_conversion_error_curves_draw_a_line_each() {
        let mut rows = Vec::new();
        for (m, base) in [("spikeconverter", 0.2), ("spike-norm", 0.05)] {
            for t in [4u32, 16, 64] {
                rows.push(row(m, t, "firing_rate", "", base * t as f64 / 64.0));
            }
        }
        let svg = render_figure("firing_rate_vs_t", "t", &rows).unwrap();
        assert_eq!(series_count(&svg), 2);
        for k in ["1.00", "1.50", "2.00"] {
            rows.push(row("spikeconverter", 16, &format!("conversion_error_k{k}"), "T=4 (slot 1)", 0.1));
            rows.push(row("spikeconverter", 16, &format!("conversion_error_k{k}"), "T=8 (slot 1)", 0.05));
        }
        assert_eq!(series_count(&render_figure("conversion_error_vs_k", "t", &rows).unwrap()), 2);
        for (m, t) in [("spikeconverter", 16u32), ("spikeconverter", 8), ("spike-norm", 64)] {
            for l in ["a", "b", "c"] {
                rows.push(row(m, t, "sops", l, t as f64));
            }
        }
        let svg = render_figure("sops_per_layer", "t", &rows).unwrap();
        assert_eq!(series_count(&svg), 2, "one line per method, at its largest T");
        assert!(svg.contains("spikeconverter, T=16") && !svg.contains("T=8"));
        assert!(matches!(render_figure("conversion_error_vs_ratio", "t", &rows), Err(ReportError::NoData(_))));
        // Thresholds: at T = 0 for a method converted once, at each calibration T otherwise.
        for (m, t, theta) in [("robust-norm", 0u32, 1.0), ("calibration", 8, 0.5), ("calibration", 32, 0.7)] {
            for l in ["a", "b"] {
                rows.push(row(m, t, "threshold", l, theta));
            }
        }
        let svg = render_figure("threshold_per_layer", "t", &rows).unwrap();
        assert_eq!(series_count(&svg), 2, "one line per method");
        assert!(svg.contains("calibration, T=32") && !svg.contains("calibration, T=8"), "{svg}");
    }

    #[test]
    fn per_layer_vs_t_figures_draw_a_line_per_method_and_t_in_rising_t() {
        let mut rows = Vec::new();
        // Rows arrive with T falling for one method: lines still come out in rising T.
        for (m, t) in [("msat", 64u32), ("msat", 16), ("max-norm", 16), ("max-norm", 64)] {
            for (i, l) in ["a", "b", "c"].iter().enumerate() {
                rows.push(row(m, t, "sin_ratio", l, t as f64 / 100.0 + i as f64));
            }
        }
        rows.push(row("msat", 64, "sin_ratio", "", 0.5));
        let svg = render_figure("sin_ratio_per_layer_vs_t", "t", &rows).unwrap();
        assert_eq!(series_count(&svg), 4, "a line per method and T");
        let at =
            |label: &str| svg.find(&format!(r#"data-label="m / {label}""#)).unwrap_or_else(|| panic!("{label}: {svg}"));
        assert!(at("msat, T=16") < at("msat, T=64") && at("msat, T=64") < at("max-norm, T=16"));
        assert!(at("max-norm, T=16") < at("max-norm, T=64"));
        // Three layers per line: the whole-network row is not a layer.
        let line = &svg[at("msat, T=64")..];
        let line = &line[..line.find("</g>").unwrap()];
        assert_eq!(line.matches("(T=64)").count(), 3, "{line}");
        assert!(matches!(render_figure("firing_rate_per_layer_vs_t", "t", &rows), Err(ReportError::NoData(_))));
        rows.push(row("msat", 16, "firing_rate", "a", 0.1));
        assert_eq!(series_count(&render_figure("firing_rate_per_layer_vs_t", "t", &rows).unwrap()), 1);
    }

    #[test]
    fn per_layer_diagnostics_are_kept_at_the_evaluated_t_and_whole_network_ones_at_every_step() {
        let mut rows = Vec::new();
        for t in 1..=8u32 {
            for stat in ["mean", "min", "max"] {
                for layer in ["", "conv1", "conv2"] {
                    rows.push(row("msat", t, &format!("threshold_factor_{stat}"), layer, 0.5));
                }
            }
            // Not a diagnostic: no `_min`/`_max` siblings.
            rows.push(row("msat", t, "frontier_mean", "conv1", 1.0));
        }
        for t in [4u32, 8] {
            rows.push(row("msat", t, "accuracy", "", 80.0));
            rows.push(row("msat", t, "firing_rate", "conv1", 0.1));
        }
        // Another method evaluated at T = 2 only keeps its own T.
        rows.push(row("other", 2, "accuracy", "", 50.0));
        rows.push(row("other", 2, "threshold_factor_mean", "conv1", 0.4));
        rows.push(row("other", 4, "threshold_factor_mean", "conv1", 0.4));
        let thin = thin_diagnostics(rows.clone());
        let count = |metric: &str, layer: &str| thin.iter().filter(|r| r.metric == metric && r.layer == layer).count();
        assert_eq!(count("threshold_factor_mean", ""), 8, "whole-network rows: every step");
        assert_eq!(count("threshold_factor_max", "conv2"), 2, "per layer: T = 4 and 8");
        assert_eq!(count("frontier_mean", "conv1"), 8);
        assert_eq!(count("firing_rate", "conv1"), 2);
        let other: Vec<u32> = thin.iter().filter(|r| r.method == "other" && !r.layer.is_empty()).map(|r| r.t).collect();
        assert_eq!(other, vec![2]);
        assert_eq!(thin.len(), rows.len() - 2 * 6 * 3 - 1);
        assert_eq!(thin_diagnostics(thin.clone()), thin, "thinning twice thins nothing more");
    }

    #[test]
    fn long_frontiers_are_thinned_keeping_the_ends_and_the_choice() {
        let mut rows = Vec::new();
        for i in 0..1000 {
            rows.push(row("a", 0, "pareto_energy", &format!("point {i}"), i as f64));
            rows.push(row("a", 0, "pareto_sensitivity", &format!("point {i}"), 1000.0 - i as f64));
        }
        rows.push(row("a", 0, "pareto_chosen", "point 777", 1.0));
        rows.push(row("b", 0, "pareto_energy", "point 0", 1.0));
        rows.push(row("a", 8, "accuracy", "", 90.0));
        let thin = thin_frontiers(rows);
        assert_eq!(thin_frontiers(thin.clone()), thin, "thinning twice thins nothing more");
        let energy: Vec<&ResultRow> = thin.iter().filter(|r| r.method == "a" && r.metric == "pareto_energy").collect();
        assert!(energy.len() <= MAX_FRONTIER_POINTS && energy.len() > MAX_FRONTIER_POINTS / 2, "{}", energy.len());
        for p in ["point 0", "point 999", "point 777"] {
            assert!(energy.iter().any(|r| r.layer == p), "{p} dropped");
            assert!(thin.iter().any(|r| r.metric == "pareto_sensitivity" && r.layer == p));
        }
        assert!(thin.iter().any(|r| r.metric == "pareto_chosen"));
        assert!(thin.iter().any(|r| r.method == "b") && thin.iter().any(|r| r.metric == "accuracy"));
    }

    #[test]
    fn tick_labels_keep_three_significant_digits() {
        assert_eq!(tick_label(1.25e6), "1.25e6");
        assert_eq!(tick_label(8e5), "8e5");
        assert_eq!(tick_label(0.05), "0.05");
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(120.0), "120");
    }

    #[test]
    fn exit_distribution_reads_the_steps_from_the_layer_column() {
        let rows = vec![
            row("iat", 8, "exit_share", "t=1", 0.5),
            row("iat", 8, "exit_share", "t=2", 0.3),
            row("iat", 8, "exit_share", "t=8", 0.2),
            row("iat", 4, "exit_share", "t=1", 0.9),
        ];
        let svg = render_figure("exit_step_distribution", "t", &rows).unwrap();
        assert_eq!(series_count(&svg), 1, "only the largest T");
        assert!(svg.contains("step 2: 30.0%"));
    }
}
