//! HDF5 point-cloud files: ModelNet40 `ply_hdf5_2048` and ScanObjectNN.
//!
//! Both store a float dataset `data` of shape `[N, P, C]` (`C >= 3`; the first three columns
//! are x, y, z) and an integer dataset `label` of shape `[N]` or `[N, 1]`. Other datasets
//! (`normal`, `faceId`, `mask`) are ignored. The points of these files are already a random
//! sample of each shape, so a sample keeps its first `num_points` points (the convention of
//! the reference PointNet/DGCNN loaders) and repeats them cyclically when it has fewer.
//!
//! Reading uses the pure-Rust `hdf5-pure` crate (cargo feature `hdf5`, on by default; no
//! system libhdf5). It reads files written by libhdf5 1.8–1.14 (h5py's default format, which
//! is the format of the published ModelNet40 and ScanObjectNN files), contiguous or chunked,
//! with or without deflate/shuffle. Files written with HDF5 2.0's newest format
//! (`libver="latest"` under HDF5 2.x) are not readable and give a clear error. Without the
//! feature every HDF5 load is [`DatasetError::Unsupported`] with a conversion hint.

#[cfg(feature = "hdf5")]
use std::path::Path;
use std::path::PathBuf;

use crate::error::DatasetError;

/// What to do with the samples of a set of HDF5 files.
#[cfg_attr(not(feature = "hdf5"), allow(dead_code))]
pub(crate) struct H5Request<'a> {
    /// Files whose samples are concatenated, in this order.
    pub files: &'a [PathBuf],
    /// Labels must be `< num_classes`.
    pub num_classes: usize,
    /// Points per output sample.
    pub num_points: usize,
    /// Given the total sample count, which (sorted, distinct) global indices to keep.
    pub select: &'a dyn Fn(usize) -> Vec<usize>,
}

/// Hint appended to HDF5 errors: how to turn the files into something this build reads.
pub(crate) const CONVERT_HINT: &str = "see datasets/README.md, section \"Converting HDF5 files\" (h5py snippets that \
                                       re-save a file in HDF5's widely readable format, or turn ModelNet40 HDF5 files into \
                                       the ModelNet text layout)";

#[cfg(not(feature = "hdf5"))]
/// Without the `hdf5` feature: always [`DatasetError::Unsupported`].
pub(crate) fn read_clouds(req: &H5Request<'_>) -> Result<(Vec<f32>, Vec<u16>), DatasetError> {
    Err(DatasetError::Unsupported {
        path: req.files.first().cloned().unwrap_or_default(),
        reason: format!(
            "this build of the `datasets` crate has no HDF5 support (cargo feature `hdf5` is disabled); \
             rebuild with the feature, or {CONVERT_HINT}"
        ),
    })
}

#[cfg(feature = "hdf5")]
fn h5_err(path: &Path, location: &str, e: hdf5_pure::Error) -> DatasetError {
    if let hdf5_pure::Error::Io(source) = e {
        return DatasetError::Io { path: path.to_path_buf(), source };
    }
    DatasetError::Malformed {
        path: path.to_path_buf(),
        location: location.to_string(),
        reason: format!(
            "cannot read HDF5 ({e}); if the file is intact but in a newer HDF5 format (e.g. HDF5 2.x \
             libver=\"latest\"), {CONVERT_HINT}"
        ),
    }
}

#[cfg(feature = "hdf5")]
fn bad(path: &Path, dataset: &str, reason: impl Into<String>) -> DatasetError {
    DatasetError::Malformed {
        path: path.to_path_buf(),
        location: format!("dataset \"{dataset}\""),
        reason: reason.into(),
    }
}

/// One opened file: its `data` dataset, shape and labels.
#[cfg(feature = "hdf5")]
struct Opened {
    path: PathBuf,
    data: hdf5_pure::Dataset,
    n: usize,
    points: usize,
    cols: usize,
    labels: Vec<u16>,
}

#[cfg(feature = "hdf5")]
fn open(path: &Path, num_classes: usize) -> Result<Opened, DatasetError> {
    use hdf5_pure::DType;
    if !path.is_file() {
        return Err(DatasetError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let file = hdf5_pure::File::open(path).map_err(|e| h5_err(path, "file", e))?;
    let data = file.dataset("data").map_err(|e| h5_err(path, "dataset \"data\"", e))?;
    let shape = data.shape().map_err(|e| h5_err(path, "dataset \"data\"", e))?;
    let dims: Vec<usize> = shape.iter().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect();
    let [n, points, cols] = dims[..] else {
        return Err(bad(path, "data", format!("expected shape [N, points, 3], found {shape:?}")));
    };
    if points == 0 || cols < 3 || points.checked_mul(cols).is_none_or(|v| v > 1 << 26) {
        return Err(bad(path, "data", format!("expected shape [N, points, 3] with points >= 1, found {shape:?}")));
    }
    match data.dtype().map_err(|e| h5_err(path, "dataset \"data\"", e))? {
        DType::F32 | DType::F64 => {}
        other => return Err(bad(path, "data", format!("expected float32 or float64 values, found {other}"))),
    }
    let label = file.dataset("label").map_err(|e| h5_err(path, "dataset \"label\"", e))?;
    let lshape = label.shape().map_err(|e| h5_err(path, "dataset \"label\"", e))?;
    let ok_shape = matches!(lshape[..], [m] if m as usize == n) || matches!(lshape[..], [m, 1] if m as usize == n);
    if !ok_shape {
        return Err(bad(path, "label", format!("expected shape [{n}] or [{n}, 1] (one per sample), found {lshape:?}")));
    }
    match label.dtype().map_err(|e| h5_err(path, "dataset \"label\"", e))? {
        DType::I8 | DType::I16 | DType::I32 | DType::I64 | DType::U8 | DType::U16 | DType::U32 | DType::U64 => {}
        other => return Err(bad(path, "label", format!("expected integer labels, found {other}"))),
    }
    let raw = label.read_i64().map_err(|e| h5_err(path, "dataset \"label\"", e))?;
    let mut labels = Vec::with_capacity(n);
    for (i, &l) in raw.iter().enumerate() {
        if l < 0 || l as u64 >= num_classes as u64 {
            return Err(bad(path, "label", format!("label {l} of sample {i} is not in 0..{num_classes}")));
        }
        labels.push(l as u16);
    }
    Ok(Opened { path: path.to_path_buf(), data, n, points, cols, labels })
}

/// Reads the selected samples of `req.files`: returns (points point-major xyz, normalised to
/// the unit sphere and brought to `num_points`, labels).
#[cfg(feature = "hdf5")]
pub(crate) fn read_clouds(req: &H5Request<'_>) -> Result<(Vec<f32>, Vec<u16>), DatasetError> {
    use crate::pointcloud::{Reduce, fit_points, normalize_unit_sphere};
    let opened = req.files.iter().map(|f| open(f, req.num_classes)).collect::<Result<Vec<_>, _>>()?;
    let total: usize = opened.iter().map(|o| o.n).sum();
    let keep = (req.select)(total);
    let mut points = Vec::with_capacity(keep.len() * req.num_points * 3);
    let mut labels = Vec::with_capacity(keep.len());
    let mut next = 0usize; // position in `keep`
    let mut base = 0usize; // global index of the file's first sample
    const WINDOW: usize = 256;
    let mut xyz = Vec::new();
    for o in &opened {
        while next < keep.len() && keep[next] < base + o.n {
            // read a window of rows starting at the next kept sample of this file
            let start = keep[next] - base;
            let count = WINDOW.min(o.n - start);
            let rows =
                o.data.read_f32_rows(start as u64, count as u64).map_err(|e| h5_err(&o.path, "dataset \"data\"", e))?;
            let per = o.points * o.cols;
            if rows.len() != count * per {
                return Err(bad(&o.path, "data", format!("read {} values for {count} samples of {per}", rows.len())));
            }
            while next < keep.len() && keep[next] < base + start + count {
                let local = keep[next] - base;
                let row = &rows[(local - start) * per..(local - start + 1) * per];
                xyz.clear();
                xyz.extend(row.chunks_exact(o.cols).flat_map(|p| [p[0], p[1], p[2]]));
                if xyz.iter().any(|v| !v.is_finite()) {
                    return Err(bad(&o.path, "data", format!("sample {local} has a non-finite coordinate")));
                }
                let mut s = fit_points(&xyz, req.num_points, Reduce::First);
                normalize_unit_sphere(&mut s);
                points.extend_from_slice(&s);
                labels.push(o.labels[local]);
                next += 1;
            }
        }
        base += o.n;
    }
    Ok((points, labels))
}

#[cfg(all(test, feature = "hdf5"))]
pub(crate) mod tests {
    use super::*;

    /// Writes a ModelNet40 `ply_hdf5_2048`-style file: `data` float32 `[n, p, 3]` (chunked,
    /// deflate level 4 like PointNet's `save_h5`), `label` uint8 `[n, 1]`, and an ignored
    /// `normal` dataset.
    pub(crate) fn write_modelnet_h5(path: &Path, data: &[f32], p: usize, labels: &[u8]) {
        let n = labels.len();
        let mut b = hdf5_pure::FileBuilder::new();
        b.create_dataset("data")
            .with_f32_data(data)
            .with_shape(&[n as u64, p as u64, 3])
            .with_chunks(&[n.max(1) as u64, p as u64, 3])
            .with_deflate(4);
        b.create_dataset("label").with_u8_data(labels).with_shape(&[n as u64, 1]);
        b.create_dataset("normal").with_f32_data(data).with_shape(&[n as u64, p as u64, 3]);
        b.write(path).unwrap();
    }

    /// Writes a ScanObjectNN-style file: `data` float32 `[n, p, 3]` (contiguous), `label`
    /// int64 `[n]`, and an ignored `mask` dataset.
    pub(crate) fn write_scan_h5(path: &Path, data: &[f32], p: usize, labels: &[i64]) {
        let n = labels.len();
        let mut b = hdf5_pure::FileBuilder::new();
        b.create_dataset("data").with_f32_data(data).with_shape(&[n as u64, p as u64, 3]);
        b.create_dataset("label").with_i64_data(labels).with_shape(&[n as u64]);
        b.create_dataset("mask").with_i32_data(&vec![0; n * p]).with_shape(&[n as u64, p as u64]);
        b.write(path).unwrap();
    }
}
