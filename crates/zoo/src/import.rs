//! Import of external weights (safetensors, PyTorch checkpoints, burnpack) with key remapping.

use std::path::{Path, PathBuf};

use burn::store::{BurnpackStore, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};

use crate::Network;

/// Weight file formats, chosen from the file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightsFormat {
    /// `.safetensors` with PyTorch names and layouts.
    Safetensors,
    /// PyTorch `.pt` / `.pth` (a state dict, optionally under `state_dict`).
    Pytorch,
    /// burn's own `.bpk` records.
    Burnpack,
}

/// Import errors.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Unknown extension.
    #[error("{path}: unknown weights format (use .safetensors, .pt, .pth or .bpk)")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The file is missing.
    #[error("{path}: weights file not found")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The store failed.
    #[error("{path}: {message}")]
    Store {
        /// The file.
        path: PathBuf,
        /// The store's message.
        message: String,
    },
    /// Tensors with NaN or infinite values.
    #[error("{path}: non-finite values (NaN or ±inf) in {tensors:?}")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The model's tensors (module paths) holding them.
        tensors: Vec<String>,
    },
    /// Batch-norm running variances with a negative value (a damaged file: a variance cannot
    /// be negative, and the layer would output NaN).
    #[error("{path}: negative batch-norm running variance in {tensors:?} (a variance cannot be negative)")]
    NegativeVariance {
        /// The file.
        path: PathBuf,
        /// The model's `running_var` tensors (module paths) holding them.
        tensors: Vec<String>,
    },
    /// Tensors the model expects were not in the file (or the other way round).
    #[error("{path}: weights do not match the model: missing {missing:?}; unused {unused:?}; errors {errors:?}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Model tensors not found in the file.
        missing: Vec<String>,
        /// File tensors the model has no place for.
        unused: Vec<String>,
        /// Shape or dtype errors.
        errors: Vec<String>,
    },
}

impl WeightsFormat {
    /// The format for `path`, from its extension.
    pub fn from_path(path: &Path) -> Result<Self, ImportError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("safetensors") => Ok(Self::Safetensors),
            Some("pt" | "pth") => Ok(Self::Pytorch),
            Some("bpk") => Ok(Self::Burnpack),
            _ => Err(ImportError::UnknownFormat { path: path.into() }),
        }
    }
}

/// PyTorch-name → zoo-name remapping: strips a DataParallel `module.` prefix and renames
/// `shortcut.0`/`shortcut.1` (PyTorch option-B shortcut Sequential) and torchvision's
/// `downsample.0`/`downsample.1` to our fields, and `fc` to `linear`. So a torchvision
/// ResNet-18/34 state dict (`conv1.weight`, `bn1.*`, `layer1.0.conv1.weight`,
/// `layer1.0.bn1.*`, `layer2.0.downsample.0.weight`, `layer2.0.downsample.1.*`, `fc.*`)
/// loads into `resnet18`/`resnet34` unchanged.
const KEY_REMAPS: &[(&str, &str)] = &[
    (r"^module\.(.*)$", "$1"),
    (r"^(.*)\.shortcut\.0\.(.*)$", "$1.shortcut_conv.$2"),
    (r"^(.*)\.shortcut\.1\.(.*)$", "$1.shortcut_bn.$2"),
    (r"^(.*)\.downsample\.0\.(.*)$", "$1.shortcut_conv.$2"),
    (r"^(.*)\.downsample\.1\.(.*)$", "$1.shortcut_bn.$2"),
    (r"^fc\.(.*)$", "linear.$1"),
];

/// Whether `path` is the clip/QCFS bounds λ: `act.lambda`, or `{Variant}.act.lambda` in
/// burnpack files (which keep the `Network` variant name).
fn is_activation_lambda(path: &str) -> bool {
    path == "act.lambda" || path.split_once('.').is_some_and(|(_, rest)| rest == "act.lambda")
}

/// Loads weights from `path` into `model`. Every model tensor must be found and every file
/// tensor used: a partial match is an error listing the missing and unused names. PyTorch's
/// BN `num_batches_tracked` counters have no place in burn's batch norm and are ignored, and
/// the clip/QCFS bounds λ may be absent (a ReLU checkpoint): they then keep their init.
pub fn import_weights(model: Network, path: &Path) -> Result<Network, ImportError> {
    if !path.exists() {
        return Err(ImportError::Missing { path: path.into() });
    }
    let store_err = |e: &dyn std::fmt::Display| ImportError::Store { path: path.into(), message: e.to_string() };
    // Model-specific names (torchvision MobileNet-v2's nested Sequentials) after the shared ones.
    let mut remaps: Vec<(String, String)> = KEY_REMAPS.iter().map(|(f, t)| (f.to_string(), t.to_string())).collect();
    if matches!(model, Network::MobileNetV2(_)) {
        remaps.extend(crate::mobilenet::key_remaps());
    }
    let mut model = model;
    let result = match WeightsFormat::from_path(path)? {
        WeightsFormat::Safetensors => {
            let mut store = SafetensorsStore::from_file(path)
                .with_from_adapter(PyTorchToBurnAdapter)
                .skip_enum_variants(true)
                .allow_partial(true);
            for (from, to) in &remaps {
                store = store.with_key_remapping(from, to.clone());
            }
            model.load_from(&mut store).map_err(|e| store_err(&e))?
        }
        WeightsFormat::Pytorch => {
            let mut store = PytorchStore::from_file(path).skip_enum_variants(true).allow_partial(true);
            for (from, to) in &remaps {
                store = store.with_key_remapping(from, to.clone());
            }
            model.load_from(&mut store).map_err(|e| store_err(&e))?
        }
        WeightsFormat::Burnpack => {
            let mut store = BurnpackStore::from_file(path).allow_partial(true);
            model.load_from(&mut store).map_err(|e| store_err(&e))?
        }
    };
    let unused: Vec<String> = result.unused.iter().filter(|n| !n.ends_with("num_batches_tracked")).cloned().collect();
    // A ReLU checkpoint has no clip/QCFS bounds: they keep their init (e.g. to fine-tune a
    // ReLU network with QCFS activations).
    let missing: Vec<String> =
        result.missing.iter().map(|(p, _)| p.clone()).filter(|p| !is_activation_lambda(p)).collect();
    if !missing.is_empty() || !unused.is_empty() || !result.errors.is_empty() {
        return Err(ImportError::Mismatch {
            path: path.into(),
            missing,
            unused,
            errors: result.errors.iter().map(|e| format!("{e:?}")).collect(),
        });
    }
    let tensors = non_finite_tensors(&model);
    if !tensors.is_empty() {
        return Err(ImportError::NonFinite { path: path.into(), tensors });
    }
    let tensors = tensors_where(&model, |path, values| {
        path.last().is_some_and(|n| n == "running_var") && values.iter().any(|v| *v < 0.0)
    });
    if !tensors.is_empty() {
        return Err(ImportError::NegativeVariance { path: path.into(), tensors });
    }
    Ok(model)
}

/// Module paths (`layer1.0.conv1.weight`) of the float tensors holding a NaN or an infinity.
pub fn non_finite_tensors(model: &Network) -> Vec<String> {
    tensors_where(model, |_, values| values.iter().any(|v| !v.is_finite()))
}

/// Module paths of the float tensors (parameters and running states) for which `bad(path,
/// values)` holds.
fn tensors_where(model: &Network, bad: impl FnMut(&[String], &[f32]) -> bool) -> Vec<String> {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::prelude::Tensor;
    struct Visit<F> {
        path: Vec<String>,
        bad: F,
        found: Vec<String>,
    }
    impl<F: FnMut(&[String], &[f32]) -> bool> ModuleVisitor for Visit<F> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.into());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if (self.bad)(&self.path, &crate::tensor_values(param.val())) {
                self.found.push(self.path.join("."));
            }
        }
    }
    let mut v = Visit { path: Vec::new(), bad, found: Vec::new() };
    model.visit(&mut v);
    v.found
}
