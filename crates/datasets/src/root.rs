//! Data root resolution: where to look for each dataset's files.

use std::path::{Path, PathBuf};

/// Name of the environment variable that points at a data root.
pub const DATA_DIR_ENV: &str = "SNN_DATA_DIR";

/// Where to look for data, in order: explicit --data-dir, env var SNN_DATA_DIR, ./datasets (relative to cwd), then per-dataset well-known system paths.
#[derive(Clone, Debug)]
pub struct DataRoot {
    /// Root given on the command line (`--data-dir`), searched first.
    pub explicit: Option<PathBuf>,
    /// Root from the `SNN_DATA_DIR` environment variable, searched second.
    pub env: Option<PathBuf>,
    /// Project-local root (`datasets`, relative to the working directory), searched third.
    pub project: PathBuf,
}

/// Sub-directories of a root that may hold `dataset`'s files, in preference order.
/// An empty string means the root itself.
fn sub_dirs(dataset: &str) -> &'static [&'static str] {
    match dataset {
        "mnist" => &["mnist", "MNIST/raw", "MNIST"],
        "fashion-mnist" => &["fashion-mnist", "FashionMNIST/raw", "FashionMNIST", "fashion_mnist"],
        "cifar10" => &["cifar-10-batches-bin", "cifar10/cifar-10-batches-bin", "cifar10", ""],
        "cifar100" => &["cifar-100-binary", "cifar100/cifar-100-binary", "cifar100", ""],
        // Point clouds: the loader also probes known sub-directories of each (see `pointsets`).
        "modelnet10" => &["modelnet10", "ModelNet10", "modelnet10-pcd1024", "modelnet40_normal_resampled"],
        "modelnet40" => &[
            "modelnet40",
            "ModelNet40",
            "modelnet40_normal_resampled",
            "modelnet40_ply_hdf5_2048",
            "modelnet40-pcd1024",
        ],
        "scanobjectnn" => &["scanobjectnn", "ScanObjectNN", "h5_files"],
        "shapenet-part" => &[
            "shapenetcore_partanno_segmentation_benchmark_v0_normal",
            "shapenet-part",
            "ShapeNetPart",
            "shapenet_part",
        ],
        // Event frames: the SpikingJelly dataset root (holding `frames_number_<T>_split_by_number/`).
        "cifar10-dvs" => &["cifar10-dvs", "CIFAR10-DVS", "cifar10_dvs", "CIFAR10DVS"],
        "imagenet" => &["imagenet", "ImageNet", "ILSVRC2012", "imagenet-1k"],
        _ => &[],
    }
}

/// Well-known system-wide locations of `dataset` (searched after all roots).
pub fn system_paths(dataset: &str) -> Vec<PathBuf> {
    match dataset {
        // Debian/Ubuntu package `dataset-fashion-mnist`.
        "fashion-mnist" => vec![PathBuf::from("/usr/share/datasets/fashion-mnist")],
        _ => Vec::new(),
    }
}

impl DataRoot {
    /// Builds the search roots from an optional `--data-dir`, `SNN_DATA_DIR` and `./datasets`.
    ///
    /// An empty `SNN_DATA_DIR` is treated as unset.
    pub fn from_env(explicit: Option<PathBuf>) -> DataRoot {
        let env = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
        DataRoot { explicit, env, project: PathBuf::from("datasets") }
    }

    /// The roots in search order (explicit, env, project).
    pub fn roots(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        if let Some(p) = &self.explicit {
            out.push(p);
        }
        if let Some(p) = &self.env {
            out.push(p);
        }
        out.push(&self.project);
        out
    }

    /// Candidate directories for `dataset` in search order (each root joined with the dataset's known sub-directory names, plus system paths).
    ///
    /// Duplicates are removed, keeping the first occurrence. Unknown and procedural datasets
    /// have no candidates. MNIST-style datasets are never looked for in a root itself, only in
    /// their named sub-directories, since MNIST and Fashion-MNIST share file names.
    pub fn candidates(&self, dataset: &str) -> Vec<PathBuf> {
        let subs = sub_dirs(dataset);
        let mut out: Vec<PathBuf> = Vec::new();
        let mut push = |p: PathBuf| {
            if !out.contains(&p) {
                out.push(p);
            }
        };
        if !subs.is_empty() {
            for root in self.roots() {
                for sub in subs {
                    if sub.is_empty() {
                        push(root.to_path_buf());
                    } else {
                        push(root.join(sub));
                    }
                }
            }
        }
        for p in system_paths(dataset) {
            push(p);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(v: &[PathBuf], p: &str) -> usize {
        v.iter().position(|x| x == Path::new(p)).unwrap_or_else(|| panic!("{p} not in {v:?}"))
    }

    #[test]
    fn order_explicit_env_project_system() {
        let root = DataRoot { explicit: Some("/x".into()), env: Some("/e".into()), project: "datasets".into() };
        let c = root.candidates("fashion-mnist");
        let a = pos(&c, "/x/fashion-mnist");
        let b = pos(&c, "/e/fashion-mnist");
        let d = pos(&c, "datasets/fashion-mnist");
        let s = pos(&c, "/usr/share/datasets/fashion-mnist");
        assert!(a < b && b < d && d < s, "{c:?}");
        assert_eq!(s, c.len() - 1);
        // every explicit candidate comes before every env candidate
        let last_x = c.iter().rposition(|p| p.starts_with("/x")).unwrap();
        let first_e = c.iter().position(|p| p.starts_with("/e")).unwrap();
        assert!(last_x < first_e);
        pos(&c, "/x/FashionMNIST/raw");

        let c = root.candidates("mnist");
        assert!(pos(&c, "/x/mnist") < pos(&c, "/e/MNIST/raw"));
        assert!(!c.contains(&PathBuf::from("/x")), "root itself is not an MNIST candidate");

        let c = root.candidates("cifar10");
        assert!(pos(&c, "/x/cifar-10-batches-bin") < pos(&c, "/x/cifar10/cifar-10-batches-bin"));
        assert!(pos(&c, "/x") < pos(&c, "/e/cifar-10-batches-bin"));
        assert!(pos(&c, "/e") < pos(&c, "datasets/cifar-10-batches-bin"));

        let c = root.candidates("cifar100");
        pos(&c, "/e/cifar-100-binary");
        assert!(root.candidates("synthetic-shapes2d").is_empty());
        assert!(root.candidates("nope").is_empty());
    }

    #[test]
    fn duplicates_removed_and_optional_roots_skipped() {
        let root = DataRoot { explicit: None, env: Some("datasets".into()), project: "datasets".into() };
        let c = root.candidates("cifar10");
        assert_eq!(c.len(), 4, "{c:?}");
        assert_eq!(c[0], PathBuf::from("datasets/cifar-10-batches-bin"));
    }
}
