//! Result reporting for conversion experiments.
//!
//! * [`ResultRow`] is the long-form record of one measured value; a whole run is a
//!   `Vec<ResultRow>` persisted as CSV by [`csv::write_csv`] / [`csv::read_csv`].
//! * [`markdown::render_markdown`] pivots the rows into a paper-style table
//!   (optionally side by side with numbers reported in the paper).
//! * [`plot::accuracy_vs_t_svg`] draws accuracy against the number of timesteps as SVG;
//!   [`plot::diagnostic_vs_t_svg`] a neuron model's per-step diagnostic, e.g. the
//!   dynamic-threshold factor ω(t) (Lan et al. 2023, Fig. 4).
//!
//! All renderers are pure and deterministic: the same rows give byte-identical output.
//! Nothing in this module panics on bad input; I/O and parse problems are reported
//! as [`ReportError`].

pub mod csv;
pub mod figures;
pub mod markdown;
pub mod plot;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use self::csv::{read_csv, write_atomic, write_csv};
pub use self::figures::{
    FIGURES, FrontierRow, MAX_FRONTIER_POINTS, is_figure, png_data_uri, render_figure, render_figure_with_images,
    thin_diagnostics, thin_frontiers, thin_rows,
};
pub use self::markdown::{
    PaperValue, TableSpec, derived_paper_values, render_layer_table, render_markdown, render_summary,
};
pub use self::plot::{accuracy_vs_t_svg, diagnostic_stems, diagnostic_vs_t_svg, primary_metric_vs_t_svg};

/// Method name used for the ANN's own rows (stored with `T = 0`).
pub const ANN_METHOD: &str = "ann";

/// Errors of the reporting module. Every variant names the file involved, if any.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading, writing, syncing or renaming a file failed.
    #[error("I/O error on {}: {source}", .path.display())]
    Io {
        /// The file (or temporary file) the operation was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV file could not be parsed or written.
    #[error("CSV error in {}{}: {source}", .path.display(), line_suffix(*.line))]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line of the offending record, when known.
        line: Option<u64>,
        /// The underlying error.
        #[source]
        source: ::csv::Error,
    },
    /// The path cannot be used as a destination (for example it has no file name).
    #[error("invalid path {}: {reason}", .path.display())]
    InvalidPath {
        /// The rejected path.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// A table specification is inconsistent (see [`TableSpec::validate`]).
    #[error("invalid table spec: {0}")]
    InvalidSpec(String),
    /// There is nothing to render (for example no accuracy rows for a plot).
    #[error("no data: {0}")]
    NoData(String),
}

fn line_suffix(line: Option<u64>) -> String {
    match line {
        Some(l) => format!(" at line {l}"),
        None => String::new(),
    }
}

/// One measured value, long form. CSV column order exactly:
/// `experiment,dataset,model,method,variant,T,seed,metric,layer,value,n_images,git_hash,burn_version,backend,date,stage_key`
/// (see [`csv::CSV_COLUMNS`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResultRow {
    /// Experiment name (the spec's name).
    pub experiment: String,
    /// Data set, e.g. `cifar10`.
    pub dataset: String,
    /// Network architecture, e.g. `vgg16`.
    pub model: String,
    /// Conversion method; [`ANN_METHOD`] (`"ann"`) for the ANN's own rows.
    pub method: String,
    /// Sweep label like `"alpha=0.5,n=2"`, or `""` when there is no sweep.
    pub variant: String,
    /// Number of simulation timesteps; 0 for ANN rows.
    #[serde(rename = "T")]
    pub t: u32,
    /// Random seed of the run.
    pub seed: u64,
    /// `"accuracy"` (percent), `"spikes"`, `"sops"`, `"firing_rate"`, `"conversion_seconds"`, `"macs"`, ...
    pub metric: String,
    /// `""` for whole-network values, the slot name for per-layer values.
    pub layer: String,
    /// The measured value.
    pub value: f64,
    /// Number of test images the value was measured on.
    pub n_images: usize,
    /// Git commit of the code that produced the value.
    pub git_hash: String,
    /// Version of burn used.
    pub burn_version: String,
    /// Burn backend used (e.g. `ndarray`, `wgpu`).
    pub backend: String,
    /// Date of the measurement (ISO 8601).
    pub date: String,
    /// The cache entry the value was computed in (`<stage>/<key>`, e.g. `eval/3f…`); empty
    /// for values derived when the table is rendered (loss, energy ratios). Older results
    /// files have no such column.
    #[serde(default)]
    pub stage_key: String,
}

/// Seed statistics of one cell: values are first averaged per seed (duplicates of the
/// same seed count once), then mean and sample standard deviation are taken over seeds.
#[derive(Clone, Copy, Debug, PartialEq)]
struct SeedStats {
    mean: f64,
    /// Sample standard deviation (n − 1); `None` with a single seed.
    std: Option<f64>,
    /// Number of distinct seeds.
    n: usize,
}

/// Aggregates rows over seeds; `None` when there are no rows.
fn seed_stats<'a>(rows: impl IntoIterator<Item = &'a ResultRow>) -> Option<SeedStats> {
    let mut per_seed: BTreeMap<u64, (f64, usize)> = BTreeMap::new();
    for r in rows {
        let e = per_seed.entry(r.seed).or_insert((0.0, 0));
        e.0 += r.value;
        e.1 += 1;
    }
    let means: Vec<f64> = per_seed.values().map(|(s, c)| s / *c as f64).collect();
    let n = means.len();
    if n == 0 {
        return None;
    }
    let mean = means.iter().sum::<f64>() / n as f64;
    let std = (n > 1).then(|| {
        let ss: f64 = means.iter().map(|v| (v - mean) * (v - mean)).sum();
        (ss / (n - 1) as f64).sqrt()
    });
    Some(SeedStats { mean, std, n })
}

/// Appends `s` to `out` if it is not already present (keeps first-appearance order).
fn push_unique<T: PartialEq>(out: &mut Vec<T>, s: T) {
    if !out.contains(&s) {
        out.push(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a row with the boring fields filled in.
    pub(crate) fn row(model: &str, method: &str, t: u32, seed: u64, value: f64) -> ResultRow {
        ResultRow {
            experiment: "exp".into(),
            dataset: "cifar10".into(),
            model: model.into(),
            method: method.into(),
            variant: String::new(),
            t,
            seed,
            metric: "accuracy".into(),
            layer: String::new(),
            value,
            n_images: 10000,
            git_hash: "abc1234".into(),
            burn_version: "0.16.0".into(),
            backend: "ndarray".into(),
            date: "2026-05-09".into(),
            stage_key: String::new(),
        }
    }

    #[test]
    fn seed_stats_mean_and_sample_std() {
        let rows = [row("m", "x", 1, 0, 1.0), row("m", "x", 1, 1, 2.0), row("m", "x", 1, 2, 6.0)];
        let s = seed_stats(rows.iter()).unwrap();
        assert_eq!(s.n, 3);
        assert!((s.mean - 3.0).abs() < 1e-12);
        // sample variance = (4 + 1 + 9) / 2 = 7
        assert!((s.std.unwrap() - 7f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn seed_stats_averages_duplicate_seed_first() {
        let rows = [row("m", "x", 1, 0, 1.0), row("m", "x", 1, 0, 3.0), row("m", "x", 1, 1, 4.0)];
        let s = seed_stats(rows.iter()).unwrap();
        assert_eq!(s.n, 2);
        assert!((s.mean - 3.0).abs() < 1e-12);
        assert!(seed_stats(std::iter::empty()).is_none());
        let single = seed_stats(rows[..1].iter()).unwrap();
        assert_eq!(single.std, None);
    }

    #[test]
    fn error_messages_name_the_file() {
        let e = ReportError::Io { path: PathBuf::from("/x/results.csv"), source: std::io::Error::other("boom") };
        assert_eq!(e.to_string(), "I/O error on /x/results.csv: boom");
    }
}
