//! Resolving a spec into variants (sweep combinations) and stage keys.

use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::spec::{Spec, SpecError, parse_table, set_path};

/// Bump when training semantics change (invalidates cached ANNs).
pub const TRAIN_STAGE_VERSION: u32 = 1;
/// Bump when conversion/simulation semantics change (invalidates cached evaluations).
pub const EVAL_STAGE_VERSION: u32 = 1;

/// One combination of sweep values.
#[derive(Clone, Debug)]
pub struct Variant {
    /// `""` without sweeps, else e.g. `percentile=99,lr=0.1`.
    pub label: String,
    /// The spec with the sweep values applied.
    pub spec: Spec,
}

/// Expands every `[[sweep]]` (crossed; `fields` within one sweep are zipped).
pub fn expand(file: &Path, raw: &toml::Table, spec: &Spec) -> Result<Vec<Variant>, SpecError> {
    let mut combos: Vec<(String, toml::Table)> = vec![(String::new(), raw.clone())];
    for (i, sweep) in spec.sweeps.iter().enumerate() {
        let fields: Vec<String> = match &sweep.field {
            Some(f) => vec![f.clone()],
            None => sweep.fields.clone(),
        };
        let mut next = Vec::new();
        for (label, table) in &combos {
            for (j, value) in sweep.values.iter().enumerate() {
                let values: Vec<toml::Value> = if fields.len() == 1 {
                    vec![value.clone()]
                } else {
                    match value.as_array() {
                        Some(a) if a.len() == fields.len() => a.clone(),
                        _ => {
                            return Err(SpecError::Field {
                                file: file.into(),
                                path: format!("sweep[{i}].values[{j}]"),
                                message: format!("expected a list of {} values (one per field)", fields.len()),
                            });
                        }
                    }
                };
                let mut t = table.clone();
                let mut parts = Vec::new();
                let short_name = |f: &str| -> String {
                    // The shortest tail of the path no other field of this sweep ends with
                    // (`epochs`; `lcp.timesteps` vs `eval.timesteps`; `msat.neuron.preset`
                    // vs `msat-layer-max.neuron.preset`).
                    let tail = |g: &str, n: usize| -> String {
                        let parts: Vec<&str> = g.split('.').collect();
                        parts[parts.len().saturating_sub(n)..].join(".")
                    };
                    let depth = f.split('.').count();
                    (1..depth)
                        .map(|n| tail(f, n))
                        .enumerate()
                        .find(|(n, t)| fields.iter().filter(|g| g.as_str() != f).all(|g| tail(g, n + 1) != *t))
                        .map_or_else(|| f.to_string(), |(_, t)| t)
                };
                for (f, v) in fields.iter().zip(values) {
                    set_path(&mut t, f, v.clone()).map_err(|message| SpecError::Field {
                        file: file.into(),
                        path: format!("sweep[{i}].field `{f}`"),
                        message,
                    })?;
                    // A reference ANN is named by its spec's file stem.
                    let shown = match (f.as_str(), &v) {
                        ("ann", toml::Value::String(p)) => {
                            Path::new(p).file_stem().map_or(p.clone(), |s| s.to_string_lossy().into_owned())
                        }
                        _ => display_value(&v),
                    };
                    parts.push(format!("{}={}", short_name(f), shown));
                }
                let l = if label.is_empty() { parts.join(",") } else { format!("{label},{}", parts.join(",")) };
                next.push((l, t));
            }
        }
        combos = next;
    }
    let variants: Vec<Variant> = combos
        .into_iter()
        .map(|(label, table)| Ok(Variant { label, spec: parse_table(file, &table)? }))
        .collect::<Result<_, SpecError>>()?;
    for (i, method) in spec.methods.iter().enumerate() {
        if !method.when.is_empty() && !variants.iter().any(|v| method.applies_to(&v.label)) {
            let labels: Vec<&str> = variants.iter().map(|v| v.label.as_str()).collect();
            return Err(SpecError::Field {
                file: file.into(),
                path: format!("method[{i}].when"),
                message: format!(
                    "{:?} matches no sweep variant; variants are: {}",
                    method.when,
                    if labels == [""] { "(none: the spec has no [[sweep]])".to_string() } else { labels.join(" | ") }
                ),
            });
        }
    }
    Ok(variants)
}

fn display_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A stable hex key for a stage: SHA-256 of the stage name, its version and the canonical
/// JSON of everything it depends on.
pub fn stage_key(stage: &str, version: u32, parts: &impl Serialize) -> String {
    let json = serde_json::to_string(parts).expect("spec sections serialize");
    let mut h = Sha256::new();
    h.update(stage.as_bytes());
    h.update(version.to_le_bytes());
    h.update(json.as_bytes());
    h.finalize().iter().take(10).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_cross_and_zip() {
        let text = r#"
[dataset]
name = "synthetic-shapes2d"
[model]
name = "small-cnn"
[[method]]
kind = "robust-norm"
[eval]
timesteps = [4]
[[sweep]]
field = "method.robust-norm.percentile"
values = [99.0, 99.9]
[[sweep]]
fields = ["train.lr", "train.epochs"]
values = [[0.1, 1], [0.05, 2]]
"#;
        let raw: toml::Table = toml::from_str(text).unwrap();
        let spec = parse_table(Path::new("s.toml"), &raw).unwrap();
        let v = expand(Path::new("s.toml"), &raw, &spec).unwrap();
        let labels: Vec<&str> = v.iter().map(|v| v.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "percentile=99.0,lr=0.1,epochs=1",
                "percentile=99.0,lr=0.05,epochs=2",
                "percentile=99.9,lr=0.1,epochs=1",
                "percentile=99.9,lr=0.05,epochs=2"
            ]
        );
        assert_eq!(v[3].spec.train.epochs, 2);
        // A conversion sweep leaves the training section (and so the train key) unchanged.
        let k = |s: &Spec| stage_key("train", 1, &(&s.dataset, &s.model, &s.train));
        assert_eq!(k(&v[0].spec), k(&v[2].spec));
        assert_ne!(k(&v[0].spec), k(&v[1].spec));
    }

    #[test]
    fn ambiguous_sweep_field_names_keep_their_parent_in_the_label() {
        let text = r#"
[dataset]
name = "synthetic-shapes2d"
[model]
name = "small-cnn"
[[method]]
kind = "snn-calibration"
label = "lcp"
[eval]
timesteps = [4]
[[sweep]]
fields = ["method.lcp.timesteps", "eval.timesteps", "train.epochs"]
values = [[8, [8], 2]]
"#;
        let raw: toml::Table = toml::from_str(text).unwrap();
        let spec = parse_table(Path::new("s.toml"), &raw).unwrap();
        let v = expand(Path::new("s.toml"), &raw, &spec).unwrap();
        assert_eq!(v[0].label, "lcp.timesteps=8,eval.timesteps=[8],epochs=2");
        assert_eq!(v[0].spec.eval.timesteps, [8]);
        // Two methods' neuron keys: the label keeps as much of each path as tells them apart.
        let text = text
            .replace("label = \"lcp\"\n", "label = \"lcp\"\n[[method]]\nkind = \"snn-calibration\"\nlabel = \"acp\"\n")
            .replace(
                r#"fields = ["method.lcp.timesteps", "eval.timesteps", "train.epochs"]"#,
                r#"fields = ["method.lcp.neuron.v_init", "method.acp.neuron.v_init", "train.epochs"]"#,
            )
            .replace("values = [[8, [8], 2]]", r#"values = [["half", "half", 2]]"#);
        let raw: toml::Table = toml::from_str(&text).unwrap();
        let spec = parse_table(Path::new("s.toml"), &raw).unwrap();
        let v = expand(Path::new("s.toml"), &raw, &spec).unwrap();
        assert_eq!(v[0].label, "lcp.neuron.v_init=half,acp.neuron.v_init=half,epochs=2");
    }

    const WHEN_SPEC: &str = r#"
[dataset]
name = "synthetic-shapes2d"
[model]
name = "small-cnn"
[[method]]
kind = "robust-norm"
[[method]]
kind = "qcfs"
when = ["activation=qcfs"]
[eval]
timesteps = [4]
[[sweep]]
fields = ["model.activation", "model.qcfs_levels"]
values = [["relu", 8], ["qcfs", 4]]
"#;

    #[test]
    fn when_restricts_a_method_to_matching_variants() {
        let raw: toml::Table = toml::from_str(WHEN_SPEC).unwrap();
        let spec = parse_table(Path::new("s.toml"), &raw).unwrap();
        let v = expand(Path::new("s.toml"), &raw, &spec).unwrap();
        assert_eq!(v[1].label, "activation=qcfs,qcfs_levels=4");
        let runs = |variant: &Variant| -> Vec<String> {
            variant.spec.methods.iter().filter(|m| m.applies_to(&variant.label)).map(|m| m.label.clone()).collect()
        };
        assert_eq!(runs(&v[0]), ["robust-norm"]);
        assert_eq!(runs(&v[1]), ["robust-norm", "qcfs"]);
        // `field=a|b` holds for either value; every listed part must still hold.
        let mut either = v[0].spec.methods[1].clone();
        either.when = vec!["activation=clip|relu".into()];
        assert!(either.applies_to(&v[0].label) && !either.applies_to(&v[1].label));
        either.when.push("qcfs_levels=4".into());
        assert!(!either.applies_to(&v[0].label));
        // `when` never enters the serialized method of unrestricted entries (cache keys unchanged).
        let json = serde_json::to_string(&v[0].spec.methods[0]).unwrap();
        assert!(!json.contains("when"), "{json}");
    }

    #[test]
    fn when_matching_no_variant_is_an_error_naming_the_method() {
        let text = WHEN_SPEC.replace("activation=qcfs\"]", "activation=clip\"]");
        let raw: toml::Table = toml::from_str(&text).unwrap();
        let spec = parse_table(Path::new("s.toml"), &raw).unwrap();
        let err = expand(Path::new("s.toml"), &raw, &spec).unwrap_err().to_string();
        assert!(err.contains("method[1].when") && err.contains("activation=relu,qcfs_levels=8"), "{err}");
    }
}
