//! The stage cache: `<root>/<stage>/<key>/{spec.json, ..., DONE}`. Files are written to a
//! temporary name and renamed; `DONE` is written last.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::report::write_atomic;

/// A cache directory.
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// Cache rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Directory of one stage entry.
    pub fn dir(&self, stage: &str, key: &str) -> PathBuf {
        self.root.join(stage).join(key)
    }

    /// Whether the entry completed.
    pub fn is_done(&self, stage: &str, key: &str) -> bool {
        self.dir(stage, key).join("DONE").exists()
    }

    /// Marks the entry complete (after all its files are written).
    pub fn mark_done(&self, stage: &str, key: &str) -> Result<()> {
        write_file(&self.dir(stage, key).join("DONE"), b"")
    }
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)?;
    write_file(path, &bytes)
}

/// Reads JSON written by [`write_json`].
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// Atomic write (temp file + rename), creating parent directories.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}
