//! `runner export`: a spec's ANN converted with one of its methods, written for other tools
//! (NIR, the Neuromorphic Intermediate Representation).
//!
//! The ANN comes from the cache or the committed checkpoints (or the spec's imported weights):
//! export never trains; run the spec first. The conversion uses the spec's calibration images,
//! seed and method settings, as a run does, so the exported thresholds are the ones behind the
//! spec's table (a method calibrated per T is calibrated at the exported T).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use datasets::DataRoot;
use zoo::Convertible;

use crate::cache::{Cache, write_file};
use crate::data::{Data, calibration_batches};
use crate::evaluate::config_at;

use crate::plan::{Variant, expand};
use crate::run::{RunOptions, SHIPPED_CHECKPOINTS_DIR, with_resolved_weights};
use crate::spec::{MethodEntry, Spec, load_spec};
use crate::train::{TrainedAnn, train_key, train_or_load};

/// Formats `runner export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// NIR 1.0 (HDF5), as `nir.read` loads it.
    Nir,
}

/// What to export.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    /// The spec file.
    pub spec: PathBuf,
    /// The method's label in the spec.
    pub method: String,
    /// The variant's label (needed when the spec has sweeps).
    pub variant: Option<String>,
    /// The seed (default: the spec's first).
    pub seed: Option<u64>,
    /// T the network is exported for (default: the method's largest evaluated T).
    pub timesteps: Option<u32>,
    /// Output file.
    pub out: PathBuf,
    /// File format.
    pub format: ExportFormat,
}

/// Converts and writes the network `request` names; returns a one-line summary.
pub fn export(request: &ExportRequest, opts: &RunOptions) -> Result<String> {
    let file = &request.spec;
    let (raw, spec) = load_spec(file, &opts.overrides)?;
    let variants = expand(file, &raw, &spec)?;
    let (variant, method) = select_method(file, &variants, &request.method, request.variant.as_deref())?;
    // What the method's neurons and the model can never export is said before any work.
    let neuron = convert::method_neuron(&method.config, &method.overrides().neuron)?;
    let cannot =
        |why: String| anyhow::anyhow!("{}: method `{}` cannot be exported to NIR: {why}", file.display(), method.label);
    match neuron.plain_if() {
        Err(why) => return Err(cannot(why)),
        Ok(form) if form.initial_potential != 0.0 => {
            return Err(cannot(
                "its neurons start from a non-zero potential, and NIR 1.0 nodes have no initial state".into(),
            ));
        }
        Ok(_) => {}
    }
    let seed = request.seed.unwrap_or(spec.experiment.seeds[0]);
    let root = DataRoot::from_env(opts.data_dir.clone());
    let spec = with_resolved_weights(&variant.spec, &root)?;
    let device = crate::device::select_device(&opts.device_name)?;
    let data = Data::load(&spec.dataset, &root)?;
    let untrained = zoo::build_model(&spec.model, data.input_shape(), data.model_classes(&spec.model), &device)?;
    untrained.fold_batchnorm().layer_graph(data.input_shape()).map_err(|e| cannot(e.to_string()))?;
    let ann = load_trained(file, &spec, seed, &data, opts, &device)?;
    let evaluated = if method.timesteps.is_empty() { &spec.eval.timesteps } else { &method.timesteps };
    let t = request.timesteps.or_else(|| evaluated.iter().copied().max()).unwrap_or(1);
    let config = config_at(method, &spec.convert, t)?;
    let calib = calibration_batches(&data, spec.convert.calibration_images, spec.convert.batch_size, seed, &device);
    let conversion = convert::convert(&ann.model, &config, &method.overrides(), &calib)
        .with_context(|| format!("converting with `{}`", method.label))?;
    let (bytes, summary) = match request.format {
        ExportFormat::Nir => {
            let graph = snn::nir::to_nir(&conversion.network, data.input_shape(), t as usize)
                .with_context(|| format!("method `{}` of {}", method.label, file.display()))?;
            (snn::nir::write_nir(&graph)?, nir_summary(&graph))
        }
    };
    write_file(&request.out, &bytes)?;
    write_file(&summary_path(&request.out), serde_json::to_string_pretty(&summary)?.as_bytes())?;
    Ok(format!(
        "wrote {} ({} bytes) and {}: `{}` on {} ({}), T = {t}, seed {seed}",
        request.out.display(),
        bytes.len(),
        summary_path(&request.out).display(),
        method.label,
        spec.model.name,
        spec.dataset.name
    ))
}

/// The variant (by label; needed when the spec has sweeps) and the method (by label) of a spec.
pub(crate) fn select_method<'a>(
    file: &Path,
    variants: &'a [Variant],
    method: &str,
    variant: Option<&str>,
) -> Result<(&'a Variant, &'a MethodEntry)> {
    let labels = || variants.iter().map(|v| format!("`{}`", v.label)).collect::<Vec<_>>().join(", ");
    let variant = match variant {
        Some(label) => variants
            .iter()
            .find(|v| v.label == label)
            .with_context(|| format!("{}: no variant `{label}`; variants: {}", file.display(), labels()))?,
        None if variants.len() == 1 => &variants[0],
        None => bail!(
            "{}: the spec has {} variants; choose one with --variant: {}",
            file.display(),
            variants.len(),
            labels()
        ),
    };
    let found = variant.spec.methods.iter().filter(|m| m.applies_to(&variant.label)).find(|m| m.label == method);
    let Some(found) = found else {
        let known: Vec<&str> = variant.spec.methods.iter().map(|m| m.label.as_str()).collect();
        bail!("{}: no method `{method}`; methods: {}", file.display(), known.join(", "));
    };
    Ok((variant, found))
}

/// The trained ANN of `spec` (seed `seed`) from the cache, the committed checkpoints or the
/// spec's imported weights; an error when it would have to be trained first.
pub(crate) fn load_trained(
    file: &Path,
    spec: &Spec,
    seed: u64,
    data: &Data,
    opts: &RunOptions,
    device: &Device,
) -> Result<TrainedAnn> {
    let cache = Cache::new(&opts.cache_dir);
    let shipped = opts.results_dir.join(SHIPPED_CHECKPOINTS_DIR);
    if spec.model.weights.is_none() {
        let key = train_key(spec, seed, &data.train_fingerprint)?;
        let committed = shipped.join(format!("{key}.bpk")).exists();
        if !cache.is_done("train", &key) && !committed {
            bail!(
                "{}: the ANN (seed {seed}) is neither in the cache nor committed; run the spec first \
                 (`runner run {}`): this command never trains",
                file.display(),
                file.display()
            );
        }
    }
    train_or_load(spec, seed, data, &cache, device, &shipped)
}

/// `<out>.summary.json`, written beside every export.
pub fn summary_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".summary.json");
    out.with_file_name(name)
}

/// What another reader of the file must find: per node its type, integer fields, and per
/// float parameter its shape, sum and sum of absolute values; the edges; the metadata.
/// `scripts/check_nir.py` compares a file loaded by the Python `nir` package against it.
pub fn nir_summary(graph: &snn::nir::NirGraph) -> serde_json::Value {
    let nodes: serde_json::Map<String, serde_json::Value> = graph
        .nodes
        .iter()
        .map(|(name, node)| {
            let arrays: serde_json::Map<String, serde_json::Value> = node
                .arrays()
                .into_iter()
                .map(|(key, a)| {
                    let sum: f64 = a.values.iter().map(|&v| v as f64).sum();
                    let abs: f64 = a.values.iter().map(|&v| (v as f64).abs()).sum();
                    (key.to_string(), serde_json::json!({"shape": a.shape, "sum": sum, "abs_sum": abs}))
                })
                .collect();
            let ints: serde_json::Map<String, serde_json::Value> =
                node.integers().into_iter().map(|(key, v, _)| (key.to_string(), serde_json::json!(v))).collect();
            (name.clone(), serde_json::json!({"type": node.type_name(), "arrays": arrays, "integers": ints}))
        })
        .collect();
    serde_json::json!({
        "nodes": nodes,
        "edges": graph.edges,
        "metadata": graph.metadata.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
    })
}
