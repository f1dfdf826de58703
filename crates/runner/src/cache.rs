//! The stage cache: `<root>/<stage>/<key>/{spec.json, ..., DONE}`. Files are written to a
//! temporary name and renamed; `DONE` is written last.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::report::write_atomic;

/// The file of an entry that lists the SHA-256 of its other files.
const CHECKSUMS: &str = "checksums.json";

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

    /// Whether the entry completed and its files are intact: every file listed in its
    /// `checksums.json` must have the SHA-256 recorded when it was marked done. A damaged
    /// entry is reported, moved aside to `<key>.bad-<unix seconds>` and treated as absent, so
    /// it is recomputed, never used. (Entries without checksums, written before checksums
    /// existed, are taken as they are.)
    pub fn is_done(&self, stage: &str, key: &str) -> bool {
        let dir = self.dir(stage, key);
        if !dir.join("DONE").exists() {
            return false;
        }
        let Ok(text) = std::fs::read(dir.join(CHECKSUMS)) else {
            return true;
        };
        let recorded: Result<std::collections::BTreeMap<String, String>, _> = serde_json::from_slice(&text);
        let damaged = match recorded {
            Err(e) => Some(format!("{CHECKSUMS} does not parse ({e})")),
            Ok(files) => files.iter().find_map(|(name, want)| match file_sha256(&dir.join(name)) {
                Ok(got) if &got == want => None,
                Ok(_) => Some(format!("{name} changed since it was written")),
                Err(_) => Some(format!("{name} is missing")),
            }),
        };
        let Some(why) = damaged else {
            return true;
        };
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let aside = self.root.join(stage).join(format!("{key}.bad-{secs}"));
        match std::fs::rename(&dir, &aside) {
            Ok(()) => eprintln!(
                "cache entry {} is damaged ({why}): moved to {} and recomputed",
                dir.display(),
                aside.display()
            ),
            Err(e) => eprintln!("cache entry {} is damaged ({why}) and could not be moved aside ({e})", dir.display()),
        }
        false
    }

    /// Marks the entry complete (after all its files are written): records the SHA-256 of
    /// each of its files in `checksums.json`, then writes `DONE`.
    pub fn mark_done(&self, stage: &str, key: &str) -> Result<()> {
        let dir = self.dir(stage, key);
        let mut sums = std::collections::BTreeMap::new();
        for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if path.is_file() && name != "DONE" && name != CHECKSUMS && !name.ends_with(".tmp") {
                sums.insert(name, file_sha256(&path)?);
            }
        }
        write_json(&dir.join(CHECKSUMS), &sums)?;
        write_file(&dir.join("DONE"), b"")
    }

    /// An exclusive advisory lock on one entry (`<root>/<stage>/<key>.lock`), held until the
    /// returned file is dropped: runs sharing a cache (shards of one spec, or two runs of it)
    /// compute an entry once, the others wait and then read it. Says so when it has to wait.
    pub fn lock(&self, stage: &str, key: &str) -> Result<std::fs::File> {
        let dir = self.root.join(stage);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{key}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                eprintln!("waiting for another run computing {stage}/{key} ({})", path.display());
                file.lock().with_context(|| format!("locking {}", path.display()))?;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        Ok(file)
    }
}

/// The SHA-256 of a file's contents (hex), computed once per process for a given path, size
/// and modification time.
pub fn file_sha256(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;
    use std::sync::Mutex;
    type Memo = HashMap<(PathBuf, u64, Option<std::time::SystemTime>), String>;
    static MEMO: Mutex<Option<Memo>> = Mutex::new(None);
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let id = (path.to_path_buf(), meta.len(), meta.modified().ok());
    if let Some(hash) = MEMO.lock().expect("memo lock").get_or_insert_default().get(&id) {
        return Ok(hash.clone());
    }
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    let hash: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    MEMO.lock().expect("memo lock").get_or_insert_default().insert(id, hash.clone());
    Ok(hash)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_record_and_verify_their_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let entry = cache.dir("eval", "k");
        write_file(&entry.join("measures.json"), b"[1]").unwrap();
        cache.mark_done("eval", "k").unwrap();
        assert!(entry.join(CHECKSUMS).exists(), "{:?}", std::fs::read_dir(&entry).unwrap().collect::<Vec<_>>());
        assert!(cache.is_done("eval", "k"));
        write_file(&entry.join("measures.json"), b"[2]").unwrap();
        assert!(!cache.is_done("eval", "k"));
        assert!(!entry.exists(), "moved aside");
    }
}
