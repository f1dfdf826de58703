//! CSV persistence of [`ResultRow`]s and the shared atomic file writer.
//!
//! Floats are written with Rust's `Display` for `f64` (shortest representation that
//! round-trips exactly; `NaN`, `inf` and `-inf` for non-finite values), so
//! `read_csv(write_csv(rows)) == rows` for every finite value.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::report::{ReportError, ResultRow};

/// Column order of the results CSV (the header line, exactly).
pub const CSV_COLUMNS: [&str; 16] = [
    "experiment",
    "dataset",
    "model",
    "method",
    "variant",
    "T",
    "seed",
    "metric",
    "layer",
    "value",
    "n_images",
    "git_hash",
    "burn_version",
    "backend",
    "date",
    "stage_key",
];

/// Writes `rows` as CSV (header [`CSV_COLUMNS`]) to `path` atomically (see [`write_atomic`]).
pub fn write_csv(path: &Path, rows: &[ResultRow]) -> Result<(), ReportError> {
    let csv_err = |source: ::csv::Error| ReportError::Csv { path: path.to_path_buf(), line: None, source };
    let mut wtr = ::csv::WriterBuilder::new().from_writer(Vec::new());
    wtr.write_record(CSV_COLUMNS).map_err(csv_err)?;
    for r in rows {
        let t = r.t.to_string();
        let seed = r.seed.to_string();
        let value = r.value.to_string();
        let n_images = r.n_images.to_string();
        wtr.write_record([
            r.experiment.as_str(),
            &r.dataset,
            &r.model,
            &r.method,
            &r.variant,
            &t,
            &seed,
            &r.metric,
            &r.layer,
            &value,
            &n_images,
            &r.git_hash,
            &r.burn_version,
            &r.backend,
            &r.date,
            &r.stage_key,
        ])
        .map_err(csv_err)?;
    }
    let bytes = wtr
        .into_inner()
        .map_err(|e| ReportError::Io { path: path.to_path_buf(), source: std::io::Error::other(e.to_string()) })?;
    write_atomic(path, &bytes)
}

/// Reads a results CSV written by [`write_csv`] (columns are matched by header name;
/// extra columns are ignored). Errors name the file and, when known, the line.
pub fn read_csv(path: &Path) -> Result<Vec<ResultRow>, ReportError> {
    let file = File::open(path).map_err(|source| ReportError::Io { path: path.to_path_buf(), source })?;
    let mut rdr = ::csv::ReaderBuilder::new().from_reader(std::io::BufReader::new(file));
    let mut out = Vec::new();
    for rec in rdr.deserialize::<ResultRow>() {
        let row = rec.map_err(|source| ReportError::Csv {
            path: path.to_path_buf(),
            line: source.position().map(|p| p.line()),
            source,
        })?;
        out.push(row);
    }
    Ok(out)
}

/// Writes `contents` to `path` atomically: the bytes go to `<path>.<pid>.<n>.tmp` (unique
/// per process and call, so concurrent writers never share a temporary file) in the same
/// directory, which is fsynced and then renamed over `path`; on Unix the directory is
/// fsynced afterwards (best effort). Missing parent directories are created. On failure
/// the temporary file is removed and `path` is left untouched.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), ReportError> {
    let Some(file_name) = path.file_name() else {
        return Err(ReportError::InvalidPath { path: path.to_path_buf(), reason: "no file name".into() });
    };
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".{}.{n}.tmp", std::process::id()));
    let tmp: PathBuf = path.with_file_name(tmp_name);
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf);
    if let Some(dir) = &parent {
        fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.clone(), source })?;
    }
    let io_err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ReportError::Io { path: p, source }
    };
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(contents).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io_err(path))
    })();
    if result.is_err() {
        // Best effort: do not leave a half-written temporary behind.
        let _ = fs::remove_file(&tmp);
        return result;
    }
    #[cfg(unix)]
    {
        // Make the rename durable; some file systems refuse to fsync directories.
        let dir = parent.unwrap_or_else(|| PathBuf::from("."));
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::row;

    /// A fresh, empty scratch directory unique to this test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("report_csv_test_{}_{}", std::process::id(), name));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn awkward_rows() -> Vec<ResultRow> {
        let mut a = row("vgg16", "qcfs", 8, 3, 0.1 + 0.2);
        a.variant = "alpha=0.5,n=2".into();
        a.experiment = "quote \"this\"\nand newline".into();
        let mut b = row("resnet20", "ann", 0, u64::MAX, 1.0e300);
        b.metric = "sops".into();
        b.layer = "conv1".into();
        let c = row("vgg16", "qcfs", 1, 0, -1.234_567_890_123_456_7e-12);
        let d = row("vgg16", "qcfs", 2, 0, 93.12);
        vec![a, b, c, d]
    }

    #[test]
    fn round_trip_is_exact() {
        let dir = scratch("round_trip");
        let path = dir.join("results.csv");
        let rows = awkward_rows();
        write_csv(&path, &rows).unwrap();
        let back = read_csv(&path).unwrap();
        assert_eq!(back, rows);
        // Header is exactly the documented column order.
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next().unwrap(), CSV_COLUMNS.join(","));
        assert!(text.contains(",93.12,"), "{text}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_rows_round_trip() {
        let dir = scratch("empty");
        let path = dir.join("results.csv");
        write_csv(&path, &[]).unwrap();
        assert_eq!(read_csv(&path).unwrap(), Vec::<ResultRow>::new());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_write_leaves_no_tmp_and_replaces() {
        let dir = scratch("atomic");
        let path = dir.join("sub").join("table.md");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<String> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["table.md".to_string()]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_write_rejects_path_without_file_name() {
        let err = write_atomic(Path::new("/"), b"x").unwrap_err();
        assert!(matches!(err, ReportError::InvalidPath { .. }), "{err}");
    }

    #[test]
    fn failed_atomic_write_cleans_up() {
        let dir = scratch("fail");
        // The destination is a non-empty directory, so the rename must fail.
        let path = dir.join("occupied");
        fs::create_dir_all(path.join("x")).unwrap();
        let err = write_atomic(&path, b"data").unwrap_err();
        assert!(err.to_string().contains("occupied"), "{err}");
        assert!(!dir.join("occupied.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn read_error_names_file_and_line() {
        let dir = scratch("bad");
        let path = dir.join("broken.csv");
        let good = "exp,cifar10,vgg16,qcfs,,8,0,accuracy,,93.1,10000,abc,0.16,ndarray,2026-05-09,eval/1f";
        let bad = "exp,cifar10,vgg16,qcfs,,eight,0,accuracy,,93.1,10000,abc,0.16,ndarray,2026-05-09,eval/1f";
        let text = format!("{}\n{good}\n{bad}\n", CSV_COLUMNS.join(","));
        fs::write(&path, text).unwrap();
        let err = read_csv(&path).unwrap_err();
        match &err {
            ReportError::Csv { path: p, line, .. } => {
                assert_eq!(p, &path);
                assert_eq!(*line, Some(3));
            }
            other => panic!("unexpected error {other}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("broken.csv") && msg.contains("line 3"), "{msg}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn results_files_from_before_the_stage_key_column_still_read() {
        let dir = scratch("old");
        let path = dir.join("old.csv");
        let header = CSV_COLUMNS[..15].join(",");
        fs::write(
            &path,
            format!("{header}\nexp,cifar10,vgg16,qcfs,,8,0,accuracy,,93.1,10000,abc,0.16,flex,2026-05-09\n"),
        )
        .unwrap();
        let rows = read_csv(&path).unwrap();
        assert_eq!((rows.len(), rows[0].value, rows[0].stage_key.as_str()), (1, 93.1, ""));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn read_error_for_missing_file_and_missing_column() {
        let dir = scratch("missing");
        let err = read_csv(&dir.join("nope.csv")).unwrap_err();
        assert!(matches!(err, ReportError::Io { .. }));
        assert!(err.to_string().contains("nope.csv"));
        let path = dir.join("short.csv");
        fs::write(&path, "experiment,dataset\nexp,cifar10\n").unwrap();
        let err = read_csv(&path).unwrap_err();
        assert!(err.to_string().contains("short.csv"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
