//! Paper-style Markdown tables.
//!
//! [`render_markdown`] pivots long-form [`ResultRow`]s into one table row per row key
//! (the values of [`TableSpec::rows`]) and one column group per timestep `T`, with the
//! ANN's own value beside each row and, when the spec carries numbers reported in the
//! paper, `paper` and `Δ` (ours − paper) columns.
//!
//! # Number formatting
//! * Percent metrics (`accuracy`, any metric ending in `accuracy` or `_pct`): two decimals.
//! * Every other metric: values with magnitude ≥ 10⁵ or < 10⁻³ in scientific notation with
//!   four significant digits (`1.235e6`, `2.500e-4`), the rest with four significant
//!   digits but at least integer precision (`12.35`, `0.1234`, `51234`); zero is `0`.
//! * Several seeds: `mean ± std` (sample standard deviation over seeds, after averaging
//!   duplicate rows of the same seed); one seed: the value. Missing: `—`.
//!
//! The output depends only on the inputs' order and content (no hash-map iteration).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::report::{ANN_METHOD, ReportError, ResultRow, SeedStats, push_unique, seed_stats};

/// Placeholder for a missing value.
const MISSING: &str = "—";
/// Marker for table rows that only have paper values.
const PAPER_ONLY_MARK: &str = "†";

/// A value reported in the paper, shown beside ours.
///
/// `model`, `dataset` and `variant` restrict which table rows the value applies to;
/// `None` matches every row. A value whose `method` has no measured rows gets a row of
/// its own. Use `method = "ann"`, `T = 0` for the paper's ANN accuracy.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperValue {
    /// Method name as used in our rows (or a label for methods we do not run).
    pub method: String,
    /// Model the value is for (`None`: any).
    #[serde(default)]
    pub model: Option<String>,
    /// Data set the value is for (`None`: any).
    #[serde(default)]
    pub dataset: Option<String>,
    /// Sweep variant the value is for (`None`: any).
    #[serde(default)]
    pub variant: Option<String>,
    /// Timesteps (0 for the ANN).
    #[serde(rename = "T")]
    pub t: u32,
    /// The reported value, in the unit of the table's metric.
    pub value: f64,
    /// Where the number comes from (e.g. "Table 2 of Bu et al. 2022").
    #[serde(default)]
    pub source: Option<String>,
    /// The accuracy of the ANN this value was converted from, when it is not the table's
    /// paper ANN (a row the paper quotes from another paper, with that paper's ANN): the
    /// derived `loss` and `rate` use it instead of the `method = "ann"` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ann: Option<f64>,
}

/// What the table looks like (comes from the experiment spec's `[table]` section).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// Heading of the table; empty: the experiment name.
    #[serde(default)]
    pub title: String,
    /// Fields that make a row: any of "dataset","model","method","variant". Default ["model","method"].
    #[serde(default = "default_rows")]
    pub rows: Vec<String>,
    /// Metric shown in the cells. Default "accuracy".
    #[serde(default = "default_metric")]
    pub metric: String,
    /// Which T columns to show (empty = every T present in the rows, ascending).
    #[serde(default)]
    pub timesteps: Vec<u32>,
    /// Reported values from the paper, shown beside ours with a Δ (ours − paper) column.
    #[serde(default)]
    pub paper: Vec<PaperValue>,
    /// Free text lines printed under the table (recipe, notes).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Metrics of a second, summary table (one column per metric, e.g. `sop90`,
    /// `fps_per_watt90`; see [`render_summary`]). Empty: no summary table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub summary: Vec<String>,
    /// Further metrics rendered as tables of the same shape under the main one, e.g.
    /// `["loss", "rate"]` (paper values for them are derived from the accuracy ones, see
    /// [`derived_paper_values`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
    /// Figures drawn beside the table, each `<name>.svg` (see [`crate::report::FIGURES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub figures: Vec<String>,
    /// The metrics whose tables show the paper values (empty: the main metric and every
    /// `also` one). Paper values from another data set than ours compare only as losses:
    /// `paper_for = ["loss"]` keeps their accuracies out of the accuracy table's Δ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paper_for: Vec<String>,
}

impl TableSpec {
    /// Whether the table of `metric` shows the paper values ([`Self::paper_for`]).
    pub fn shows_paper_for(&self, metric: &str) -> bool {
        self.paper_for.is_empty() || self.paper_for.iter().any(|m| m == metric)
    }
}

/// Paper values of a derived metric from the paper's accuracies: `loss` = ANN − SNN and
/// `rate` = 100 · SNN / ANN, pairing each SNN value with the paper ANN value of the same
/// model/dataset/variant, or with the value's own `ann` when it has one. Other metrics: none.
pub fn derived_paper_values(paper: &[PaperValue], metric: &str) -> Vec<PaperValue> {
    let anns: Vec<&PaperValue> = paper.iter().filter(|p| p.method == ANN_METHOD).collect();
    paper
        .iter()
        .filter(|p| p.method != ANN_METHOD)
        .filter_map(|p| {
            let ann = p.ann.or_else(|| {
                anns.iter()
                    .find(|a| a.model == p.model && a.dataset == p.dataset && a.variant == p.variant)
                    .map(|a| a.value)
            })?;
            let value = match metric {
                "loss" => ann - p.value,
                "rate" if ann > 0.0 => 100.0 * p.value / ann,
                _ => return None,
            };
            Some(PaperValue { value, ann: None, ..p.clone() })
        })
        .collect()
}

fn default_rows() -> Vec<String> {
    vec!["model".to_string(), "method".to_string()]
}

fn default_metric() -> String {
    "accuracy".to_string()
}

impl Default for TableSpec {
    /// The same defaults serde applies to a missing field.
    fn default() -> Self {
        TableSpec {
            title: String::new(),
            rows: default_rows(),
            metric: default_metric(),
            timesteps: Vec::new(),
            paper: Vec::new(),
            notes: Vec::new(),
            summary: Vec::new(),
            also: Vec::new(),
            figures: Vec::new(),
            paper_for: Vec::new(),
        }
    }
}

/// Field names allowed in [`TableSpec::rows`].
pub const ROW_FIELDS: [&str; 4] = ["dataset", "model", "method", "variant"];

impl TableSpec {
    /// Checks the spec for mistakes that [`render_markdown`] would otherwise only report
    /// as warnings inside the table: unknown or repeated row fields, an empty metric,
    /// non-finite paper values and paper ANN values with `T != 0`.
    pub fn validate(&self) -> Result<(), ReportError> {
        let mut seen: Vec<&str> = Vec::new();
        for f in &self.rows {
            if Field::parse(f).is_none() {
                return Err(ReportError::InvalidSpec(format!(
                    "unknown row field `{f}` (allowed: {})",
                    ROW_FIELDS.join(", ")
                )));
            }
            if seen.contains(&f.as_str()) {
                return Err(ReportError::InvalidSpec(format!("row field `{f}` repeated")));
            }
            seen.push(f);
        }
        if self.metric.trim().is_empty() {
            return Err(ReportError::InvalidSpec("empty metric".into()));
        }
        if let Some(f) = self.figures.iter().find(|f| !crate::report::is_figure(f)) {
            let names: Vec<&str> = crate::report::FIGURES.iter().map(|(n, _)| *n).collect();
            return Err(ReportError::InvalidSpec(format!("unknown figure `{f}` (figures: {})", names.join(", "))));
        }
        if let Some(m) = self.paper_for.iter().find(|m| **m != self.metric && !self.also.contains(m)) {
            return Err(ReportError::InvalidSpec(format!(
                "paper_for names `{m}`, which is neither the table's metric (`{}`) nor in `also`",
                self.metric
            )));
        }
        for p in &self.paper {
            if !p.value.is_finite() {
                return Err(ReportError::InvalidSpec(format!(
                    "paper value for `{}` at T={} is not finite",
                    p.method, p.t
                )));
            }
            if p.method == ANN_METHOD && p.t != 0 {
                return Err(ReportError::InvalidSpec(format!("paper ANN value must have T = 0, got T={}", p.t)));
            }
            if p.ann.is_some_and(|a| !a.is_finite()) || (p.method == ANN_METHOD && p.ann.is_some()) {
                return Err(ReportError::InvalidSpec(format!(
                    "paper value for `{}` at T={}: `ann` must be a finite accuracy, on a converted method's value",
                    p.method, p.t
                )));
            }
        }
        Ok(())
    }
}

/// A field that can make up a row key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Dataset,
    Model,
    Method,
    Variant,
}

const ALL_FIELDS: [Field; 4] = [Field::Dataset, Field::Model, Field::Method, Field::Variant];

impl Field {
    fn parse(s: &str) -> Option<Field> {
        match s {
            "dataset" => Some(Field::Dataset),
            "model" => Some(Field::Model),
            "method" => Some(Field::Method),
            "variant" => Some(Field::Variant),
            _ => None,
        }
    }

    fn header(self) -> &'static str {
        match self {
            Field::Dataset => "Dataset",
            Field::Model => "Model",
            Field::Method => "Method",
            Field::Variant => "Variant",
        }
    }

    fn idx(self) -> usize {
        self as usize
    }

    fn of_row(self, r: &ResultRow) -> &str {
        match self {
            Field::Dataset => &r.dataset,
            Field::Model => &r.model,
            Field::Method => &r.method,
            Field::Variant => &r.variant,
        }
    }

    fn of_paper(self, p: &PaperValue) -> Option<&str> {
        match self {
            Field::Dataset => p.dataset.as_deref(),
            Field::Model => p.model.as_deref(),
            Field::Method => Some(&p.method),
            Field::Variant => p.variant.as_deref(),
        }
    }
}

/// One row of the pivoted table.
struct TableRow {
    /// Values of the row fields, in spec order.
    key: Vec<String>,
    /// Distinct values of every field (indexed by [`Field::idx`]) among the row's measured
    /// rows; for a paper-only row the paper value's given fields (empty = unknown).
    attrs: [Vec<String>; 4],
    /// Indices into the measured (non-ANN) rows.
    measured: Vec<usize>,
    /// For a paper-only row, indices into `spec.paper`.
    paper_only: Option<Vec<usize>>,
}

impl TableRow {
    fn label(&self) -> String {
        let parts: Vec<&str> = self.key.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
        if parts.is_empty() { "(all)".to_string() } else { parts.join(" / ") }
    }
}

/// Does the paper value apply to a row with these attributes? `None` fields and unknown
/// attributes match anything.
fn paper_matches(p: &PaperValue, attrs: &[Vec<String>; 4], with_method: bool) -> bool {
    ALL_FIELDS.iter().all(|&f| {
        if f == Field::Method && !with_method {
            return true;
        }
        match f.of_paper(p) {
            None => true,
            Some(v) => {
                let a = &attrs[f.idx()];
                a.is_empty() || a.iter().any(|x| x == v)
            }
        }
    })
}

/// Metrics in percent, shown with two decimals: accuracies, mAP and mIoUs (`miou_<category>`
/// too), and `*_pct`.
fn is_percent(metric: &str) -> bool {
    metric.ends_with("accuracy")
        || metric.ends_with("_pct")
        || metric.starts_with("miou")
        || matches!(metric, "map50" | "map50_95" | "instance_miou")
}

/// Removes the sign of a negative zero such as `-0.00`.
fn strip_negative_zero(s: String) -> String {
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// Formats one number of `metric` (see the module docs).
fn fmt_num(metric: &str, v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if is_percent(metric) {
        return strip_negative_zero(format!("{v:.2}"));
    }
    if v == 0.0 {
        return "0".to_string();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.3e}");
    }
    let magnitude = a.log10().floor() as i32;
    let decimals = (3 - magnitude).clamp(0, 6) as usize;
    strip_negative_zero(format!("{v:.decimals$}"))
}

/// `mean ± std` for several seeds, the plain value for one.
fn fmt_stats(metric: &str, s: &SeedStats) -> String {
    match s.std {
        Some(std) => format!("{} ± {}", fmt_num(metric, s.mean), fmt_num(metric, std)),
        None => fmt_num(metric, s.mean),
    }
}

/// Signed difference, e.g. `+0.40`, `-0.80`, `0.00`.
fn fmt_delta(metric: &str, d: f64) -> String {
    let body = fmt_num(metric, d.abs());
    if !d.is_finite() {
        return fmt_num(metric, d);
    }
    if body.chars().all(|c| c == '0' || c == '.') {
        body
    } else if d > 0.0 {
        format!("+{body}")
    } else {
        format!("-{body}")
    }
}

/// Makes text safe for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Renders a padded GitHub-flavoured Markdown table.
fn render_table(header: &[String], right: &[bool], body: &[Vec<String>]) -> String {
    let ncol = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count().max(3)).collect();
    for row in body {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let pad = |s: &str, w: usize, r: bool| {
        let fill = " ".repeat(w.saturating_sub(s.chars().count()));
        if r { format!("{fill}{s}") } else { format!("{s}{fill}") }
    };
    let line = |cells: &[String]| {
        let parts: Vec<String> = (0..ncol)
            .map(|i| {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                pad(c, width[i], right.get(i).copied().unwrap_or(false))
            })
            .collect();
        format!("| {} |\n", parts.join(" | "))
    };
    let mut out = line(header);
    let sep: Vec<String> = (0..ncol)
        .map(|i| {
            if right.get(i).copied().unwrap_or(false) {
                format!("{}:", "-".repeat(width[i] - 1))
            } else {
                "-".repeat(width[i])
            }
        })
        .collect();
    let _ = writeln!(out, "| {} |", sep.join(" | "));
    for row in body {
        out.push_str(&line(row));
    }
    out
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { "unknown" } else { s }
}

fn join_nums<T: ToString>(v: impl IntoIterator<Item = T>) -> String {
    v.into_iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

/// Renders the paper-style table for `spec` from `rows` (see the module docs).
///
/// * One table row per distinct row key among the non-ANN rows of `spec.metric` with an
///   empty `layer`, in first-appearance order, followed by rows for paper-only methods
///   (marked `†`, with `—` in our columns and a source note under the table).
/// * `ANN`: the seed-averaged ANN value of the same dataset/model/variant (ANN rows with
///   an empty variant are used when no ANN row has the row's variant). `ANN paper`: a
///   paper value with method `ann`, `T = 0`.
/// * Per `T`: our value, and `paper` / `Δ` (ours − paper, from the mean) when any paper
///   value exists for that `T`.
/// * Above the table: data sets, number of test images (a loud warning when ANN and SNN
///   differ), seeds and provenance (from the first input row); problems found in the
///   spec or the data are listed as warnings instead of failing.
pub fn render_markdown(spec: &TableSpec, rows: &[ResultRow]) -> String {
    let metric = spec.metric.as_str();
    let mut warnings: Vec<String> = Vec::new();

    // Row fields.
    let mut fields: Vec<Field> = Vec::new();
    for f in &spec.rows {
        match Field::parse(f) {
            Some(field) => push_unique(&mut fields, field),
            None => {
                warnings.push(format!("unknown row field `{}` ignored (allowed: {})", cell(f), ROW_FIELDS.join(", ")))
            }
        }
    }
    if fields.is_empty() {
        warnings.push("no usable row fields; using model, method".into());
        fields = vec![Field::Model, Field::Method];
    }

    // Whole-network rows of the metric, split into ANN and measured SNN rows.
    let selected: Vec<&ResultRow> = rows.iter().filter(|r| r.metric == metric && r.layer.is_empty()).collect();
    let ann: Vec<&ResultRow> = selected.iter().copied().filter(|r| r.method == ANN_METHOD).collect();
    let snn: Vec<&ResultRow> = selected.iter().copied().filter(|r| r.method != ANN_METHOD).collect();

    // Measured table rows.
    let mut table: Vec<TableRow> = Vec::new();
    let mut index: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for (i, r) in snn.iter().enumerate() {
        let key: Vec<String> = fields.iter().map(|f| f.of_row(r).to_string()).collect();
        let ti = *index.entry(key.clone()).or_insert_with(|| {
            table.push(TableRow { key, attrs: Default::default(), measured: Vec::new(), paper_only: None });
            table.len() - 1
        });
        let tr = &mut table[ti];
        tr.measured.push(i);
        for f in ALL_FIELDS {
            push_unique(&mut tr.attrs[f.idx()], f.of_row(r).to_string());
        }
    }
    let n_measured = table.len();

    // Paper values: ANN ones, ones matching measured rows, and paper-only rows.
    let mut ann_paper: Vec<usize> = Vec::new();
    for (pi, p) in spec.paper.iter().enumerate() {
        if p.method == ANN_METHOD {
            if p.t == 0 {
                ann_paper.push(pi);
            } else {
                warnings.push(format!("paper ANN value with T={} ignored (ANN values use T=0)", p.t));
            }
            continue;
        }
        if table[..n_measured].iter().any(|tr| paper_matches(p, &tr.attrs, true)) {
            continue;
        }
        let key: Vec<String> = fields.iter().map(|f| f.of_paper(p).unwrap_or("").to_string()).collect();
        if let Some(tr) = table[n_measured..].iter_mut().find(|tr| tr.key == key) {
            if let Some(list) = tr.paper_only.as_mut() {
                list.push(pi);
            }
        } else {
            let mut attrs: [Vec<String>; 4] = Default::default();
            for f in ALL_FIELDS {
                if let Some(v) = f.of_paper(p) {
                    attrs[f.idx()].push(v.to_string());
                }
            }
            table.push(TableRow { key, attrs, measured: Vec::new(), paper_only: Some(vec![pi]) });
        }
    }

    // T columns.
    let mut timesteps: Vec<u32> = Vec::new();
    if spec.timesteps.is_empty() {
        let mut ts: BTreeSet<u32> = snn.iter().map(|r| r.t).collect();
        if ts.is_empty() {
            ts = spec.paper.iter().filter(|p| p.method != ANN_METHOD).map(|p| p.t).collect();
        }
        timesteps.extend(ts);
    } else {
        for &t in &spec.timesteps {
            push_unique(&mut timesteps, t);
        }
    }
    for p in spec.paper.iter().filter(|p| p.method != ANN_METHOD) {
        if !timesteps.contains(&p.t) {
            warnings.push(format!(
                "paper value for `{}` at T={} not shown (no T={} column)",
                cell(&p.method),
                p.t,
                p.t
            ));
        }
    }

    // Per-row values.
    struct RowValues {
        ann: Option<SeedStats>,
        ann_rows: BTreeSet<usize>,
        ann_paper: Option<usize>,
        ours: Vec<Option<SeedStats>>,
        paper: Vec<Option<usize>>,
    }
    let mut values: Vec<RowValues> = Vec::new();
    for tr in &table {
        let label = tr.label();
        let is_paper_only = tr.paper_only.is_some();
        // ANN rows of the same dataset/model/variant.
        let mut ann_rows: BTreeSet<usize> = BTreeSet::new();
        let mut combos: Vec<[&str; 4]> = Vec::new();
        for &mi in &tr.measured {
            let r = snn[mi];
            push_unique(&mut combos, [r.dataset.as_str(), r.model.as_str(), r.method.as_str(), r.variant.as_str()]);
        }
        let mut triples: Vec<[&str; 3]> = Vec::new();
        for c in &combos {
            push_unique(&mut triples, [c[0], c[1], c[3]]);
        }
        for [d, m, v] in &triples {
            let matching = |var: &str| -> Vec<usize> {
                (0..ann.len())
                    .filter(|&i| ann[i].dataset == *d && ann[i].model == *m && ann[i].variant == var)
                    .collect()
            };
            let mut found = matching(v);
            if found.is_empty() {
                found = matching("");
            }
            ann_rows.extend(found);
        }
        if combos.len() > 1 {
            warnings.push(format!(
                "row `{}` combines {} dataset/model/method/variant combinations; its cells average over them",
                cell(&label),
                combos.len()
            ));
        }
        let ann_stats = seed_stats(ann_rows.iter().map(|&i| ann[i]));
        let ann_paper_hit = {
            let hits: Vec<usize> =
                ann_paper.iter().copied().filter(|&pi| paper_matches(&spec.paper[pi], &tr.attrs, false)).collect();
            if hits.len() > 1 {
                warnings.push(format!("several paper ANN values match row `{}`; using the first", cell(&label)));
            }
            hits.first().copied()
        };
        let mut ours = Vec::new();
        let mut paper = Vec::new();
        for &t in &timesteps {
            ours.push(if is_paper_only {
                None
            } else {
                seed_stats(tr.measured.iter().map(|&mi| snn[mi]).filter(|r| r.t == t))
            });
            let hits: Vec<usize> = match &tr.paper_only {
                Some(list) => list.iter().copied().filter(|&pi| spec.paper[pi].t == t).collect(),
                None => (0..spec.paper.len())
                    .filter(|&pi| {
                        let p = &spec.paper[pi];
                        p.method != ANN_METHOD && p.t == t && paper_matches(p, &tr.attrs, true)
                    })
                    .collect(),
            };
            if hits.len() > 1 {
                warnings.push(format!("several paper values match row `{}` at T={t}; using the first", cell(&label)));
            }
            paper.push(hits.first().copied());
        }
        values.push(RowValues {
            ann: if is_paper_only { None } else { ann_stats },
            ann_rows: if is_paper_only { BTreeSet::new() } else { ann_rows },
            ann_paper: ann_paper_hit,
            ours,
            paper,
        });
    }

    // Which optional columns exist.
    let show_ann = values.iter().any(|v| v.ann.is_some());
    let show_ann_paper = values.iter().any(|v| v.ann_paper.is_some());
    let show_paper: Vec<bool> = (0..timesteps.len()).map(|ti| values.iter().any(|v| v.paper[ti].is_some())).collect();

    // Rows that actually feed the table (for the info line).
    let used_snn: Vec<&ResultRow> = table
        .iter()
        .flat_map(|tr| tr.measured.iter().map(|&mi| snn[mi]))
        .filter(|r| timesteps.contains(&r.t))
        .collect();
    let used_ann: BTreeSet<usize> = values.iter().flat_map(|v| v.ann_rows.iter().copied()).collect();
    let used_ann: Vec<&ResultRow> = used_ann.iter().map(|&i| ann[i]).collect();
    let used: Vec<&ResultRow> = used_snn.iter().chain(used_ann.iter()).copied().collect();

    let mut out = String::new();

    // Title.
    let title = if !spec.title.trim().is_empty() {
        spec.title.trim().to_string()
    } else {
        let mut exps: Vec<&str> = Vec::new();
        for r in rows {
            push_unique(&mut exps, r.experiment.as_str());
        }
        if exps.is_empty() { "Results".to_string() } else { exps.join(", ") }
    };
    let _ = writeln!(out, "# {}\n", title.replace(['\n', '\r'], " "));

    // Info line.
    let mut datasets: Vec<&str> = Vec::new();
    for r in &used {
        push_unique(&mut datasets, r.dataset.as_str());
    }
    let n_snn: BTreeSet<usize> = used_snn.iter().map(|r| r.n_images).collect();
    let n_ann: BTreeSet<usize> = used_ann.iter().map(|r| r.n_images).collect();
    let n_all: BTreeSet<usize> = n_snn.union(&n_ann).copied().collect();
    let n_text = match n_all.len() {
        0 => MISSING.to_string(),
        1 => format!("N = {}", join_nums(&n_all)),
        _ if !n_snn.is_empty() && !n_ann.is_empty() => {
            format!("N = {} (SNN), {} (ANN)", join_nums(&n_snn), join_nums(&n_ann))
        }
        _ => format!("N = {} (differs between rows!)", join_nums(&n_all)),
    };
    let seeds: BTreeSet<u64> = used.iter().map(|r| r.seed).collect();
    let mut info = vec![
        format!("**Dataset:** {}", if datasets.is_empty() { MISSING.to_string() } else { cell(&datasets.join(", ")) }),
        format!("**Test images:** {n_text}"),
        format!("**Seeds:** {}", if seeds.is_empty() { MISSING.to_string() } else { join_nums(&seeds) }),
    ];
    if let Some(first) = rows.first() {
        info.push(format!(
            "**Provenance:** git `{}`, burn {}, backend {}, {}",
            cell(or_unknown(&first.git_hash)),
            cell(or_unknown(&first.burn_version)),
            cell(or_unknown(&first.backend)),
            cell(or_unknown(&first.date))
        ));
    }
    let _ = writeln!(out, "{}\n", info.join(" · "));

    // Loud warnings first.
    if !n_snn.is_empty() && !n_ann.is_empty() && n_snn != n_ann {
        let _ = writeln!(
            out,
            "> **WARNING: the ANN and SNN values were measured on different numbers of test images \
             (ANN: N = {}, SNN: N = {}); they are not directly comparable.**\n",
            join_nums(&n_ann),
            join_nums(&n_snn)
        );
    } else if n_snn.len() > 1 {
        let _ = writeln!(
            out,
            "> **WARNING: the SNN values were measured on different numbers of test images \
             (N = {}).**\n",
            join_nums(&n_snn)
        );
    }
    let mut hashes: Vec<&str> = Vec::new();
    for r in &used {
        push_unique(&mut hashes, r.git_hash.as_str());
    }
    if hashes.len() > 1 {
        warnings.push(format!("rows come from several git commits: {}", cell(&hashes.join(", "))));
    }
    let mut seen_warnings: Vec<String> = Vec::new();
    for w in warnings {
        push_unique(&mut seen_warnings, w);
    }
    for w in &seen_warnings {
        let _ = writeln!(out, "> **Warning:** {w}\n");
    }

    if table.is_empty() {
        let _ = writeln!(out, "_No `{}` rows to show._", cell(metric));
        for note in &spec.notes {
            let _ = writeln!(out, "\n{note}");
        }
        return out;
    }

    // Table.
    let mut header: Vec<String> = fields.iter().map(|f| f.header().to_string()).collect();
    let mut right: Vec<bool> = vec![false; fields.len()];
    if show_ann {
        header.push("ANN".into());
        right.push(true);
    }
    if show_ann_paper {
        header.push("ANN paper".into());
        right.push(true);
    }
    for (ti, t) in timesteps.iter().enumerate() {
        header.push(format!("T={t}"));
        right.push(true);
        if show_paper[ti] {
            header.push("paper".into());
            header.push("Δ".into());
            right.extend([true, true]);
        }
    }
    let paper_num = |pi: Option<usize>| -> Option<f64> { pi.map(|i| spec.paper[i].value) };
    let mut body: Vec<Vec<String>> = Vec::new();
    for (tr, v) in table.iter().zip(&values) {
        let mut line: Vec<String> = tr.key.iter().map(|k| cell(k)).collect();
        if tr.paper_only.is_some()
            && let Some(last) = line.last_mut()
        {
            *last = format!("{last} {PAPER_ONLY_MARK}");
        }
        let stats = |s: &Option<SeedStats>| s.as_ref().map_or_else(|| MISSING.to_string(), |s| fmt_stats(metric, s));
        let num = |x: Option<f64>| x.map_or_else(|| MISSING.to_string(), |x| fmt_num(metric, x));
        if show_ann {
            line.push(stats(&v.ann));
        }
        if show_ann_paper {
            line.push(num(paper_num(v.ann_paper)));
        }
        for ((ours, &paper), &with_paper) in v.ours.iter().zip(&v.paper).zip(&show_paper) {
            line.push(stats(ours));
            if with_paper {
                let p = paper_num(paper);
                line.push(num(p));
                line.push(match (ours, p) {
                    (Some(s), Some(p)) => fmt_delta(metric, s.mean - p),
                    _ => MISSING.to_string(),
                });
            }
        }
        body.push(line);
    }
    out.push_str(&render_table(&header, &right, &body));

    // Legend.
    let unit = if is_percent(metric) { " (%)" } else { "" };
    let mut legend =
        format!("\n`{}`{unit}: mean ± sample std over seeds where a cell has more than one seed.", cell(metric));
    if show_ann {
        legend.push_str(" ANN: the ANN of the same dataset/model/variant.");
    }
    if show_paper.iter().any(|&b| b) {
        legend.push_str(" Δ = ours − paper (mean).");
    }
    let _ = writeln!(out, "{legend}");

    // Sources of the paper values shown.
    let mut source_lines: Vec<String> = Vec::new();
    for (tr, v) in table.iter().zip(&values) {
        let mut sources: Vec<&str> = Vec::new();
        for pi in v.paper.iter().flatten() {
            if let Some(s) = spec.paper[*pi].source.as_deref() {
                push_unique(&mut sources, s);
            }
        }
        if tr.paper_only.is_some() {
            let given = if sources.is_empty() { "not given".to_string() } else { cell(&sources.join("; ")) };
            push_unique(
                &mut source_lines,
                format!(
                    "- {} {PAPER_ONLY_MARK}: not measured here, values as reported; source: {given}",
                    cell(&tr.label())
                ),
            );
        } else if !sources.is_empty() {
            push_unique(&mut source_lines, format!("- {}: {}", cell(&tr.label()), cell(&sources.join("; "))));
        }
    }
    for v in &values {
        if let Some(pi) = v.ann_paper {
            let p = &spec.paper[pi];
            if let Some(s) = p.source.as_deref() {
                let scope: Vec<&str> =
                    [p.dataset.as_deref(), p.model.as_deref(), p.variant.as_deref()].into_iter().flatten().collect();
                let label = if scope.is_empty() { "ANN".to_string() } else { format!("ANN ({})", scope.join(", ")) };
                push_unique(&mut source_lines, format!("- {}: {}", cell(&label), cell(s)));
            }
        }
    }
    if !source_lines.is_empty() {
        let _ = writeln!(out, "\n**Paper values:**\n");
        for l in &source_lines {
            let _ = writeln!(out, "{l}");
        }
    }

    for note in &spec.notes {
        let _ = writeln!(out, "\n{note}");
    }
    out
}

/// Renders the summary table of `spec.summary`: one row per row key (the ANN first, as
/// `ann`), one column per metric. A cell is the seed-averaged whole-network value; when the
/// metric was recorded at a time step (e.g. `sop90` at the first T reaching 90 % of the
/// ANN), the T follows in parentheses; a metric recorded at T = 0 and repeated per T
/// (`conversion_seconds`) shows the T = 0 value. Missing: `—`.
pub fn render_summary(spec: &TableSpec, rows: &[ResultRow]) -> String {
    let mut fields: Vec<Field> = spec.rows.iter().filter_map(|f| Field::parse(f)).collect();
    if fields.is_empty() {
        fields = vec![Field::Model, Field::Method];
    }
    let sel: Vec<&ResultRow> = rows.iter().filter(|r| r.layer.is_empty() && spec.summary.contains(&r.metric)).collect();
    let mut keys: Vec<Vec<&str>> = Vec::new();
    for r in sel.iter().filter(|r| r.method == ANN_METHOD).chain(sel.iter().filter(|r| r.method != ANN_METHOD)) {
        push_unique(&mut keys, fields.iter().map(|f| f.of_row(r)).collect());
    }
    let mut header: Vec<String> = fields.iter().map(|f| f.header().to_string()).collect();
    let mut right = vec![false; fields.len()];
    for m in &spec.summary {
        header.push(cell(m));
        right.push(true);
    }
    let mut body = Vec::new();
    let mut per_t: Vec<&str> = Vec::new();
    for key in &keys {
        let mut line: Vec<String> = key.iter().map(|k| cell(k)).collect();
        for m in &spec.summary {
            let mut cells: Vec<&ResultRow> = sel
                .iter()
                .copied()
                .filter(|r| r.metric == *m && fields.iter().zip(key).all(|(f, k)| f.of_row(r) == *k))
                .collect();
            // A value recorded at T = 0 (a per-conversion figure) wins over per-T copies.
            if cells.iter().any(|r| r.t == 0) {
                cells.retain(|r| r.t == 0);
            }
            let mut ts: Vec<u32> = cells.iter().map(|r| r.t).collect();
            ts.sort_unstable();
            ts.dedup();
            line.push(match seed_stats(cells.iter().copied()) {
                None => MISSING.to_string(),
                Some(s) if ts == [0] => fmt_stats(m, &s),
                Some(s) if ts.len() == 1 => format!("{} (T={})", fmt_stats(m, &s), ts[0]),
                // A metric with a value per T belongs in the main table, not in one cell.
                Some(_) => {
                    push_unique(&mut per_t, m.as_str());
                    MISSING.to_string()
                }
            });
        }
        body.push(line);
    }
    let mut out = "## Summary\n\n".to_string();
    if body.is_empty() {
        let _ = writeln!(out, "_No rows of {}._", spec.summary.join(", "));
        return out;
    }
    out.push_str(&render_table(&header, &right, &body));
    if !per_t.is_empty() {
        let _ = writeln!(out, "\n`{}`: one value per T (see the main table), `—` here.", per_t.join("`, `"));
    }
    out
}

/// Renders per-layer values (rows with a non-empty `layer`) of `metric` at timestep `t`:
/// one column per method (first-appearance order), one row per layer (first-appearance
/// order). Dataset/model/variant columns are added only when the selected rows contain
/// more than one value of them. Cells follow the module's number formatting.
pub fn render_layer_table(rows: &[ResultRow], metric: &str, t: u32) -> String {
    let sel: Vec<&ResultRow> = rows.iter().filter(|r| !r.layer.is_empty() && r.metric == metric && r.t == t).collect();
    let mut out = format!("## Per-layer `{}` at T={t}\n\n", cell(metric));
    if sel.is_empty() {
        let _ = writeln!(out, "_No per-layer `{}` rows at T={t}._", cell(metric));
        return out;
    }
    let mut methods: Vec<&str> = Vec::new();
    let mut keys: Vec<[&str; 4]> = Vec::new();
    for r in &sel {
        push_unique(&mut methods, r.method.as_str());
        push_unique(&mut keys, [r.dataset.as_str(), r.model.as_str(), r.variant.as_str(), r.layer.as_str()]);
    }
    // Which of dataset/model/variant vary (and so need a column).
    let varies: Vec<bool> = (0..3)
        .map(|i| {
            let mut vals: Vec<&str> = Vec::new();
            for k in &keys {
                push_unique(&mut vals, k[i]);
            }
            vals.len() > 1
        })
        .collect();
    let names = ["Dataset", "Model", "Variant"];
    let mut header: Vec<String> = Vec::new();
    let mut right: Vec<bool> = Vec::new();
    for i in 0..3 {
        if varies[i] {
            header.push(names[i].to_string());
            right.push(false);
        }
    }
    header.push("Layer".into());
    right.push(false);
    for m in &methods {
        header.push(cell(m));
        right.push(true);
    }
    let mut body: Vec<Vec<String>> = Vec::new();
    for k in &keys {
        let mut line: Vec<String> = Vec::new();
        for i in 0..3 {
            if varies[i] {
                line.push(cell(k[i]));
            }
        }
        line.push(cell(k[3]));
        for m in &methods {
            let s = seed_stats(sel.iter().copied().filter(|r| {
                r.method == *m && r.dataset == k[0] && r.model == k[1] && r.variant == k[2] && r.layer == k[3]
            }));
            line.push(s.map_or_else(|| MISSING.to_string(), |s| fmt_stats(metric, &s)));
        }
        body.push(line);
    }
    out.push_str(&render_table(&header, &right, &body));
    let _ = writeln!(out, "\nmean ± sample std over seeds where a cell has more than one seed.");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::row;

    /// The golden fixture: ANN with 2 seeds, `qcfs` with 2 seeds × 3 T, `tb` with one
    /// seed × 3 T, a per-layer row and a non-accuracy row that must be ignored, paper
    /// values for some cells and a paper-only method `snm`.
    pub(crate) fn golden_rows() -> Vec<ResultRow> {
        let mut rows = vec![row("vgg16", "ann", 0, 0, 93.50), row("vgg16", "ann", 0, 1, 93.70)];
        for (t, a, b) in [(1, 60.10, 60.30), (2, 80.00, 81.00), (4, 90.00, 90.40)] {
            rows.push(row("vgg16", "qcfs", t, 0, a));
            rows.push(row("vgg16", "qcfs", t, 1, b));
        }
        for (t, v) in [(1, 10.00), (2, 25.50), (4, 55.25)] {
            rows.push(row("vgg16", "tb", t, 0, v));
        }
        let mut layer = row("vgg16", "qcfs", 4, 0, 0.12);
        layer.metric = "firing_rate".into();
        layer.layer = "conv1".into();
        rows.push(layer);
        let mut sops = row("vgg16", "qcfs", 4, 0, 1.5e9);
        sops.metric = "sops".into();
        rows.push(sops);
        rows
    }

    pub(crate) fn golden_spec() -> TableSpec {
        let pv = |method: &str, t: u32, value: f64, source: Option<&str>| PaperValue {
            method: method.into(),
            model: Some("vgg16".into()),
            t,
            value,
            source: source.map(String::from),
            ..Default::default()
        };
        TableSpec {
            title: "VGG-16 on CIFAR-10".into(),
            paper: vec![
                pv("ann", 0, 93.63, Some("Bu et al. 2022, Table 1")),
                pv("qcfs", 2, 80.10, Some("Bu et al. 2022, Table 2")),
                pv("qcfs", 4, 91.00, Some("Bu et al. 2022, Table 2")),
                pv("snm", 4, 88.00, Some("Wang et al. 2022 (as cited by Bu et al.)")),
            ],
            notes: vec!["Recipe: L=4 quantization steps, 300 epochs.".into()],
            ..Default::default()
        }
    }

    #[test]
    fn paper_for_limits_the_paper_values_to_the_metrics_it_names() {
        let all = golden_spec();
        assert!(all.shows_paper_for("accuracy") && all.shows_paper_for("loss"));
        let losses = TableSpec { also: vec!["loss".into()], paper_for: vec!["loss".into()], ..golden_spec() };
        assert!(losses.validate().is_ok());
        assert!(!losses.shows_paper_for("accuracy") && losses.shows_paper_for("loss"));
        let unknown = TableSpec { paper_for: vec!["rate".into()], ..losses };
        let e = unknown.validate().unwrap_err().to_string();
        assert!(e.contains("paper_for") && e.contains("rate"), "{e}");
    }

    #[test]
    fn derived_paper_values_pair_each_value_with_its_ann() {
        let spec = golden_spec();
        let loss = derived_paper_values(&spec.paper, "loss");
        // qcfs T=2 80.10 and T=4 91.00, snm T=4 88.00 against the ANN's 93.63.
        let got: Vec<(String, u32, f64)> = loss.iter().map(|p| (p.method.clone(), p.t, p.value)).collect();
        assert_eq!(got.len(), 3);
        assert!((got[0].2 - 13.53).abs() < 1e-9 && got[0].1 == 2);
        assert!((got[2].2 - 5.63).abs() < 1e-9 && got[2].0 == "snm");
        let rate = derived_paper_values(&spec.paper, "rate");
        assert!((rate[1].value - 100.0 * 91.0 / 93.63).abs() < 1e-9);
        assert!(derived_paper_values(&spec.paper, "sops").is_empty());
        // A value quoted with its own ANN is paired with that ANN, not the table's.
        let mut quoted = spec.paper.clone();
        quoted[3].ann = Some(90.0);
        let loss = derived_paper_values(&quoted, "loss");
        assert!((loss[2].value - 2.0).abs() < 1e-9, "{}", loss[2].value);
        assert!((derived_paper_values(&quoted, "rate")[2].value - 100.0 * 88.0 / 90.0).abs() < 1e-9);
        // Without any ANN to pair with, no derived value.
        assert!(derived_paper_values(&spec.paper[1..], "loss").is_empty());
    }

    #[test]
    fn summary_table_shows_metrics_with_their_timestep() {
        let mut rows = golden_rows();
        let mut add = |method: &str, t: u32, metric: &str, value: f64| {
            let mut r = row("vgg16", method, t, 0, value);
            r.metric = metric.into();
            rows.push(r);
        };
        add("ann", 0, "fps_per_watt", 25.0);
        add("qcfs", 1, "fps_per_watt", 9000.0);
        add("qcfs", 2, "fps_per_watt", 8658.0);
        add("qcfs", 2, "sop90", 1.5e6);
        add("qcfs", 2, "fps_per_watt90", 8658.0);
        let spec = TableSpec {
            summary: vec!["sop90".into(), "fps_per_watt90".into(), "fps_per_watt".into()],
            ..golden_spec()
        };
        let got = render_summary(&spec, &rows);
        let want = "## Summary\n\n\
            | Model | Method |         sop90 | fps_per_watt90 | fps_per_watt |\n\
            | ----- | ------ | ------------: | -------------: | -----------: |\n\
            | vgg16 | ann    |             — |              — |        25.00 |\n\
            | vgg16 | qcfs   | 1.500e6 (T=2) |     8658 (T=2) |            — |\n\
            \n`fps_per_watt`: one value per T (see the main table), `—` here.\n";
        assert_eq!(got, want, "\n{got}");
    }

    #[test]
    fn golden_table() {
        let got = render_markdown(&golden_spec(), &golden_rows());
        let want = include_str!("testdata/golden_table.md");
        assert_eq!(got, want, "\n--- got ---\n{got}\n--- want ---\n{want}");
    }

    #[test]
    fn delta_sign_and_mean_std_numbers() {
        let got = render_markdown(&golden_spec(), &golden_rows());
        let qcfs = got.lines().find(|l| l.starts_with("| vgg16 | qcfs")).unwrap();
        let cells: Vec<&str> = qcfs.split('|').map(str::trim).collect();
        // ["", Model, Method, ANN, ANN paper, T=1, T=2, paper, Δ, T=4, paper, Δ, ""]
        assert_eq!(cells[3], "93.60 ± 0.14"); // mean(93.5, 93.7), sample std 0.1414
        assert_eq!(cells[6], "80.50 ± 0.71"); // mean(80, 81), sample std 0.7071
        assert_eq!(cells[8], "+0.40"); // ours above paper
        assert_eq!(cells[9], "90.20 ± 0.28");
        assert_eq!(cells[11], "-0.80"); // ours below paper
        assert_eq!(fmt_delta("accuracy", -0.001), "0.00");
        assert_eq!(fmt_delta("accuracy", 0.005_1), "+0.01");
    }

    #[test]
    fn output_is_deterministic_and_ignores_other_metrics() {
        let spec = golden_spec();
        let rows = golden_rows();
        assert_eq!(render_markdown(&spec, &rows), render_markdown(&spec, &rows));
        let accuracy_only: Vec<ResultRow> =
            rows.iter().filter(|r| r.metric == "accuracy" && r.layer.is_empty()).cloned().collect();
        assert_eq!(render_markdown(&spec, &rows), render_markdown(&spec, &accuracy_only));
    }

    #[test]
    fn n_images_mismatch_is_loud() {
        let mut rows = golden_rows();
        for r in rows.iter_mut().filter(|r| r.method == "ann") {
            r.n_images = 50000;
        }
        let got = render_markdown(&TableSpec::default(), &rows);
        assert!(got.contains("**WARNING: the ANN and SNN values were measured on different numbers of test images (ANN: N = 50000, SNN: N = 10000)"), "{got}");
        assert!(got.contains("N = 10000 (SNN), 50000 (ANN)"), "{got}");
    }

    #[test]
    fn spec_defaults_and_validation() {
        let spec: TableSpec = serde_json_like_default();
        assert_eq!(spec, TableSpec::default());
        assert_eq!(spec.rows, vec!["model", "method"]);
        assert_eq!(spec.metric, "accuracy");
        assert!(spec.validate().is_ok());
        let bad = TableSpec { rows: vec!["model".into(), "seed".into()], ..Default::default() };
        assert!(matches!(bad.validate(), Err(ReportError::InvalidSpec(_))));
        // Rendering with a bad field still works and says so.
        let got = render_markdown(&bad, &golden_rows());
        assert!(got.contains("unknown row field `seed` ignored"), "{got}");
        assert!(got.contains("| Model |"), "{got}");
        let bad_ann = TableSpec {
            paper: vec![PaperValue { method: "ann".into(), t: 4, value: 1.0, ..Default::default() }],
            ..Default::default()
        };
        assert!(bad_ann.validate().is_err());
    }

    /// Deserializes an empty table section through serde (the defaults must apply).
    fn serde_json_like_default() -> TableSpec {
        use serde::Deserialize;
        use serde::de::value::{Error, MapDeserializer};
        let empty: Vec<(String, String)> = Vec::new();
        TableSpec::deserialize(MapDeserializer::<_, Error>::new(empty.into_iter())).unwrap()
    }

    #[test]
    fn variant_rows_use_the_plain_ann_and_mixed_cells_warn() {
        let mut rows = vec![row("vgg16", "ann", 0, 0, 93.0)];
        for v in ["alpha=0.5,n=2", "alpha=1|x"] {
            let mut r = row("vgg16", "qcfs", 8, 0, 91.0);
            r.variant = v.into();
            rows.push(r);
        }
        let spec =
            TableSpec { rows: vec!["method".into(), "variant".into()], timesteps: vec![8], ..Default::default() };
        let got = render_markdown(&spec, &rows);
        assert!(got.contains("| qcfs   | alpha=0.5,n=2 | 93.00 | 91.00 |"), "{got}");
        assert!(got.contains("| qcfs   | alpha=1\\|x    | 93.00 | 91.00 |"), "{got}");
        assert!(!got.contains("Warning"), "{got}");
        // Without the variant in the key the row mixes two sweeps: warn.
        let spec = TableSpec { rows: vec!["method".into()], ..Default::default() };
        let got = render_markdown(&spec, &rows);
        assert!(got.contains("combines 2 dataset/model/method/variant combinations"), "{got}");
    }

    #[test]
    fn empty_input_does_not_panic() {
        let got = render_markdown(&TableSpec::default(), &[]);
        assert!(got.starts_with("# Results\n"), "{got}");
        assert!(got.contains("_No `accuracy` rows to show._"), "{got}");
        let only_paper = TableSpec {
            paper: vec![PaperValue { method: "snm".into(), t: 32, value: 90.0, ..Default::default() }],
            ..Default::default()
        };
        let got = render_markdown(&only_paper, &[]);
        assert!(got.contains("| T=32 | paper |"), "{got}");
        assert!(got.contains("not measured here"), "{got}");
        assert!(render_layer_table(&[], "spikes", 4).contains("_No per-layer"));
    }

    #[test]
    fn non_accuracy_formatting() {
        assert_eq!(fmt_num("sops", 1_234_567.0), "1.235e6");
        assert_eq!(fmt_num("sops", 51_234.0), "51234");
        assert_eq!(fmt_num("firing_rate", 0.123_44), "0.1234");
        assert_eq!(fmt_num("firing_rate", 0.000_25), "2.500e-4");
        assert_eq!(fmt_num("conversion_seconds", 12.345_6), "12.35");
        assert_eq!(fmt_num("spikes", 0.0), "0");
        assert_eq!(fmt_num("spikes", f64::NAN), "NaN");
        assert_eq!(fmt_num("accuracy", 93.125_1), "93.13");
        assert_eq!(fmt_delta("sops", -2.0e6), "-2.000e6");
        let mut rows = Vec::new();
        for (seed, v) in [(0, 1.0e9), (1, 3.0e9)] {
            let mut r = row("vgg16", "qcfs", 4, seed, v);
            r.metric = "sops".into();
            rows.push(r);
        }
        let spec = TableSpec { metric: "sops".into(), ..Default::default() };
        let got = render_markdown(&spec, &rows);
        assert!(got.contains("| 2.000e9 ± 1.414e9 |"), "{got}");
    }

    #[test]
    fn layer_table() {
        let mut rows = Vec::new();
        for (method, layer, seed, v) in [
            ("qcfs", "conv1", 0, 0.10),
            ("qcfs", "conv2", 0, 0.20),
            ("qcfs", "conv1", 1, 0.30),
            ("tb", "conv2", 0, 0.05),
        ] {
            let mut r = row("vgg16", method, 4, seed, v);
            r.metric = "firing_rate".into();
            r.layer = layer.into();
            rows.push(r);
        }
        // Other T and whole-network rows are ignored.
        let mut other = rows[0].clone();
        other.t = 8;
        rows.push(other);
        rows.push(row("vgg16", "qcfs", 4, 0, 90.0));
        let got = render_layer_table(&rows, "firing_rate", 4);
        let want = "## Per-layer `firing_rate` at T=4\n\n\
| Layer |            qcfs |      tb |\n\
| ----- | --------------: | ------: |\n\
| conv1 | 0.2000 ± 0.1414 |       — |\n\
| conv2 |          0.2000 | 0.05000 |\n\
\nmean ± sample std over seeds where a cell has more than one seed.\n";
        assert_eq!(got, want, "\n{got}");
    }
}
