//! Helpers shared by the runner's integration tests (each test file uses a part of them).
#![allow(dead_code)]

use std::path::Path;

use runner::report::ResultRow;
use runner::run::RunOptions;

/// Options of a run whose data root, cache and results all live under `dir`, on the CPU.
pub fn options(dir: &Path) -> RunOptions {
    RunOptions {
        data_dir: Some(dir.join("data")),
        cache_dir: dir.join("cache"),
        results_dir: dir.join("results"),
        device_name: "flex".into(),
        overrides: vec![],
        results_dir_chosen: false,
    }
}

/// The whole-network value of `metric` for `method` at `t`; panics naming it when missing.
pub fn value(rows: &[ResultRow], method: &str, t: u32, metric: &str) -> f64 {
    rows.iter()
        .find(|r| r.method == method && r.t == t && r.metric == metric && r.layer.is_empty())
        .unwrap_or_else(|| panic!("no {metric} row for {method} T={t}"))
        .value
}
