//! Property tests of the weight import ([`zoo::import_weights`]): a valid small safetensors
//! file with PyTorch names and layouts (and a burnpack file), then random truncations, byte
//! flips (biased to the safetensors JSON header) and inflated numbers in that header. The
//! property: the import returns (a panic fails the case), an error names the file, and an
//! import that succeeds gives a model with finite weights and non-negative batch-norm
//! variances.
//!
//! Deterministic: a fixed seed and [`CASES`] cases, no persistence files. `PROPTEST_CASES=N`
//! and `PROPTEST_RNG_SEED=S` explore further.

use std::ops::Range;
use std::path::Path;

use burn::prelude::*;
use burn::store::{BurnToPyTorchAdapter, BurnpackStore, ModuleSnapshot, SafetensorsStore};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;
use zoo::{ModelSpec, Network, build_model, import_weights};

/// Cases per property (each builds a tiny CNN and imports a ~5 KB file, about a millisecond).
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    let env = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() { env.cases } else { CASES },
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() { env.rng_seed } else { RngSeed::Fixed(0x5eed) },
        failure_persistence: None,
        max_shrink_iters: 1024,
        ..env
    }
}

/// A fresh scratch directory, in memory (`/dev/shm`) where there is one: each case writes and
/// removes a handful of files, which on a busy disk costs far more than the parsing.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    shm.is_dir().then(|| tempfile::tempdir_in(shm).ok()).flatten().unwrap_or_else(|| tempfile::tempdir().unwrap())
}

const INPUT: [usize; 3] = [1, 8, 8];

fn model() -> Network {
    let spec: ModelSpec = toml::from_str("name = \"small-cnn\"\nwidth = 0.25").unwrap();
    build_model(&spec, INPUT, 10, &Device::default()).unwrap()
}

/// One change to a file's bytes.
#[derive(Clone, Debug)]
enum Edit {
    /// XOR the byte at a position (anywhere, or in the JSON header) with `value` (never 0), or
    /// set a JSON syntax character there.
    Flip { at: Index, hot: bool, value: u8, syntax: bool },
    /// Insert this many `9`s before a number of the JSON header (shapes, offsets).
    Digits { at: Index, count: usize },
}

#[derive(Clone, Debug)]
struct Mutation {
    edits: Vec<Edit>,
    truncate: Option<Index>,
}

const SYNTAX: &[u8] = b"0123456789 ,:\"[]{}-.eEFIU_";

fn flip() -> impl Strategy<Value = Edit> + Clone {
    (any::<Index>(), any::<bool>(), 1u8..=255, any::<bool>()).prop_map(|(at, hot, value, syntax)| Edit::Flip {
        at,
        hot,
        value,
        syntax,
    })
}

/// A truncation, 1–8 flips, both, or one or two inflated header numbers.
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

fn mutate(bytes: &[u8], m: &Mutation, hot: Range<usize>) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let hot = hot.start.min(b.len())..hot.end.min(b.len());
    let numbers: Vec<usize> =
        hot.clone().filter(|&i| bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit())).collect();
    for e in &m.edits {
        match e {
            Edit::Flip { at, hot: h, value, syntax } => {
                if b.is_empty() {
                    continue;
                }
                let p = if *h && !hot.is_empty() { hot.start + at.index(hot.len()) } else { at.index(b.len()) };
                let p = p.min(b.len() - 1);
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

/// Module paths of the batch-norm running variances holding a negative value.
fn negative_variances(m: &Network) -> Vec<String> {
    use burn::module::{Module, ModuleVisitor, Param};
    struct Visit {
        path: Vec<String>,
        bad: Vec<String>,
    }
    impl ModuleVisitor for Visit {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.into());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let var = self.path.last().is_some_and(|n| n == "running_var");
            if var && zoo::tensor_values(param.val()).iter().any(|v| *v < 0.0) {
                self.bad.push(self.path.join("."));
            }
        }
    }
    let mut v = Visit { path: Vec::new(), bad: Vec::new() };
    m.visit(&mut v);
    v.bad
}

/// Imports `path` into a fresh model and checks the property. A model that imports has finite
/// weights and non-negative batch-norm variances (its outputs may still overflow: a flipped
/// exponent is a valid if absurd weight).
fn check_import(path: &Path) -> Result<(), TestCaseError> {
    match import_weights(model(), path) {
        Ok(m) => {
            prop_assert!(zoo::non_finite_tensors(&m).is_empty());
            let negative = negative_variances(&m);
            prop_assert!(negative.is_empty(), "negative running variance imported in {:?}", negative);
            let x = Tensor::<4>::zeros([1, INPUT[0], INPUT[1], INPUT[2]], &Device::default());
            prop_assert_eq!(zoo::tensor_values(m.forward(x)).len(), 10);
        }
        Err(e) => {
            let msg = full_message(&e);
            let name = path.file_name().unwrap().to_string_lossy();
            prop_assert!(msg.contains(&*name), "the error does not name {}: {}", name, msg);
        }
    }
    Ok(())
}

/// The small CNN's weights as PyTorch would export them: PyTorch names (`bn1.weight`,
/// `bn1.running_mean`, ...) and layouts (Linear weights `[out, in]`).
fn safetensors_bytes(dir: &Path) -> Vec<u8> {
    let p = dir.join("export.safetensors");
    let mut store = SafetensorsStore::from_file(&p).with_to_adapter(BurnToPyTorchAdapter).skip_enum_variants(true);
    model().save_into(&mut store).unwrap();
    std::fs::read(&p).unwrap()
}

fn burnpack_bytes(dir: &Path) -> Vec<u8> {
    let p = dir.join("export.bpk");
    let mut store = BurnpackStore::from_file(&p);
    model().save_into(&mut store).unwrap();
    std::fs::read(&p).unwrap()
}

#[test]
fn the_unmutated_files_import() {
    let tmp = scratch();
    for (name, bytes) in [("w.safetensors", safetensors_bytes(tmp.path())), ("w.bpk", burnpack_bytes(tmp.path()))] {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        import_weights(model(), &p).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Found by these properties (a burnpack file with one byte flipped): a negative batch-norm
/// running variance imported without complaint, and the model then output NaN. Here the sign
/// of `bn1.running_var[0]` is flipped in a safetensors file.
#[test]
fn a_negative_running_variance_is_an_error_naming_the_file() {
    let tmp = scratch();
    let mut bytes = safetensors_bytes(tmp.path());
    let at = {
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let var = st.tensor("bn1.running_var").unwrap();
        var.data().as_ptr() as usize - bytes.as_ptr() as usize
    };
    bytes[at + 3] ^= 0x80; // 1.0 -> -1.0
    let path = tmp.path().join("flipped.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    match import_weights(model(), &path) {
        Err(e @ zoo::ImportError::NegativeVariance { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("flipped.safetensors") && msg.contains("bn1.running_var"), "{msg}");
        }
        other => panic!("expected NegativeVariance, got {:?}", other.map(|_| ())),
    }
}

proptest! {
    #![proptest_config(config())]

    /// Safetensors with PyTorch names: the 8-byte header length and the JSON header are hot.
    #[test]
    fn safetensors_import(m in mutation()) {
        let tmp = scratch();
        let bytes = safetensors_bytes(tmp.path());
        let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let path = tmp.path().join("resnet-tiny.safetensors");
        std::fs::write(&path, mutate(&bytes, &m, 0..header)).unwrap();
        check_import(&path)?;
    }

    /// burn's own burnpack records (hot: the first 512 bytes, where the metadata is).
    #[test]
    fn burnpack_import(m in mutation()) {
        let tmp = scratch();
        let bytes = burnpack_bytes(tmp.path());
        let path = tmp.path().join("model-tiny.bpk");
        std::fs::write(&path, mutate(&bytes, &m, 0..512)).unwrap();
        check_import(&path)?;
    }
}
