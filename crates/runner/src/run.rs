//! Running a spec end to end: variants × seeds → train/load → ANN rows → method rows →
//! results.csv, table.md, accuracy_vs_t.svg, spec.resolved.toml.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use datasets::DataRoot;
use zoo::{Network, build_model};

use crate::cache::{Cache, read_json, write_file, write_json};
use crate::data::Data;
use crate::evaluate::{
    Measure, ann_key, ann_operation_measures, conversion_loss_measures, energy_measures, eval_key, evaluate_ann,
    evaluate_method,
};
use crate::plan::{Variant, expand};
use crate::provenance::Provenance;
use crate::report::{
    ReportError, ResultRow, TableSpec, derived_paper_values, diagnostic_stems, diagnostic_vs_t_svg, png_data_uri,
    primary_metric_vs_t_svg, render_figure_with_images, render_markdown, render_summary, write_csv,
};
use crate::spec::{Spec, load_spec};
use crate::train::{TrainedAnn, ann_base_key, ship_checkpoint, train_key, train_or_load};

/// Options shared by every command.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--cache-dir`.
    pub cache_dir: PathBuf,
    /// `--results-dir`.
    pub results_dir: PathBuf,
    /// `--device` name.
    pub device_name: String,
    /// `--set key=value` overrides.
    pub overrides: Vec<String>,
    /// `--results-dir` was given: the table goes to `<results_dir>/<stem>/` even when `--set`
    /// changed the spec (else such a run writes `<stem>+<hash of the overrides>/`).
    pub results_dir_chosen: bool,
}

/// Whether stages may be computed (`run`), must come from the cache (`report`, `merge`), or
/// only a shard of them is computed (`run --shard i/n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Compute what is missing.
    Compute,
    /// Only read the cache; fail listing what is missing.
    CacheOnly,
    /// Compute this shard's stages (into the cache) and write no table.
    Shard(Shard),
}

/// One of `count` deterministic slices of a spec's stages (`--shard index/count`, `index`
/// 0-based). The spec's stages are numbered in run order (per variant and seed: the ANN's
/// accuracy, then each method); stage j belongs to shard j mod count. A shard trains or loads
/// the ANN its stages need under a lock on the training entry, so an ANN is trained once
/// however many shards need it, the others waiting for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parsed = s.split_once('/').and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if index < count => Ok(Shard { index, count }),
            _ => Err(format!("`{s}`: a shard is `i/n` with 0 <= i < n (e.g. `0/3`)")),
        }
    }
}

/// Hands out the stages of a run in order and says which this process computes.
struct Stages {
    shard: Option<Shard>,
    next: usize,
    taken: usize,
}

impl Stages {
    /// Whether the next stage is this process's.
    fn take(&mut self) -> bool {
        let j = self.next;
        self.next += 1;
        let mine = self.shard.is_none_or(|s| j % s.count == s.index);
        self.taken += usize::from(mine);
        mine
    }
}

/// Experiment name: `[experiment] name` or the spec file stem.
pub fn experiment_name(file: &Path, spec: &Spec) -> String {
    spec.experiment.name.clone().unwrap_or_else(|| {
        file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "experiment".into())
    })
}

/// Folder under the results directory holding the shipped (committed) ANN checkpoints,
/// `<train key>.bpk` + `<train key>.progress.json`, shared by all specs.
pub const SHIPPED_CHECKPOINTS_DIR: &str = "checkpoints";

/// Folder under the results directory holding committed stage results,
/// `<stage>/<key>/{spec,measures,provenance}.json` (see [`crate::cache`]), shared by all specs.
pub const SHIPPED_STAGES_DIR: &str = "stages";

/// Runs (or re-renders) `file`. Returns the output directory.
pub fn run_spec(file: &Path, opts: &RunOptions, mode: Mode) -> Result<PathBuf> {
    let (raw, spec) = load_spec(file, &opts.overrides)?;
    let variants = expand(file, &raw, &spec)?;
    let device = crate::device::select_device(&opts.device_name)?;
    let cache = Cache::new(&opts.cache_dir)
        .with_shipped_stages(opts.results_dir.join(SHIPPED_STAGES_DIR), spec.experiment.ship_stages);
    let root = DataRoot::from_env(opts.data_dir.clone());
    let provenance = Provenance::current(&opts.device_name);
    let name = experiment_name(file, &spec);
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| name.clone());
    if stem == SHIPPED_CHECKPOINTS_DIR || stem == SHIPPED_STAGES_DIR {
        bail!(
            "{}: a spec may not be named `{stem}`: results/{stem}/ holds the shipped ANN checkpoints and stage results",
            file.display()
        );
    }
    // A spec changed by `--set` never overwrites the spec's own (committed) table, unless the
    // user chose where results go.
    let folder = if opts.results_dir_chosen { stem.clone() } else { results_folder(&stem, &opts.overrides) };
    let out_dir = opts.results_dir.join(folder);

    // Shipped ANN checkpoints live in one folder for all specs, named by training key, so
    // specs that share an ANN share one file.
    let shipped = opts.results_dir.join(SHIPPED_CHECKPOINTS_DIR);
    let mut rows = Vec::new();
    // The test images the `detections` figure draws its boxes on (the first variant's).
    let mut figure_images = Vec::new();
    let mut data_cache: HashMap<String, Data> = HashMap::new();
    let shard = if let Mode::Shard(s) = mode { Some(s) } else { None };
    let mut stages = Stages { shard, next: 0, taken: 0 };
    for variant in &variants {
        let (variant_rows, images) = run_variant(
            variant,
            &name,
            &provenance,
            &cache,
            &root,
            &device,
            mode,
            &shipped,
            &mut data_cache,
            &mut stages,
        )
        .with_context(|| file.display().to_string())?;
        // Entries cached before stages were thinned when stored still hold whole frontiers
        // and per-step diagnostics of every layer.
        rows.extend(crate::report::thin_rows(variant_rows));
        if figure_images.is_empty() {
            figure_images = images;
        }
    }
    if let Some(s) = shard {
        println!(
            "shard {}/{}: {} of {} stages done in {}; when every shard has finished, `runner merge {}` writes the table",
            s.index,
            s.count,
            stages.taken,
            stages.next,
            opts.cache_dir.display(),
            file.display()
        );
        return Ok(out_dir);
    }

    let table_spec = table_spec(&spec, &name);
    let main = TableSpec {
        paper: if table_spec.shows_paper_for(&table_spec.metric) { table_spec.paper.clone() } else { Vec::new() },
        ..table_spec.clone()
    };
    let mut table = render_markdown(&main, &rows);
    for metric in &table_spec.also {
        let derived = TableSpec {
            title: format!("{} — {metric}", table_spec.title),
            metric: metric.clone(),
            paper: match table_spec.shows_paper_for(metric) {
                true => derived_paper_values(&table_spec.paper, metric),
                false => Vec::new(),
            },
            notes: Vec::new(),
            summary: Vec::new(),
            also: Vec::new(),
            figures: Vec::new(),
            ..table_spec.clone()
        };
        table.push('\n');
        table.push_str(&render_markdown(&derived, &rows));
    }
    if !table_spec.summary.is_empty() {
        table.push('\n');
        table.push_str(&render_summary(&table_spec, &rows));
    }
    let svg = primary_metric_vs_t_svg(&table_spec.title, &rows)?;
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    write_csv(&out_dir.join("results.csv"), &rows)?;
    write_file(&out_dir.join("table.md"), table.as_bytes())?;
    write_file(&out_dir.join("accuracy_vs_t.svg"), svg.as_bytes())?;
    // Neuron models with per-step diagnostics (e.g. the dynamic threshold's ω) get a figure each.
    for stem in diagnostic_stems(&rows) {
        if let Ok(svg) = diagnostic_vs_t_svg(&format!("{} — {stem}(t)", table_spec.title), &stem, &rows) {
            write_file(&out_dir.join(format!("{stem}_vs_t.svg")), svg.as_bytes())?;
        }
    }
    // Figures the spec asks for (`[table] figures`); one without data is skipped with a note.
    for figure in &table_spec.figures {
        match render_figure_with_images(figure, &table_spec.title, &rows, &figure_images) {
            Ok(svg) => write_file(&out_dir.join(format!("{figure}.svg")), svg.as_bytes())?,
            Err(ReportError::NoData(why)) => eprintln!("figure `{figure}` not drawn: {why}"),
            Err(e) => return Err(e.into()),
        }
    }
    write_file(&out_dir.join("spec.resolved.toml"), resolved_toml(&spec)?.as_bytes())?;
    println!("{table}");
    println!("wrote {}", out_dir.display());
    Ok(out_dir)
}

/// The folder under the results directory for a spec with stem `stem` run with `overrides`:
/// `<stem>`, or `<stem>+<8 hex digits of a hash of the overrides>` when there are any.
pub fn results_folder(stem: &str, overrides: &[String]) -> String {
    use sha2::{Digest, Sha256};
    if overrides.is_empty() {
        return stem.to_string();
    }
    let digest = Sha256::digest(overrides.join("\n").as_bytes());
    let short: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{stem}+{short}")
}

/// Validates `file` and prints what a run would do (variants × seeds × methods), without
/// loading data or computing anything.
pub fn plan_spec(file: &Path, opts: &RunOptions) -> Result<()> {
    let (raw, spec) = load_spec(file, &opts.overrides)?;
    let variants = expand(file, &raw, &spec)?;
    // Weight files a run would read must exist (looked up as a run looks them up).
    let root = DataRoot::from_env(opts.data_dir.clone());
    for v in &variants {
        if let Some(w) = &v.spec.model.weights {
            resolve_weights(w, &root, "model.weights").with_context(|| format!("in {}", file.display()))?;
        }
        if let Some(w) = &v.spec.train.init_weights {
            resolve_weights(w, &root, "train.init_weights").with_context(|| format!("in {}", file.display()))?;
        }
        // The data a run would load: the test split, and the training split (training and
        // calibration images).
        let points = v.spec.dataset.points.clone().unwrap_or_default();
        let in_file = || format!("in {}: dataset `{}`", file.display(), v.spec.dataset.name);
        match &v.spec.dataset.events {
            Some(events) => {
                datasets::locate_event_frames(&root, events.frames).with_context(in_file)?;
            }
            None if datasets::dense::is_real_dense(&v.spec.dataset.name) => {
                // PASCAL VOC or MS COCO: the split files or folders its `[dataset.dense]` names.
                let dense = v.spec.dataset.dense.clone().unwrap_or_default();
                for split in [datasets::Split::Train, datasets::Split::Test] {
                    datasets::dense::check_available(&v.spec.dataset.name, split, &root, &dense)
                        .with_context(in_file)?;
                }
            }
            None => {
                for split in [datasets::Split::Train, datasets::Split::Test] {
                    datasets::check_available(&v.spec.dataset.name, split, &root, &points).with_context(in_file)?;
                }
                check_image_headers(&v.spec.dataset.name, &root).with_context(in_file)?;
            }
        }
    }
    println!("{}: {} variant(s), seeds {:?}", file.display(), variants.len(), spec.experiment.seeds);
    for v in &variants {
        let s = &v.spec;
        let label = if v.label.is_empty() { "(no sweep)".to_string() } else { v.label.clone() };
        println!("variant {label}: {} on {}, T = {:?}", s.model.name, s.dataset.name, s.eval.timesteps);
        for &seed in &s.experiment.seeds {
            match &s.model.weights {
                Some(w) => println!("  seed {seed}: ANN imported from {}", w.display()),
                None => println!(
                    "  seed {seed}: ANN trained for {} epochs ({:?}, lr {}, batch {}){}",
                    s.train.epochs,
                    s.train.optimizer,
                    s.train.lr,
                    s.train.batch_size,
                    s.train.init_weights.as_ref().map(|w| format!(", from {}", w.display())).unwrap_or_default()
                ),
            }
            for m in s.methods.iter().filter(|m| m.applies_to(&v.label)) {
                let own_t = if m.timesteps.is_empty() { String::new() } else { format!(", T = {:?}", m.timesteps) };
                println!("    method {} ({}){own_t}", m.label, m.config.kind());
            }
        }
    }
    Ok(())
}

/// What the headers of an image set's files say a run would trip on: an empty split, or
/// training and test samples of different shapes (formats without such headers pass).
fn check_image_headers(name: &str, root: &DataRoot) -> Result<()> {
    use datasets::Split;
    let (Some((train, train_shape)), Some((test, test_shape))) =
        (datasets::peek_image_split(name, Split::Train, root)?, datasets::peek_image_split(name, Split::Test, root)?)
    else {
        return Ok(());
    };
    for (split, count) in [("training", train), ("test", test)] {
        if count == 0 {
            bail!("the {split} images file holds 0 images (its header says so)");
        }
    }
    if train_shape != test_shape {
        bail!(
            "training images are {}x{} but test images {}x{} (mismatched files?)",
            train_shape[1],
            train_shape[2],
            test_shape[1],
            test_shape[2]
        );
    }
    Ok(())
}

fn table_spec(spec: &Spec, name: &str) -> crate::report::TableSpec {
    let mut t = spec.table.clone();
    if t.title.is_empty() {
        t.title = name.to_string();
    }
    if !spec.sweeps.is_empty() && !t.rows.iter().any(|r| r == "variant") {
        t.rows.push("variant".into());
    }
    t
}

fn resolved_toml(spec: &Spec) -> Result<String> {
    Ok(format!(
        "# The spec as run: every default filled in (sweeps are expanded at run time).\n{}",
        toml::to_string(spec).context("serializing the resolved spec")?
    ))
}

/// What a run learns about one variant that only the data (or the weights file) can tell,
/// kept so that `report` and `merge` render tables from the cache alone, without loading a
/// dataset or building a model: the data fingerprints that key the stages, the ANN's key per
/// seed, and the ANN's operation counts. Every run and shard rewrites it
/// (`<cache>/variant/<key>/record.json`), so a report shows what the last run computed.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct VariantRecord {
    train_fingerprint: String,
    test_fingerprint: String,
    /// Seed → the key of the ANN the evaluations start from (training or import).
    ann_keys: std::collections::BTreeMap<u64, String>,
    /// The ANN's operation counts (Lan et al. 2023 Table 8), from a traced forward.
    operations: Vec<Measure>,
    /// When and by which code the record was written.
    provenance: Provenance,
    /// The first test images of a detection data set as PNG data URIs, drawn under the boxes
    /// of the `detections` figure (empty for other data).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    figure_images: Vec<String>,
}

/// Stage name of [`VariantRecord`] entries.
const VARIANT_STAGE: &str = "variant";

/// Key of a variant's record: what its contents depend on, as the spec says it (weights
/// paths unresolved, so a report needs no data root). The table, methods and T are not in
/// it: editing them never hides what was computed.
fn variant_record_key(spec: &Spec) -> String {
    crate::plan::stage_key(
        VARIANT_STAGE,
        1,
        &(&spec.dataset, &spec.model, &spec.train, &spec.eval.test_subset, &spec.experiment.seeds),
    )
}

#[allow(clippy::too_many_arguments)]
fn run_variant(
    variant: &Variant,
    experiment: &str,
    provenance: &Provenance,
    cache: &Cache,
    root: &DataRoot,
    device: &Device,
    mode: Mode,
    shipped: &Path,
    data_cache: &mut HashMap<String, Data>,
    stages: &mut Stages,
) -> Result<(Vec<ResultRow>, Vec<String>)> {
    let record_key = variant_record_key(&variant.spec);
    let record_path = cache.dir(VARIANT_STAGE, &record_key).join("record.json");
    // A report never loads data or resolves weight paths: what it needs, a run recorded.
    let (resolved, data, record) = if mode == Mode::CacheOnly {
        if !record_path.exists() {
            let which =
                if variant.label.is_empty() { String::new() } else { format!(" (variant `{}`)", variant.label) };
            bail!(
                "nothing in the cache {} for this spec{which}; run it first (`runner report` never computes)",
                cache.root().display()
            );
        }
        let record: VariantRecord = read_json(&record_path)?;
        (variant.spec.clone(), None, record)
    } else {
        let resolved = with_resolved_weights(&variant.spec, root)?;
        let spec = &resolved;
        let data_key = serde_json::to_string(&spec.dataset)?;
        if !data_cache.contains_key(&data_key) {
            data_cache.insert(data_key.clone(), Data::load(&spec.dataset, root)?);
        }
        let data = &data_cache[&data_key];
        // The ANN's operation counts do not depend on the weights or the seed: one traced
        // forward of an untrained build per variant.
        let untrained = build_model(&spec.model, data.input_shape(), data.model_classes(&spec.model), device)?;
        let operations = ann_operation_measures(&untrained, data, data.test_indices(&spec.eval).len(), device);
        let ann_keys = spec
            .experiment
            .seeds
            .iter()
            .map(|&seed| Ok((seed, ann_base_key(spec, seed, &data.train_fingerprint)?)))
            .collect::<Result<_>>()?;
        let record = VariantRecord {
            train_fingerprint: data.train_fingerprint.clone(),
            test_fingerprint: data.test_fingerprint.clone(),
            ann_keys,
            operations,
            provenance: provenance.clone(),
            figure_images: detection_figure_images(data, &spec.eval)?,
        };
        write_json(&record_path, &record)?;
        (resolved, Some(&data_cache[&data_key]), record)
    };
    let spec = &resolved;
    let mut rows = Vec::new();
    for &seed in &spec.experiment.seeds {
        let label = |m: &Measure, computed: &Provenance, stage_key: &str| ResultRow {
            experiment: experiment.into(),
            dataset: spec.dataset.name.clone(),
            model: spec.model.name.clone(),
            method: m.method.clone(),
            variant: variant.label.clone(),
            t: m.t,
            seed,
            metric: m.metric.clone(),
            layer: m.layer.clone(),
            value: m.value,
            n_images: m.n_images,
            git_hash: computed.git_hash.clone(),
            burn_version: computed.burn_version.clone(),
            backend: computed.backend.clone(),
            date: computed.date.clone(),
            stage_key: stage_key.into(),
        };
        let base_key =
            record.ann_keys.get(&seed).cloned().with_context(|| {
                format!("seed {seed}: not in the cache's record of this variant; run the spec first")
            })?;
        // The ANN is only materialised when some stage needs computing.
        let mut ann = LazyAnn { spec, seed, data, cache, device, mode, shipped, ann: None };
        let (ann_measures, ann_entry) = if stages.take() {
            let key = ann_key(&base_key, &record.test_fingerprint, &spec.eval);
            let inputs = serde_json::json!({
                "ann": base_key, "test_fingerprint": record.test_fingerprint, "test_subset": spec.eval.test_subset,
            });
            let entry = cached_stage(cache, "ann", &key, &inputs, provenance, || {
                let (model, data) = ann.get("ANN accuracy")?;
                evaluate_ann(model, data, &spec.eval, device)
            })?;
            (entry.measures, Some((entry.provenance, format!("ann/{key}"))))
        } else {
            (Vec::new(), None)
        };
        if let Some((computed, stage_key)) = &ann_entry {
            rows.extend(ann_measures.iter().map(|m| label(m, computed, stage_key)));
        }
        let variant_stage = format!("{VARIANT_STAGE}/{record_key}");
        rows.extend(record.operations.iter().map(|m| label(m, &record.provenance, &variant_stage)));
        let mut method_measures = Vec::new();
        for method in spec.methods.iter().filter(|m| m.applies_to(&variant.label)) {
            if !stages.take() {
                continue;
            }
            let key = eval_key(&base_key, &record.test_fingerprint, method, &spec.convert, &spec.eval, seed);
            let inputs = serde_json::json!({
                "ann": base_key, "test_fingerprint": record.test_fingerprint, "method": method,
                "convert": spec.convert, "eval": spec.eval, "seed": seed,
                "code_versions": format!("{:?}", method.config.code_versions(&method.overrides())),
            });
            let entry = cached_stage(cache, "eval", &key, &inputs, provenance, || {
                let (model, data) = ann.get(&format!("method {}", method.label))?;
                eprintln!("converting and simulating `{}` (variant `{}`, seed {seed})", method.label, variant.label);
                evaluate_method(model, method, data, &spec.convert, &spec.eval, seed, device)
            })?;
            rows.extend(entry.measures.iter().map(|m| label(m, &entry.provenance, &format!("eval/{key}"))));
            method_measures.extend(entry.measures);
        }
        // Derived when the table is rendered: this process's provenance, no cache entry.
        rows.extend(energy_measures(&ann_measures, &method_measures).iter().map(|m| label(m, provenance, "")));
        rows.extend(conversion_loss_measures(&ann_measures, &method_measures).iter().map(|m| label(m, provenance, "")));
        if mode != Mode::CacheOnly && spec.model.weights.is_none() {
            ship_checkpoint(cache, &base_key, shipped)?;
        }
    }
    Ok((rows, record.figure_images))
}

/// The first [`crate::task::FIGURE_IMAGES`] evaluated test images of a detection data set as
/// PNG data URIs (the images the `detections` figure draws boxes on); empty for other data.
fn detection_figure_images(data: &Data, eval: &crate::spec::EvalSection) -> Result<Vec<String>> {
    let crate::data::Samples::Dense(set) = &data.test else { return Ok(Vec::new()) };
    let [c, h, w] = set.image_shape();
    let indices = data.test_indices(eval);
    let uris = indices.iter().take(crate::task::FIGURE_IMAGES).map(|&i| png_data_uri(&set.samples[i].pixels, c, h, w));
    Ok(uris.collect::<Result<_, _>>()?)
}

/// A stage's measures with the provenance of the process that computed them.
struct StageEntry {
    measures: Vec<Measure>,
    provenance: Provenance,
}

/// Returns the cached measures of a stage, restoring them from the shipped stages or computing
/// and caching them when absent (and shipping them when the spec says so). The entry
/// keeps what its key was made from (`spec.json`: `inputs`) and the provenance of its
/// computation (`provenance.json`: git commit of the build, burn version, backend, date),
/// which the result rows carry.
fn cached_stage(
    cache: &Cache,
    stage: &str,
    key: &str,
    inputs: &serde_json::Value,
    provenance: &Provenance,
    compute: impl FnOnce() -> Result<Vec<Measure>>,
) -> Result<StageEntry> {
    let dir = cache.dir(stage, key);
    let read = || -> Result<StageEntry> {
        Ok(StageEntry {
            measures: read_json(&dir.join("measures.json"))?,
            provenance: read_json(&dir.join("provenance.json"))?,
        })
    };
    if cache.is_done(stage, key) {
        return read();
    }
    // Another run sharing the cache may be computing this entry: wait for it, then read it.
    let _lock = cache.lock(stage, key)?;
    if cache.is_done(stage, key) || cache.restore_shipped(stage, key)? {
        return read();
    }
    // Long Pareto frontiers and per-layer per-step diagnostics are thinned before they are
    // stored (and shipped), as the table thins them anyway: an AdaFire search leaves ~50,000
    // points (17 MB of JSON), an MSAT run to T = 256 ~10,000 diagnostic rows.
    let measures = crate::report::thin_rows(compute()?);
    write_json(&dir.join("spec.json"), inputs)?;
    write_json(&dir.join("measures.json"), &measures)?;
    write_json(&dir.join("provenance.json"), provenance)?;
    cache.mark_done(stage, key)?;
    cache.ship(stage, key)?;
    Ok(StageEntry { measures, provenance: provenance.clone() })
}

/// Trains or loads the ANN the first time a stage needs it.
struct LazyAnn<'a> {
    spec: &'a Spec,
    seed: u64,
    /// The variant's data; `None` when reporting from the cache.
    data: Option<&'a Data>,
    cache: &'a Cache,
    device: &'a Device,
    mode: Mode,
    shipped: &'a Path,
    ann: Option<TrainedAnn>,
}

impl<'a> LazyAnn<'a> {
    /// The ANN and the data it was trained on, for computing `what`.
    fn get(&mut self, what: &str) -> Result<(&Network, &'a Data)> {
        let data = match (self.mode, self.data) {
            (Mode::CacheOnly, _) | (_, None) => {
                bail!("{what}: not in the cache; run the spec first (`runner report` never computes)")
            }
            (_, Some(data)) => data,
        };
        if self.ann.is_none() {
            // One training per ANN however many runs share the cache (shards): they wait here.
            let _lock = match &self.spec.model.weights {
                Some(_) => None,
                None => Some(self.cache.lock("train", &train_key(self.spec, self.seed, &data.train_fingerprint)?)?),
            };
            self.ann = Some(train_or_load(self.spec, self.seed, data, self.cache, self.device, self.shipped)?);
        }
        Ok((&self.ann.as_ref().expect("just set").model, data))
    }
}

/// `spec` with its weight paths (`model.weights`, `train.init_weights`) resolved by
/// [`resolve_weights`].
pub fn with_resolved_weights(spec: &Spec, root: &DataRoot) -> Result<Spec> {
    let mut resolved = spec.clone();
    if let Some(w) = &resolved.model.weights {
        resolved.model.weights = Some(resolve_weights(w, root, "model.weights")?);
    }
    if let Some(w) = &resolved.train.init_weights {
        resolved.train.init_weights = Some(resolve_weights(w, root, "train.init_weights")?);
    }
    Ok(resolved)
}

/// A relative weights path is looked up from the working directory, then under each data
/// root (`--data-dir`, `$SNN_DATA_DIR`, `datasets/`), so shared checkpoints are read in place.
/// `field` names the spec field in the error.
pub fn resolve_weights(path: &Path, root: &DataRoot, field: &str) -> Result<PathBuf> {
    if path.is_absolute() || path.exists() {
        return Ok(path.to_path_buf());
    }
    let mut tried = vec![path.to_path_buf()];
    for r in root.roots() {
        let p = r.join(path);
        if p.exists() {
            return Ok(p);
        }
        tried.push(p);
    }
    bail!(
        "{field} `{}` not found; looked at: {}",
        path.display(),
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )
}
