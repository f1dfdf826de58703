//! The stage cache: `<root>/<stage>/<key>/{spec.json, ..., DONE}`. Files are written to a
//! temporary name and renamed; `DONE` is written last.
//!
//! Shipped stages: a run too long for one machine session (a leaderboard takes hours) resumes
//! on a fresh machine from stage results committed with the repository,
//! `results/stages/<stage>/<key>/` ([`SHIPPED_STAGE_FILES`]). A missing cache entry is
//! restored from there when it exists (whatever the spec says); a spec with `[experiment]
//! ship_stages = true` also copies every stage it finishes there. Keys hold the code versions
//! of what computed a stage, so a changed method never reuses a shipped result.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::report::write_atomic;

/// The file of an entry that lists the SHA-256 of its other files.
const CHECKSUMS: &str = "checksums.json";

/// The files of a stage entry that are shipped (committed) and restored.
pub const SHIPPED_STAGE_FILES: [&str; 3] = ["spec.json", "measures.json", "provenance.json"];

/// A cache directory.
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
    /// Committed stage results: where missing entries are restored from, and whether finished
    /// entries are copied there.
    shipped: Option<(PathBuf, bool)>,
}

impl Cache {
    /// Cache rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), shipped: None }
    }

    /// The same cache, restoring missing stage entries from `dir/<stage>/<key>/` and, with
    /// `ship`, copying every entry it finishes there ([`Cache::ship`]).
    pub fn with_shipped_stages(self, dir: impl Into<PathBuf>, ship: bool) -> Self {
        Self { shipped: Some((dir.into(), ship)), ..self }
    }

    /// Restores the entry from the shipped stages when the cache lacks it and they hold it;
    /// returns whether the entry is done now.
    pub fn restore_shipped(&self, stage: &str, key: &str) -> Result<bool> {
        let Some((shipped, _)) = &self.shipped else { return Ok(false) };
        let from = shipped.join(stage).join(key);
        if !SHIPPED_STAGE_FILES.iter().all(|f| from.join(f).is_file()) {
            return Ok(false);
        }
        let dir = self.dir(stage, key);
        for f in SHIPPED_STAGE_FILES {
            let bytes = std::fs::read(from.join(f)).with_context(|| format!("reading {}", from.join(f).display()))?;
            write_file(&dir.join(f), &bytes)?;
        }
        self.mark_done(stage, key)?;
        eprintln!("using the committed stage results {}", from.display());
        Ok(true)
    }

    /// Copies a finished entry's [`SHIPPED_STAGE_FILES`] to the shipped stages when this cache
    /// ships them and they are not there yet.
    pub fn ship(&self, stage: &str, key: &str) -> Result<()> {
        let Some((shipped, true)) = &self.shipped else { return Ok(()) };
        let to = shipped.join(stage).join(key);
        let dir = self.dir(stage, key);
        for f in SHIPPED_STAGE_FILES {
            if !to.join(f).exists() {
                let bytes = std::fs::read(dir.join(f)).with_context(|| format!("reading {}", dir.join(f).display()))?;
                write_file(&to.join(f), &bytes)?;
            }
        }
        Ok(())
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of one stage entry.
    pub fn dir(&self, stage: &str, key: &str) -> PathBuf {
        self.root.join(stage).join(key)
    }

    /// Whether the entry completed and its files are intact: every file listed in its
    /// `checksums.json` must have the SHA-256 recorded when it was marked done. A damaged
    /// entry is reported, moved aside to `<key>.bad-<unix seconds>` and treated as absent, so
    /// it is recomputed, never used. An entry without checksums (written before they existed)
    /// cannot be verified and is treated the same way.
    pub fn is_done(&self, stage: &str, key: &str) -> bool {
        let dir = self.dir(stage, key);
        if !dir.join("DONE").exists() {
            return false;
        }
        let recorded: Result<std::collections::BTreeMap<String, String>, String> =
            match std::fs::read(dir.join(CHECKSUMS)) {
                Ok(text) => serde_json::from_slice(&text).map_err(|e| e.to_string()),
                Err(_) => Err(String::new()),
            };
        let damaged = match recorded {
            Err(e) if e.is_empty() => Some(format!("it has no {CHECKSUMS}, so it cannot be verified")),
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

/// Writes `path` through `write`, which is handed a unique temporary name beside `path` (same
/// directory, so the rename is atomic); the file appears under its name only when complete.
pub fn write_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().with_context(|| format!("{}: no file name", path.display()))?.to_os_string();
    name.push(format!(".{}.w{n}.tmp", std::process::id()));
    let tmp = path.with_file_name(name);
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let result = write(&tmp).and_then(|()| {
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
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

    #[test]
    fn an_entry_without_checksums_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let entry = cache.dir("eval", "old");
        write_file(&entry.join("measures.json"), b"[1]").unwrap();
        write_file(&entry.join("DONE"), b"").unwrap();
        assert!(!cache.is_done("eval", "old"), "an unverifiable entry is recomputed");
        assert!(!entry.exists(), "moved aside");
        let aside: Vec<String> = std::fs::read_dir(dir.path().join("eval"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(aside.iter().any(|n| n.starts_with("old.bad-")), "{aside:?}");
    }

    #[test]
    fn write_with_leaves_no_file_when_the_writer_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bpk");
        let failed = write_with(&path, |tmp| {
            std::fs::write(tmp, b"half")?;
            anyhow::bail!("killed midway")
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no checkpoint, no temporary");
        write_with(&path, |tmp| Ok(std::fs::write(tmp, b"whole")?)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
