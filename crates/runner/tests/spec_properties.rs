//! Property tests of the spec parser ([`runner::spec::load_spec`]): real experiment specs from
//! `experiments/`, then random truncations, byte flips (TOML syntax characters or any byte)
//! and inflated numbers; and random `--set key=value` overrides on the intact specs. The
//! property: the parser returns (a panic fails the case), an error names the spec file, and a
//! spec that parses satisfies the checks the runner relies on.
//!
//! Deterministic: a fixed seed and [`CASES`] cases, no persistence files. `PROPTEST_CASES=N`
//! and `PROPTEST_RNG_SEED=S` explore further.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;
use runner::spec::{MAX_TIMESTEPS, Spec, SpecError, load_spec};

/// Cases per property (parsing a spec takes well under a millisecond).
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    let env = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() { env.cases } else { CASES },
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() { env.rng_seed } else { RngSeed::Fixed(0x5eed) },
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..env
    }
}

/// Specs of different shapes: the quickstart, a sweep, event frames with reported values,
/// imported weights, an ablation with many methods, and one that takes its ANN from another
/// spec (`ann`).
const SPECS: [&str; 6] = [
    "quickstart.toml",
    "ltb2025_fig4_delay_cifar10.toml",
    "adafire2024_table2_cifar10dvs.toml",
    "cifar10_resnet20_pretrained.toml",
    "lan2023_table6_ablation.toml",
    "leaderboard_cifar10_resnet20.toml",
];

/// The spec an `ann` spec above names.
const ANN_SPEC: &str = "reference_cifar10_resnet20.toml";

fn experiments() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments")
}

/// A fresh scratch directory, in memory (`/dev/shm`) where there is one: each case writes and
/// removes a handful of files, which on a busy disk costs far more than the parsing.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    shm.is_dir().then(|| tempfile::tempdir_in(shm).ok()).flatten().unwrap_or_else(|| tempfile::tempdir().unwrap())
}

/// Copies the specs into a fresh directory (the `ann` target too).
fn spec_dir() -> tempfile::TempDir {
    let tmp = scratch();
    for name in SPECS.iter().chain([&ANN_SPEC]) {
        std::fs::copy(experiments().join(name), tmp.path().join(name)).unwrap();
    }
    tmp
}

#[derive(Clone, Debug)]
enum Edit {
    /// Set the byte at a position to a TOML syntax character, or XOR it with `value`.
    Flip { at: Index, value: u8, syntax: bool },
    /// Insert this many `9`s before a number.
    Digits { at: Index, count: usize },
}

#[derive(Clone, Debug)]
struct Mutation {
    edits: Vec<Edit>,
    truncate: Option<Index>,
}

const SYNTAX: &[u8] = b"0123456789 \n\t\r,.-+eE#[]{}\"'=_:infa";

fn flip() -> impl Strategy<Value = Edit> + Clone {
    (any::<Index>(), 1u8..=255, any::<bool>()).prop_map(|(at, value, syntax)| Edit::Flip { at, value, syntax })
}

/// A truncation, 1–8 flips, both, or one or two inflated numbers.
fn mutation() -> impl Strategy<Value = Mutation> {
    let flips = proptest::collection::vec(flip(), 1..=8);
    let digits = (any::<Index>(), 1usize..=20).prop_map(|(at, count)| Edit::Digits { at, count });
    prop_oneof![
        any::<Index>().prop_map(|t| Mutation { edits: Vec::new(), truncate: Some(t) }),
        flips.clone().prop_map(|edits| Mutation { edits, truncate: None }),
        (flips, any::<Index>()).prop_map(|(edits, t)| Mutation { edits, truncate: Some(t) }),
        proptest::collection::vec(digits, 1..=2).prop_map(|edits| Mutation { edits, truncate: None }),
    ]
}

fn mutate(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let numbers: Vec<usize> =
        (0..bytes.len()).filter(|&i| bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit())).collect();
    for e in &m.edits {
        match e {
            Edit::Flip { at, value, syntax } => {
                if b.is_empty() {
                    continue;
                }
                let p = at.index(b.len());
                b[p] = if *syntax { SYNTAX[usize::from(*value) % SYNTAX.len()] } else { b[p] ^ value };
            }
            Edit::Digits { at, count } => {
                if let Some(&p) = numbers.get(at.index(numbers.len().max(1))) {
                    let p = p.min(b.len());
                    b.splice(p..p, std::iter::repeat_n(b'9', *count));
                }
            }
        }
    }
    if let Some(t) = &m.truncate
        && !b.is_empty()
    {
        b.truncate(t.index(b.len()));
    }
    b
}

fn full_message(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// The property on one parse of `file`.
fn check(file: &Path, result: Result<(toml::Table, Spec), SpecError>) -> Result<(), TestCaseError> {
    match result {
        Ok((_, spec)) => {
            // what the runner relies on after a successful parse
            prop_assert!(!spec.experiment.seeds.is_empty());
            prop_assert!(!spec.methods.is_empty());
            let ts = &spec.eval.timesteps;
            prop_assert!(!ts.is_empty() && ts.iter().all(|&t| (1..=MAX_TIMESTEPS).contains(&t)), "timesteps {:?}", ts);
            prop_assert!(spec.model.width > 0.0 && spec.model.width.is_finite());
            prop_assert!(spec.train.lr > 0.0 && spec.train.lr.is_finite());
            prop_assert!(spec.eval.batch_size > 0 && spec.eval.chunk > 0 && spec.train.batch_size > 0);
        }
        Err(e) => {
            let msg = full_message(&e);
            let name = file.file_name().unwrap().to_string_lossy();
            prop_assert!(msg.contains(&*name), "the error does not name {}: {}", name, msg);
        }
    }
    Ok(())
}

#[test]
fn the_specs_parse_as_committed() {
    let tmp = spec_dir();
    for name in SPECS {
        load_spec(&tmp.path().join(name), &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Keys for the override property: valid ones, sections, method addresses, unknown ones.
const KEYS: &[&str] = &[
    "train.epochs",
    "train.lr",
    "eval.timesteps",
    "eval.batch_size",
    "eval.test_subset.first",
    "model.width",
    "model.name",
    "dataset.name",
    "dataset.points.num_points",
    "experiment.seeds",
    "method.max-norm.percentile",
    "method.robust-norm.percentile",
    "method.robust-norm",
    "method",
    "ann",
    "table.rows",
    "sweep",
    "train",
    "zzz.yyy",
    "",
    ".",
    "train..lr",
];

proptest! {
    #![proptest_config(config())]

    /// A damaged spec file.
    #[test]
    fn damaged_spec_files(m in mutation(), which: Index) {
        let tmp = spec_dir();
        let name = SPECS[which.index(SPECS.len())];
        let path = tmp.path().join(name);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, mutate(&bytes, &m)).unwrap();
        check(&path, load_spec(&path, &[]))?;
    }

    /// `--set key=value` overrides (1–3) on an intact spec: valid and unknown keys, values
    /// that are TOML, not TOML, or empty.
    #[test]
    fn overrides(
        sets in proptest::collection::vec((any::<Index>(), "[-0-9a-z.\\[\\]{}=\", ]{0,12}", any::<bool>()), 1..=3),
        which: Index,
    ) {
        let tmp = spec_dir();
        let path = tmp.path().join(SPECS[which.index(SPECS.len())]);
        let key = |k: &Index| KEYS[k.index(KEYS.len())];
        // without `=` now and then: `--set` expects key=value
        let sets: Vec<String> =
            sets.iter().map(|(k, v, eq)| if *eq { format!("{}={v}", key(k)) } else { format!("{}{v}", key(k)) }).collect();
        check(&path, load_spec(&path, &sets))?;
    }
}
