//! Experiment specs: the TOML a researcher writes. Unknown keys are errors.

use std::path::{Path, PathBuf};

use convert::{MethodConfig, SpecOverrides};
use datasets::{Normalization, PointOptions, SyntheticOptions};
use serde::{Deserialize, Serialize};
use zoo::ModelSpec;

use crate::report::TableSpec;

/// Errors in a spec, always naming the file and the key path.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// Spec file.
        file: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// TOML syntax error.
    #[error("{file}: invalid TOML: {message}")]
    Syntax {
        /// Spec file.
        file: PathBuf,
        /// Parser message.
        message: String,
    },
    /// A key is unknown, has the wrong type, or names something that does not exist.
    #[error("{file}: `{path}`: {message}")]
    Field {
        /// Spec file.
        file: PathBuf,
        /// Key path, e.g. `train.epochs` or `method[1].kind`.
        path: String,
        /// What is wrong, with the valid choices where there is a list.
        message: String,
    },
    /// The spec is valid as written; the command line's `--set` values make it invalid.
    #[error("--set {overrides} (on {file}): {message}")]
    Override {
        /// The `--set key=value` arguments, space-separated.
        overrides: String,
        /// Spec file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// A whole experiment spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Another spec (path relative to this spec's directory) whose `[dataset]`, `[model]` and
    /// `[train]` this spec uses instead of its own: the way to convert a reference ANN
    /// (same sections, same cache key, same checkpoint). A `[[sweep]]` over `ann` puts
    /// several reference ANNs in one table. (Not serialized: the resolved spec holds the
    /// sections themselves.)
    #[serde(default, skip_serializing)]
    pub ann: Option<String>,
    /// Name, description, seeds.
    #[serde(default)]
    pub experiment: ExperimentSection,
    /// The data.
    pub dataset: DatasetSection,
    /// The network (zoo name and options, or imported weights).
    pub model: ModelSpec,
    /// The ANN training recipe (ignored when `model.weights` is set).
    #[serde(default)]
    pub train: TrainSection,
    /// Shared conversion settings.
    #[serde(default)]
    pub convert: ConvertSection,
    /// Conversion methods, each a row of the table.
    #[serde(default, rename = "method")]
    pub methods: Vec<MethodEntry>,
    /// Simulation settings.
    pub eval: EvalSection,
    /// Table layout and the paper's reported values.
    #[serde(default)]
    pub table: TableSpec,
    /// Ablation grids; several `[[sweep]]` entries are crossed.
    #[serde(default, rename = "sweep")]
    pub sweeps: Vec<Sweep>,
}

/// `[experiment]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSection {
    /// Defaults to the spec file stem.
    #[serde(default)]
    pub name: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Training seeds; several give mean ± std in the table.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Copy every stage result this spec finishes to `results/stages/` (to commit), so a run
    /// longer than one machine session resumes elsewhere where it stopped. Default off
    /// (committed stage results are restored whatever this says).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ship_stages: bool,
}

impl Default for ExperimentSection {
    fn default() -> Self {
        Self { name: None, description: String::new(), seeds: default_seeds(), ship_stages: false }
    }
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// `[dataset]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSection {
    /// One of `datasets::DATASET_NAMES`.
    pub name: String,
    /// Per-channel normalisation; defaults to the dataset's constants.
    #[serde(default)]
    pub normalization: Option<Normalization>,
    /// Options of procedural datasets.
    #[serde(default)]
    pub synthetic: Option<SyntheticOptions>,
    /// Train on the first N (seeded shuffle) training images only.
    #[serde(default)]
    pub train_subset: Option<usize>,
    /// Options of point-cloud datasets (`[dataset.points]`: `num_points`, `train_size`,
    /// `test_size`, `seed`, `scanobjectnn_variant`); defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<PointOptions>,
    /// `[dataset.imagenet]`: preprocessing sizes and `max_per_class` (applied to both splits)
    /// of the `imagenet` set; ignored by other sets. Left out of the serialized spec when
    /// absent, so cache keys of other specs do not change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imagenet: Option<datasets::ImageNetOptions>,
    /// `[dataset.events]`: event-frame sets (`cifar10-dvs`): `frames` per sample and
    /// `max_per_class`. The ANN sees each sample's mean frame; the SNN sees frame t at step t.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventSection>,
    /// `[dataset.detection]`: options of `synthetic-detection` (`image_size`, `classes`,
    /// `max_objects`, `min_scale`, `max_scale`, `train_size`, `test_size`, `seed`); defaults
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<datasets::synthetic_detection::SyntheticDetectionOptions>,
    /// `[dataset.dense]`: options of the real dense sets `voc` and `coco` (see
    /// `datasets::dense`): `image_size` (default 128, a multiple of 8), VOC's `year` (default
    /// "2012") and `task` (`detection`, the default, or `segmentation`), `train_split` and
    /// `test_split` (VOC `train`/`val`, COCO `train2017`/`val2017`), `train_size` and
    /// `test_size` (the first images of a split; default all); defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dense: Option<datasets::dense::DenseOptions>,
}

/// `[dataset.events]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSection {
    /// Frames per sample: SpikingJelly's `frames_number` (the folder read is
    /// `frames_number_<frames>_split_by_number/`).
    pub frames: usize,
    /// Load at most this many samples per class and split.
    #[serde(default)]
    pub max_per_class: Option<usize>,
}

/// Optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// SGD with momentum.
    Sgd,
    /// Adam.
    Adam,
}

/// Learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// Cosine annealing to 0 over all iterations.
    Cosine,
    /// Multiply by `gamma` at each epoch in `milestones`.
    Step,
    /// Constant.
    Constant,
}

/// `train.augment`: the dataset's default augmentation on or off, or an image augmentation of
/// the spec's own. Serialises as it is written (`true`, or the table), so specs that gave a
/// bool keep their training cache key.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AugmentChoice {
    /// `true`: the dataset's default; `false`: no augmentation.
    DatasetDefault(bool),
    /// Random crop after zero padding, and a left-right flip with probability 0.5.
    Images(ImageAugment),
}

/// An image augmentation given in the spec (`train.augment = { crop_padding, horizontal_flip }`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageAugment {
    /// Zero padding on every side before cropping back to the original size (0: no crop).
    #[serde(default)]
    pub crop_padding: usize,
    /// Mirror left-right with probability 0.5.
    #[serde(default)]
    pub horizontal_flip: bool,
}

impl<'de> Deserialize<'de> for AugmentChoice {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Choice;
        impl<'de> serde::de::Visitor<'de> for Choice {
            type Value = AugmentChoice;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or a table { crop_padding = <pixels>, horizontal_flip = <bool> }")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<AugmentChoice, E> {
                Ok(AugmentChoice::DatasetDefault(v))
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, map: M) -> Result<AugmentChoice, M::Error> {
                ImageAugment::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(AugmentChoice::Images)
            }
        }
        deserializer.deserialize_any(Choice)
    }
}

/// `[train]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// `sgd` or `adam`.
    #[serde(default = "d_opt")]
    pub optimizer: OptimizerKind,
    /// Initial learning rate.
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// SGD momentum.
    #[serde(default = "d_momentum")]
    pub momentum: f64,
    /// L2 weight decay.
    #[serde(default = "d_wd")]
    pub weight_decay: f64,
    /// `cosine`, `step` or `constant`.
    #[serde(default = "d_schedule")]
    pub schedule: Schedule,
    /// Epochs at which `step` multiplies the rate by `gamma`.
    #[serde(default)]
    pub milestones: Vec<usize>,
    /// Step factor.
    #[serde(default = "d_gamma")]
    pub gamma: f64,
    /// Label smoothing α.
    #[serde(default)]
    pub label_smoothing: f64,
    /// Mini-batch size.
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// Epochs.
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    /// Training augmentation: absent or `true`, the dataset's default (CIFAR: 4-pixel crop +
    /// flip; point sets: dropout, scale and shift; none for the others); `false`, none; or an
    /// image crop and flip of one's own, `{ crop_padding = 2, horizontal_flip = true }`.
    #[serde(default)]
    pub augment: Option<AugmentChoice>,
    /// Fine-tune: start training from these weights (safetensors, PyTorch `.pt`/`.pth` or
    /// burnpack, as `model.weights`) instead of a random init. Looked up like
    /// `model.weights` (working directory, then the data roots). Clip/QCFS bounds absent from
    /// the file keep their init, so a ReLU checkpoint can be fine-tuned with QCFS
    /// activations. The cache key holds the file's name and size, not its directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_weights: Option<PathBuf>,
    /// QCFS: before the first epoch, set each slot's λ to this percentile (0, 100] of the
    /// slot's positive ReLU outputs on the first training batch (of epoch 1's order, without
    /// augmentation) instead of `model.qcfs_lambda_init`. Needs `model.activation = "qcfs"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qcfs_lambda_percentile: Option<f64>,
}

fn d_opt() -> OptimizerKind {
    OptimizerKind::Sgd
}
fn d_lr() -> f64 {
    0.1
}
fn d_momentum() -> f64 {
    0.9
}
fn d_wd() -> f64 {
    5e-4
}
fn d_schedule() -> Schedule {
    Schedule::Cosine
}
fn d_gamma() -> f64 {
    0.1
}
fn d_batch() -> usize {
    128
}
fn d_epochs() -> usize {
    10
}

impl Default for TrainSection {
    fn default() -> Self {
        toml::from_str("").expect("all train fields have defaults")
    }
}

/// `[convert]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvertSection {
    /// Training images (first of a seeded shuffle, no augmentation) used to observe activations.
    #[serde(default = "d_calib")]
    pub calibration_images: usize,
    /// Batch size of the observation passes.
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// Convert once per evaluated T, calibrating methods that simulate at a calibration T
    /// (those that name their calibration-T parameter) at that T instead of their own; each
    /// T's accuracy then comes from the network calibrated for it. Other methods: one
    /// conversion as usual. Default false (not serialized then: cache keys unchanged).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub calibrate_at_eval_t: bool,
}

fn d_calib() -> usize {
    512
}

impl Default for ConvertSection {
    fn default() -> Self {
        Self { calibration_images: d_calib(), batch_size: d_batch(), calibrate_at_eval_t: false }
    }
}

/// One `[[method]]`: a `kind` with its parameters, an optional label (the name in
/// results.csv; defaults to the kind), the neuron in `[method.neuron]` (a `kind` and its
/// parameters, merged over the method's own neuron) and the readout in `[method.readout]`
/// (replaces the method's).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MethodEntry {
    /// Name in results.csv and the table.
    pub label: String,
    /// `[method.neuron]`: keys set on top of the method's neuron (empty: the method's).
    #[serde(skip_serializing_if = "toml::Table::is_empty")]
    pub neuron: toml::Table,
    /// `[method.readout]`: the readout (empty: the method's).
    #[serde(skip_serializing_if = "toml::Table::is_empty")]
    pub readout: toml::Table,
    /// Sweep values the method is restricted to, e.g. `["activation=qcfs"]`: the method runs
    /// only in variants whose label holds every listed `field=value` part (the field's last
    /// path component, as in the variant label); `field=a|b` holds for either value. Empty:
    /// every variant.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<String>,
    /// `eval_timesteps`: the T this method is evaluated at instead of `[eval] timesteps`
    /// (empty: those), e.g.
    /// a window-coded method at T ≤ 16 beside rate-coded baselines run to T = 1024.
    #[serde(rename = "eval_timesteps", skip_serializing_if = "Vec::is_empty")]
    pub timesteps: Vec<u32>,
    /// The method.
    #[serde(flatten)]
    pub config: MethodConfig,
}

impl MethodEntry {
    /// The spec's neuron and readout settings for the converter.
    pub fn overrides(&self) -> SpecOverrides {
        SpecOverrides { neuron: self.neuron.clone(), readout: self.readout.clone() }
    }

    /// Whether the method runs in the sweep variant labelled `variant` (see [`Self::when`]).
    pub fn applies_to(&self, variant: &str) -> bool {
        let parts: Vec<&str> = variant.split(',').collect();
        self.when.iter().all(|w| match w.split_once('=') {
            Some((field, values)) => values.split('|').any(|v| parts.contains(&format!("{field}={v}").as_str())),
            None => parts.contains(&w.as_str()),
        })
    }
}

impl<'de> Deserialize<'de> for MethodEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let label = match table.remove("label") {
            Some(toml::Value::String(s)) => Some(s),
            Some(other) => return Err(D::Error::custom(format!("`label` must be a string, got {other}"))),
            None => None,
        };
        let mut sub_table = |key: &str| match table.remove(key) {
            Some(toml::Value::Table(t)) => Ok(t),
            Some(other) => Err(D::Error::custom(format!("`{key}` must be a table, got {other}"))),
            None => Ok(toml::Table::new()),
        };
        let neuron = sub_table("neuron")?;
        let readout = sub_table("readout")?;
        let when = match table.remove("when") {
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s),
                    other => Err(D::Error::custom(format!("`when` entries must be strings, got {other}"))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => return Err(D::Error::custom(format!("`when` must be a list of strings, got {other}"))),
            None => Vec::new(),
        };
        let timesteps = match table.remove("eval_timesteps") {
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .map(|v| match v.as_integer() {
                    Some(t) if t >= 1 => Ok(t as u32),
                    _ => Err(D::Error::custom(format!("`eval_timesteps` entries must be integers ≥ 1, got {v}"))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err(D::Error::custom(format!("`eval_timesteps` must be a list of integers, got {other}")));
            }
            None => Vec::new(),
        };
        if !table.contains_key("kind") {
            let kinds: Vec<&str> = convert::method_kinds().iter().map(|k| k.name).collect();
            return Err(D::Error::custom(format!("missing `kind`; valid kinds: {}", kinds.join(", "))));
        }
        let config = MethodConfig::parse(&table).map_err(D::Error::custom)?;
        // Build the neuron and readout now, so that a bad `[method.neuron]` or
        // `[method.readout]` is an error of the spec, not of a later conversion.
        convert::method_neuron(&config, &neuron).map_err(D::Error::custom)?;
        convert::spec_readout(&config, &readout).map_err(D::Error::custom)?;
        let label = label.unwrap_or_else(|| config.kind().to_string());
        Ok(Self { label, neuron, readout, when, timesteps, config })
    }
}

/// `[eval]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// Time steps at which accuracy is reported.
    pub timesteps: Vec<u32>,
    /// Test images per simulation batch.
    #[serde(default = "d_eval_batch")]
    pub batch_size: usize,
    /// Steps per network pass (T folded into the batch in chunks of this many steps).
    #[serde(default = "d_chunk")]
    pub chunk: usize,
    /// Evaluate on a fixed subset of the test set (ANN and SNN alike).
    #[serde(default)]
    pub test_subset: Option<TestSubset>,
    /// Per-layer analysis against the ANN: `activation_error` (mean |ANN activation − the
    /// SNN's time-averaged output| per slot) and `sin_ratio` (the share of neurons whose ANN
    /// activation is ≤ 0 that have spiked by step t; He et al. 2023's SIN ratio), per slot and
    /// for the whole network. Costs one ANN forward per batch.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub layer_analysis: bool,
    /// Exact-prefix analysis: for k = 1..L, the accuracy of the converted network with its
    /// first k slots replaced by the ANN's ReLU (`analog` neurons: exact up to slot k,
    /// spiking after it), `accuracy_exact_to` with layer = the last exact slot. The rise from
    /// one slot to the next is what spiking in that slot costs. L more simulations per
    /// evaluated network.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exact_prefix_analysis: bool,
    /// For methods with an early-exit readout: accuracy against mean exit step of whole
    /// families of exit rules (fixed T, one uniform threshold on the summed or on the averaged
    /// output, the readout's own per-step thresholds shifted, the stable-prediction oracle),
    /// replayed from one simulation (`runner::exit_frontier`): metrics
    /// `frontier_accuracy`/`frontier_mean_step` per rule, `frontier_fewest_steps_<family>`
    /// and `frontier_speedup_<family>` per family.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exit_frontier: bool,
    /// Simulation engine: `auto` (the default: on the CPU, `event` where the network has a
    /// layer graph, else `dense`; on another device (`--device wgpu`), `dense` with plain
    /// integrate-and-fire layers stepped on the device), `event` (the event-driven engine on
    /// the network's layer graph, on the CPU, synaptic work proportional to the spikes; an
    /// error for networks without one) or `dense` (burn's layers with T folded into the
    /// batch). All compute the same dynamics; sums differ only in the order of float additions.
    #[serde(default)]
    pub engine: Engine,
}

/// `[eval] engine`: which simulator runs the converted network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// On the CPU, `event` where the network has a layer graph, else `dense`; elsewhere `dense`.
    #[default]
    Auto,
    /// The event-driven engine (`snn::sparse`).
    Event,
    /// burn's dense layers, T folded into the batch.
    Dense,
}

fn d_eval_batch() -> usize {
    100
}
fn d_chunk() -> usize {
    16
}

/// A fixed test subset: `{ first = N }` or `{ sample = N, seed = S }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSubset {
    /// The first N test images.
    #[serde(default)]
    pub first: Option<usize>,
    /// N test images drawn without replacement with `seed`.
    #[serde(default)]
    pub sample: Option<usize>,
    /// Seed of `sample`.
    #[serde(default)]
    pub seed: u64,
    /// The last N test images: a held-out part for choosing settings, disjoint from a
    /// `first` subset of the other specs as long as the two together fit the test set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<usize>,
}

/// `[[sweep]]`: one field (`field`) or several zipped fields (`fields`) and their values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// A single dotted path, e.g. `method.robust-norm.percentile` or `train.lr`.
    #[serde(default)]
    pub field: Option<String>,
    /// Several paths swept together (zipped); `values` is then a list of lists.
    #[serde(default)]
    pub fields: Vec<String>,
    /// The values.
    pub values: Vec<toml::Value>,
}

/// Reads and validates a spec file, applying `--set key=value` overrides first.
/// Returns the raw (override-applied) TOML and the parsed spec.
pub fn load_spec(file: &Path, overrides: &[String]) -> Result<(toml::Table, Spec), SpecError> {
    let text = std::fs::read_to_string(file).map_err(|source| SpecError::Io { file: file.into(), source })?;
    let mut raw: toml::Table =
        toml::from_str(&text).map_err(|e| SpecError::Syntax { file: file.into(), message: e.to_string() })?;
    let original = (!overrides.is_empty()).then(|| raw.clone());
    for o in overrides {
        let (path, value) = o.split_once('=').ok_or_else(|| SpecError::Field {
            file: file.into(),
            path: o.clone(),
            message: "--set expects key=value".into(),
        })?;
        let value = parse_value(value);
        set_path(&mut raw, path.trim(), value).map_err(|message| SpecError::Field {
            file: file.into(),
            path: path.trim().into(),
            message,
        })?;
    }
    let spec = parse_table(file, &raw).map_err(|e| match &original {
        // The spec as written is valid: the `--set` values are at fault, say so.
        Some(original) if parse_table(file, original).is_ok() => {
            let message = e.to_string();
            let prefix = format!("{}: ", file.display());
            SpecError::Override {
                overrides: overrides.join(" "),
                file: file.into(),
                message: message.strip_prefix(&prefix).unwrap_or(&message).to_string(),
            }
        }
        _ => e,
    })?;
    Ok((raw, spec))
}

/// Parses a value written on the command line: TOML if it parses, else a string.
pub fn parse_value(text: &str) -> toml::Value {
    let text = text.trim();
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

/// Deserializes and validates a raw table into a spec.
pub fn parse_table(file: &Path, raw: &toml::Table) -> Result<Spec, SpecError> {
    let raw = with_ann_sections(file, raw)?;
    let spec: Spec = serde_path_to_error::deserialize(toml::Value::Table(raw)).map_err(|e| {
        let path = e.path().to_string();
        SpecError::Field { file: file.into(), path, message: e.into_inner().to_string() }
    })?;
    validate(file, &spec)?;
    Ok(spec)
}

/// The sections an ANN is made of (what `ann` takes from the spec it names).
const ANN_SECTIONS: [&str; 3] = ["dataset", "model", "train"];

/// `raw` with the `[dataset]`, `[model]` and `[train]` of the spec its `ann` names (resolved
/// against `file`'s directory); `raw` itself when it has no `ann`.
fn with_ann_sections(file: &Path, raw: &toml::Table) -> Result<toml::Table, SpecError> {
    let field = |message: String| SpecError::Field { file: file.into(), path: "ann".into(), message };
    let Some(ann) = raw.get("ann") else { return Ok(raw.clone()) };
    let ann = ann.as_str().ok_or_else(|| field("expected the path of a spec file (a string)".into()))?;
    if let Some(own) = ANN_SECTIONS.iter().find(|s| raw.contains_key(**s)) {
        return Err(field(format!(
            "the spec takes [dataset], [model] and [train] from `{ann}`; remove its own [{own}] (or drop `ann`)"
        )));
    }
    let path = file.parent().unwrap_or(Path::new(".")).join(ann);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| field(format!("cannot read `{}` (resolved against the spec's directory): {e}", path.display())))?;
    let other: toml::Table =
        toml::from_str(&text).map_err(|e| field(format!("`{}` is not valid TOML: {e}", path.display())))?;
    if other.contains_key("ann") {
        return Err(field(format!("`{}` has an `ann` of its own; name the spec that defines the ANN", path.display())));
    }
    let mut merged = raw.clone();
    for section in ANN_SECTIONS {
        if let Some(t) = other.get(section) {
            merged.insert(section.into(), t.clone());
        }
    }
    Ok(merged)
}

/// The largest T a spec may ask for (a run of 65,536 steps already takes days on a CPU).
pub const MAX_TIMESTEPS: u32 = 1 << 16;

fn validate(file: &Path, spec: &Spec) -> Result<(), SpecError> {
    let err = |path: &str, message: String| Err(SpecError::Field { file: file.into(), path: path.into(), message });
    let is_points = datasets::is_point_dataset(&spec.dataset.name);
    let is_events = datasets::EVENT_DATASET_NAMES.contains(&spec.dataset.name.as_str());
    let is_real_dense = datasets::dense::is_real_dense(&spec.dataset.name);
    let is_dense = spec.dataset.name == datasets::synthetic_detection::NAME || is_real_dense;
    if !datasets::DATASET_NAMES.contains(&spec.dataset.name.as_str()) && !is_points && !is_events && !is_dense {
        let valid: Vec<&str> = datasets::DATASET_NAMES
            .iter()
            .chain(datasets::POINT_DATASET_NAMES)
            .chain(datasets::EVENT_DATASET_NAMES)
            .chain(&[datasets::synthetic_detection::NAME])
            .chain(&datasets::dense::REAL_DENSE_NAMES)
            .copied()
            .collect();
        return err("dataset.name", format!("unknown dataset `{}`; valid: {}", spec.dataset.name, valid.join(", ")));
    }
    if is_points && (spec.dataset.normalization.is_some() || spec.dataset.synthetic.is_some()) {
        return err(
            "dataset",
            format!(
                "`{}` is a point-cloud set: it takes [dataset.points] options (clouds are centred and scaled \
                 to the unit sphere), not `normalization` or `synthetic`",
                spec.dataset.name
            ),
        );
    }
    if let Some(d) = &spec.dataset.detection {
        if spec.dataset.name != datasets::synthetic_detection::NAME {
            return err(
                "dataset.detection",
                format!(
                    "[dataset.detection] holds options of `{}`, not of `{}`",
                    datasets::synthetic_detection::NAME,
                    spec.dataset.name
                ),
            );
        }
        if let Err(e) = d.validate() {
            return err("dataset.detection", e.to_string());
        }
    }
    if let Some(d) = &spec.dataset.dense {
        if !is_real_dense {
            return err(
                "dataset.dense",
                format!(
                    "[dataset.dense] holds options of the real dense sets ({}), not of `{}`",
                    datasets::dense::REAL_DENSE_NAMES.join(", "),
                    spec.dataset.name
                ),
            );
        }
        if let Err(e) = d.validate(&spec.dataset.name) {
            return err("dataset.dense", e.to_string());
        }
        if !d.image_size.is_multiple_of(zoo::DENSE_STRIDE) {
            return err(
                "dataset.dense.image_size",
                format!(
                    "{} is not a multiple of {}, the stride of the detection and segmentation networks",
                    d.image_size,
                    zoo::DENSE_STRIDE
                ),
            );
        }
    }
    // The segmenter learns label maps, which VOC has for its segmentation splits only.
    if spec.dataset.name == datasets::voc::NAME
        && spec.model.name == "fcn-vgg"
        && spec.dataset.dense.as_ref().and_then(|d| d.task).unwrap_or_default() != datasets::voc::VocTask::Segmentation
    {
        return err(
            "dataset.dense.task",
            "`fcn-vgg` learns per-pixel labels, which VOC gives for its segmentation splits only: set \
             [dataset.dense] task = \"segmentation\""
                .into(),
        );
    }
    if spec.dataset.train_subset == Some(0) {
        return err(
            "dataset.train_subset",
            "0 training images leave nothing to train or calibrate on: take at least 1 (leave it out for the whole split)"
                .into(),
        );
    }
    if let Some(s) = &spec.dataset.synthetic {
        for (key, value) in [("train_size", s.train_size), ("test_size", s.test_size), ("image_size", s.image_size)] {
            if value == 0 {
                return err(&format!("dataset.synthetic.{key}"), "must be at least 1".into());
            }
        }
    }
    if !is_points && spec.dataset.points.is_some() {
        return err("dataset.points", format!("`{}` is not a point-cloud set", spec.dataset.name));
    }
    match (&spec.dataset.events, is_events) {
        (Some(_), false) => {
            return err("dataset.events", format!("`{}` is not an event-frame set", spec.dataset.name));
        }
        (None, true) => {
            return err(
                "dataset.events",
                format!("`{}` needs [dataset.events] frames = N (SpikingJelly's frames_number)", spec.dataset.name),
            );
        }
        (Some(e), true) if e.frames == 0 || e.max_per_class == Some(0) => {
            return err("dataset.events", "frames and max_per_class must be at least 1".into());
        }
        _ => {}
    }
    if !zoo::MODEL_NAMES.contains(&spec.model.name.as_str()) {
        return err(
            "model.name",
            format!("unknown model `{}`; valid: {}", spec.model.name, zoo::MODEL_NAMES.join(", ")),
        );
    }
    let dense_model = zoo::DENSE_MODEL_NAMES.contains(&spec.model.name.as_str());
    // A part segmenter reads a part per point; classifiers learn a part set's categories.
    let part_model = spec.model.name == crate::data::PART_SEGMENTER;
    if part_model && !datasets::PART_DATASET_NAMES.contains(&spec.dataset.name.as_str()) {
        return err(
            "model.name",
            format!(
                "`{}` scores a part per point: it needs point clouds with part labels ({}), not `{}`",
                spec.model.name,
                datasets::PART_DATASET_NAMES.join(", "),
                spec.dataset.name
            ),
        );
    }
    if dense_model != is_dense && !part_model {
        let message = if dense_model {
            format!(
                "`{}` predicts boxes or per-pixel classes: it needs a data set with dense labels (`{}`, {}), not `{}`",
                spec.model.name,
                datasets::synthetic_detection::NAME,
                datasets::dense::REAL_DENSE_NAMES.map(|n| format!("`{n}`")).join(", "),
                spec.dataset.name
            )
        } else {
            format!(
                "`{}` holds boxes and masks, not one label per image: use a detection or segmentation model ({}), \
                 not the classifier `{}`",
                spec.dataset.name,
                zoo::DENSE_MODEL_NAMES.join(", "),
                spec.model.name
            )
        };
        return err("model.name", message);
    }
    if dense_model {
        // Dense prediction scores the readout's real-valued outputs, which a decoding readout lacks.
        for (i, m) in spec.methods.iter().enumerate() {
            let kind = match m.readout.get("kind") {
                Some(kind) => kind.as_str().map(str::to_string),
                None => m.config.method().readout_kind().map(str::to_string),
            };
            let readout = kind.as_deref().unwrap_or("accumulate");
            let mut table = m.readout.clone();
            table.insert("kind".into(), readout.into());
            if let Ok(r) = snn::readout::build_readout(&table)
                && r.new_state(1, 1).outputs().is_none()
            {
                return err(
                    &format!("method[{i}].readout"),
                    format!(
                        "the readout `{readout}` gives predicted classes only; `{}` scores real-valued outputs \
                         (use `accumulate` or `delayed`)",
                        spec.model.name
                    ),
                );
            }
        }
    }
    if !(spec.model.width > 0.0 && spec.model.width.is_finite()) {
        return err("model.width", format!("must be a positive number, got {}", spec.model.width));
    }
    if spec.eval.timesteps.is_empty() || spec.eval.timesteps.contains(&0) {
        return err("eval.timesteps", "needs at least one time step, all ≥ 1".into());
    }
    let too_long = |ts: &[u32]| ts.iter().copied().find(|t| *t > MAX_TIMESTEPS);
    if let Some(t) = too_long(&spec.eval.timesteps) {
        return err("eval.timesteps", format!("T = {t} is above the limit of {MAX_TIMESTEPS} steps"));
    }
    let early_exit = <snn::readout::early_exit::EarlyExit as snn::RegisteredReadout>::KIND;
    let exits_early = |m: &MethodEntry| match m.readout.get("kind") {
        Some(kind) => kind.as_str() == Some(early_exit),
        None => m.config.method().readout_kind() == Some(early_exit),
    };
    if spec.eval.exit_frontier && !spec.methods.iter().any(exits_early) {
        return err(
            "eval.exit_frontier",
            format!(
                "no method has an `{early_exit}` readout to replay (e.g. adafire with iat = \"adaptive\", or \
                 [method.readout] kind = \"{early_exit}\")"
            ),
        );
    }
    for (i, m) in spec.methods.iter().enumerate() {
        if let Some(t) = too_long(&m.timesteps) {
            return err(
                &format!("method[{i}].eval_timesteps"),
                format!("T = {t} is above the limit of {MAX_TIMESTEPS} steps"),
            );
        }
    }
    if spec.train.epochs == 0 && spec.model.weights.is_none() {
        return err(
            "train.epochs",
            "0 epochs would evaluate an untrained network: train at least 1 epoch or import `model.weights`".into(),
        );
    }
    if spec.experiment.seeds.is_empty() {
        return err("experiment.seeds", "needs at least one seed".into());
    }
    for (k, v) in [
        ("train.batch_size", spec.train.batch_size),
        ("eval.batch_size", spec.eval.batch_size),
        ("eval.chunk", spec.eval.chunk),
        ("convert.batch_size", spec.convert.batch_size),
        ("convert.calibration_images", spec.convert.calibration_images),
    ] {
        if v == 0 {
            return err(k, "must be at least 1".into());
        }
    }
    if !(spec.train.lr > 0.0 && spec.train.lr.is_finite()) {
        return err("train.lr", format!("must be a positive number, got {}", spec.train.lr));
    }
    if let Some(p) = spec.train.qcfs_lambda_percentile {
        if !(p > 0.0 && p <= 100.0) {
            return err("train.qcfs_lambda_percentile", format!("must be in (0, 100], got {p}"));
        }
        if spec.model.activation != zoo::AnnActivation::Qcfs {
            return err("train.qcfs_lambda_percentile", "needs `model.activation = \"qcfs\"`".into());
        }
    }
    if let Some(AugmentChoice::Images(a)) = &spec.train.augment {
        if is_points || is_dense || is_events {
            return err(
                "train.augment",
                format!(
                    "a crop/flip table applies to image classification data, not `{}` (use true or false)",
                    spec.dataset.name
                ),
            );
        }
        if a.crop_padding == 0 && !a.horizontal_flip {
            return err("train.augment", "crops nothing and flips nothing: write `false` for no augmentation".into());
        }
    }
    if spec.train.init_weights.is_some() && spec.model.weights.is_some() {
        return err("train.init_weights", "give either `model.weights` (no training) or `train.init_weights`".into());
    }
    if let Some(s) = &spec.eval.test_subset
        && [s.first, s.sample, s.last].iter().filter(|k| k.is_some()).count() != 1
    {
        return err("eval.test_subset", "give exactly one of `first`, `last` or `sample`".into());
    }
    if let Some(s) = &spec.eval.test_subset
        && (s.first == Some(0) || s.sample == Some(0) || s.last == Some(0))
    {
        return err("eval.test_subset", "an empty test subset evaluates nothing: take at least 1 image".into());
    }
    let mut labels = std::collections::HashSet::new();
    for (i, m) in spec.methods.iter().enumerate() {
        if !labels.insert(m.label.clone()) {
            return err(&format!("method[{i}].label"), format!("duplicate method label `{}`", m.label));
        }
    }
    if spec.methods.is_empty() {
        return err("method", "needs at least one [[method]]".into());
    }
    for (i, s) in spec.sweeps.iter().enumerate() {
        if s.field.is_some() != s.fields.is_empty() {
            return err(&format!("sweep[{i}]"), "give exactly one of `field` or `fields`".into());
        }
        if s.values.is_empty() {
            return err(&format!("sweep[{i}].values"), "needs at least one value".into());
        }
    }
    spec.table.validate().or_else(|e| err("table", e.to_string()))?;
    Ok(())
}

/// Sets a dotted path in a raw spec. `method.<label-or-kind>.<key>...` addresses every
/// `[[method]]` whose label (or kind, when it has no label) matches.
pub fn set_path(raw: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = path.split('.').collect();
    if parts == ["ann"] {
        raw.insert("ann".into(), value);
        return Ok(());
    }
    if parts.len() < 2 {
        return Err("expected a dotted path like `train.epochs` (or `ann`)".into());
    }
    if parts[0] == "method" {
        if parts.len() < 3 {
            return Err("expected `method.<label or kind>.<field>`".into());
        }
        let methods = raw.get_mut("method").and_then(|m| m.as_array_mut()).ok_or("the spec has no [[method]]")?;
        let mut hit = false;
        for m in methods.iter_mut().filter_map(|m| m.as_table_mut()) {
            let name = m.get("label").or_else(|| m.get("kind")).and_then(|v| v.as_str()).unwrap_or_default();
            if name == parts[1] {
                set_in(m, &parts[2..], value.clone());
                hit = true;
            }
        }
        return if hit { Ok(()) } else { Err(format!("no [[method]] with label or kind `{}`", parts[1])) };
    }
    set_in(raw, &parts, value);
    Ok(())
}

fn set_in(table: &mut toml::Table, parts: &[&str], value: toml::Value) {
    if parts.len() == 1 {
        table.insert(parts[0].to_string(), value);
        return;
    }
    let entry = table.entry(parts[0].to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if !entry.is_table() {
        *entry = toml::Value::Table(toml::Table::new());
    }
    set_in(entry.as_table_mut().expect("just made a table"), &parts[1..], value);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[dataset]
name = "synthetic-shapes2d"
[model]
name = "small-cnn"
[[method]]
kind = "robust-norm"
percentile = 99.0
[eval]
timesteps = [4, 8]
"#;

    fn parse(text: &str) -> Result<Spec, SpecError> {
        let raw: toml::Table = toml::from_str(text).unwrap();
        parse_table(Path::new("x.toml"), &raw)
    }

    #[test]
    fn qcfs_lambda_percentile_needs_a_qcfs_model_and_a_valid_percentile() {
        let relu = parse(&format!("{MINIMAL}\n[train]\nqcfs_lambda_percentile = 99.0")).unwrap_err().to_string();
        assert!(relu.contains("train.qcfs_lambda_percentile") && relu.contains("qcfs"), "{relu}");
        let qcfs = MINIMAL.replace("name = \"small-cnn\"", "name = \"small-cnn\"\nactivation = \"qcfs\"");
        let bad = parse(&format!("{qcfs}\n[train]\nqcfs_lambda_percentile = 0.0")).unwrap_err().to_string();
        assert!(bad.contains("(0, 100]"), "{bad}");
        let ok = parse(&format!("{qcfs}\n[train]\nqcfs_lambda_percentile = 99.9\ninit_weights = \"w.safetensors\""))
            .unwrap();
        assert_eq!(ok.train.qcfs_lambda_percentile, Some(99.9));
        let imported = qcfs.replace("activation = \"qcfs\"", "activation = \"qcfs\"\nweights = \"a.safetensors\"");
        let both = parse(&format!("{imported}\n[train]\ninit_weights = \"w.safetensors\""));
        assert!(both.unwrap_err().to_string().contains("train.init_weights"));
    }

    #[test]
    fn train_augment_takes_a_bool_or_an_image_table_and_keeps_the_bool_cache_form() {
        let table =
            parse(&format!("{MINIMAL}\n[train]\naugment = {{ crop_padding = 2, horizontal_flip = true }}")).unwrap();
        assert_eq!(
            table.train.augment,
            Some(AugmentChoice::Images(ImageAugment { crop_padding: 2, horizontal_flip: true }))
        );
        // A bool serialises as a bool: the training cache key of specs written before the
        // table form existed does not move.
        let on = parse(&format!("{MINIMAL}\n[train]\naugment = true")).unwrap();
        assert_eq!(on.train.augment, Some(AugmentChoice::DatasetDefault(true)));
        assert_eq!(serde_json::to_value(&on.train).unwrap()["augment"], serde_json::json!(true));
        let typo = parse(&format!("{MINIMAL}\n[train]\naugment = {{ crop = 2 }}")).unwrap_err().to_string();
        assert!(typo.contains("crop") && typo.contains("crop_padding"), "{typo}");
        let nothing = parse(&format!("{MINIMAL}\n[train]\naugment = {{ crop_padding = 0 }}")).unwrap_err().to_string();
        assert!(nothing.contains("train.augment") && nothing.contains("false"), "{nothing}");
        let points = MINIMAL.replace("synthetic-shapes2d", "synthetic-shapes3d").replace("small-cnn", "pointnet");
        let on_points = parse(&format!("{points}\n[train]\naugment = {{ crop_padding = 2 }}")).unwrap_err().to_string();
        assert!(on_points.contains("train.augment") && on_points.contains("synthetic-shapes3d"), "{on_points}");
    }

    #[test]
    fn minimal_spec_parses_with_defaults() {
        let s = parse(MINIMAL).unwrap();
        assert_eq!(s.methods[0].label, "robust-norm");
        assert_eq!(s.train.epochs, 10);
        assert_eq!(s.experiment.seeds, vec![0]);
    }

    /// The serialized method entry is part of every evaluation cache key: new fields must
    /// stay out of it at their defaults, or every cached evaluation is silently recomputed.
    /// (The neuron table replaced the old per-field neuron overrides once, with the engine's
    /// neuron files.)
    #[test]
    fn method_entries_serialize_with_defaults_and_without_unset_tables() {
        let text = MINIMAL.replace(
            "[eval]",
            "[[method]]\nkind = \"channel-norm\"\nlabel = \"cn\"\n[method.neuron]\nv_init = \"half\"\n[eval]",
        );
        let s = parse(&text).unwrap();
        let json = serde_json::to_string(&s.methods[1]).unwrap();
        assert_eq!(json, r#"{"label":"cn","neuron":{"v_init":"half"},"kind":"channel-norm","percentile":99.9}"#);
    }

    #[test]
    fn imagenet_options_parse_and_stay_out_of_other_keys() {
        let s = parse(MINIMAL).unwrap();
        assert_eq!(s.dataset.imagenet, None);
        assert!(!serde_json::to_string(&s.dataset).unwrap().contains("imagenet"), "cache keys unchanged");
        let text = MINIMAL
            .replace("synthetic-shapes2d", "imagenet")
            .replace("small-cnn", "resnet18")
            .replace("[model]", "[dataset.imagenet]\nmax_per_class = 10\n[model]");
        let s = parse(&text).unwrap();
        let o = s.dataset.imagenet.unwrap();
        assert_eq!((o.image_size, o.resize, o.max_per_class), (224, 256, Some(10)));
        assert_eq!(s.model.name, "resnet18");
    }

    #[test]
    fn unknown_key_names_file_and_path() {
        let e = parse(&MINIMAL.replace("[eval]", "[eval]\nbogus = 1")).unwrap_err().to_string();
        assert!(e.contains("x.toml") && e.contains("eval") && e.contains("bogus"), "{e}");
        let e = parse(&format!("{MINIMAL}\n[train]\nepochs = \"ten\"")).unwrap_err().to_string();
        assert!(e.contains("train.epochs"), "{e}");
    }

    #[test]
    fn unknown_names_list_the_choices() {
        let e = parse(&MINIMAL.replace("small-cnn", "resnet99")).unwrap_err().to_string();
        assert!(e.contains("model.name") && e.contains("resnet20-he"), "{e}");
        let e = parse(&MINIMAL.replace("robust-norm", "magic-norm")).unwrap_err().to_string();
        assert!(e.contains("method") && e.contains("max-norm"), "{e}");
        let e = parse(&MINIMAL.replace("percentile = 99.0", "percentile = 99.0\nalpha = 1")).unwrap_err().to_string();
        assert!(e.contains("alpha"), "{e}");
    }

    #[test]
    fn ann_takes_the_ann_sections_of_another_spec_and_sweeps_over_files() {
        let dir = tempfile::tempdir().unwrap();
        let reference = "[dataset]\nname = \"synthetic-shapes2d\"\n[model]\nname = \"small-cnn\"\nwidth = 0.5\n[train]\nepochs = 3\n[eval]\ntimesteps = [4]\n";
        std::fs::write(dir.path().join("ref_a.toml"), reference).unwrap();
        std::fs::write(dir.path().join("ref_b.toml"), reference.replace("epochs = 3", "epochs = 5")).unwrap();
        let user = "ann = \"ref_a.toml\"\n[[method]]\nkind = \"max-norm\"\n[eval]\ntimesteps = [8]\n";
        let file = dir.path().join("user.toml");
        std::fs::write(&file, user).unwrap();
        let (raw, spec) = load_spec(&file, &[]).unwrap();
        assert_eq!((spec.model.width, spec.train.epochs, spec.eval.timesteps.clone()), (0.5, 3, vec![8]));
        // The resolved spec stands alone: it holds the sections, not `ann`.
        let resolved = toml::to_string(&spec).unwrap();
        assert!(!resolved.contains("ann =") && resolved.contains("[model]"), "{resolved}");
        // A sweep over `ann` gives one variant per reference, named by its file stem.
        std::fs::write(&file, format!("{user}[[sweep]]\nfield = \"ann\"\nvalues = [\"ref_a.toml\", \"ref_b.toml\"]\n"))
            .unwrap();
        let (raw2, spec2) = load_spec(&file, &[]).unwrap();
        let variants = crate::plan::expand(&file, &raw2, &spec2).unwrap();
        let got: Vec<(String, usize)> = variants.iter().map(|v| (v.label.clone(), v.spec.train.epochs)).collect();
        assert_eq!(got, vec![("ann=ref_a".to_string(), 3), ("ann=ref_b".to_string(), 5)]);
        let _ = raw;
        // Its own [model] beside `ann` is an error naming the key; so is a missing file.
        std::fs::write(&file, format!("{user}[model]\nname = \"small-cnn\"\n")).unwrap();
        let e = load_spec(&file, &[]).unwrap_err().to_string();
        assert!(e.contains("`ann`") && e.contains("[model]"), "{e}");
        std::fs::write(&file, user.replace("ref_a", "missing")).unwrap();
        let e = load_spec(&file, &[]).unwrap_err().to_string();
        assert!(e.contains("`ann`") && e.contains("missing.toml"), "{e}");
    }

    #[test]
    fn bad_set_values_are_blamed_on_the_command_line_and_width_must_be_positive() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, MINIMAL).unwrap();
        let e = load_spec(&file, &["train.epochs=abc".into()]).unwrap_err().to_string();
        assert!(e.starts_with("--set train.epochs=abc (on ") && e.contains("`train.epochs`"), "{e}");
        let e = load_spec(&file, &["model.width=0".into()]).unwrap_err().to_string();
        assert!(e.contains("--set model.width=0") && e.contains("`model.width`") && e.contains("positive"), "{e}");
        // A spec that is wrong as written is still blamed on the file.
        std::fs::write(&file, MINIMAL.replace("name = \"small-cnn\"", "name = \"small-cnn\"\nwidth = -1")).unwrap();
        let e = load_spec(&file, &["train.epochs=2".into()]).unwrap_err().to_string();
        assert!(e.starts_with(&file.display().to_string()) && e.contains("`model.width`"), "{e}");
    }

    #[test]
    fn empty_subsets_untrained_networks_and_huge_t_are_spec_errors() {
        let e = parse(&format!("{MINIMAL}\ntest_subset = {{ first = 0 }}")).unwrap_err().to_string();
        assert!(e.contains("eval.test_subset") && e.contains("empty"), "{e}");
        let e = parse(&format!("{MINIMAL}\ntest_subset = {{ last = 0 }}")).unwrap_err().to_string();
        assert!(e.contains("eval.test_subset") && e.contains("empty"), "{e}");
        let e = parse(&format!("{MINIMAL}\ntest_subset = {{ first = 5, last = 5 }}")).unwrap_err().to_string();
        assert!(e.contains("eval.test_subset") && e.contains("exactly one"), "{e}");
        parse(&format!("{MINIMAL}\ntest_subset = {{ last = 5 }}")).expect("the last 5 images");
        let e = parse(&MINIMAL.replace("timesteps = [4, 8]", "timesteps = [4, 100000]")).unwrap_err().to_string();
        assert!(e.contains("eval.timesteps") && e.contains("65536"), "{e}");
        let e = parse(&format!("{MINIMAL}\n[train]\nepochs = 0")).unwrap_err().to_string();
        assert!(e.contains("train.epochs"), "{e}");
        let imported = MINIMAL.replace("name = \"small-cnn\"", "name = \"small-cnn\"\nweights = \"w.bpk\"");
        parse(&format!("{imported}\n[train]\nepochs = 0")).expect("imported weights need no training");
    }

    #[test]
    fn set_path_reaches_methods_and_sections() {
        let mut raw: toml::Table = toml::from_str(MINIMAL).unwrap();
        set_path(&mut raw, "method.robust-norm.percentile", parse_value("99.9")).unwrap();
        set_path(&mut raw, "train.epochs", parse_value("1")).unwrap();
        set_path(&mut raw, "method.robust-norm.neuron.reset", parse_value("hard")).unwrap();
        let s = parse_table(Path::new("x.toml"), &raw).unwrap();
        assert_eq!(s.train.epochs, 1);
        assert_eq!(s.methods[0].neuron["reset"].as_str(), Some("hard"));
        assert_eq!(s.methods[0].config.params()["percentile"].as_float(), Some(99.9));
        assert!(set_path(&mut raw, "method.nope.x", parse_value("1")).is_err());
    }
}
