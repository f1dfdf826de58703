//! Readouts: how the output layer's steps become predictions. One file each, behind one
//! trait, selected in a spec by `[method.readout] kind` (a method may also set its own, as
//! delayed evaluation does).
//!
//! The last layer of a converted network stays analog: at every coding step t = 1..T it
//! outputs `[batch × classes]` values, which the readout turns into a prediction per sample
//! and step. A readout may stop a sample early (per-sample early exit): the sample's
//! prediction is then frozen, and its spikes after the exit step are not counted.
//!
//! Adding a readout: one file implementing [`Readout`] and [`RegisteredReadout`], plus one
//! line in the `builtin_readouts!` list; [`register_readout`] at run time.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::registry::{Named, Registry, kind_of, params_of};

macro_rules! builtin_readouts {
    ($($module:ident :: $readout:ident),* $(,)?) => {
        $(pub mod $module;)*
        fn builtin_readouts() -> Vec<ReadoutKind> {
            vec![$(ReadoutKind::of::<$module::$readout>()),*]
        }
    };
}

builtin_readouts! {
    accumulate::Accumulate,
    delayed::Delayed,
    early_exit::EarlyExit,
    ilif_decode::IlifDecode,
}

/// A readout's configuration.
pub trait Readout: fmt::Debug + Send + Sync {
    /// The registered kind (`[method.readout] kind`).
    fn kind(&self) -> &'static str;
    /// The readout's parameters as a spec table, `kind` included.
    fn config(&self) -> toml::Table;
    /// State for one batch of `batch` samples and `classes` outputs.
    fn new_state(&self, batch: usize, classes: usize) -> Box<dyn ReadoutState>;
    /// One-off values a table may report (e.g. `readout_delay`); none by default.
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
    /// Whether the readout may stop samples before T (results then report the mean exit step
    /// and the exit-step distribution, even when no sample stopped early). False by default.
    fn exits_early(&self) -> bool {
        false
    }
}

/// Run-time state of a readout for one batch.
pub trait ReadoutState: Send {
    /// Takes the output layer's values at coding step `t` (1-based, consecutive),
    /// `[batch × classes]`.
    fn push(&mut self, t: usize, output: &[f32]);
    /// The predicted class of every sample after the steps pushed so far.
    fn predictions(&self) -> Vec<usize>;
    /// Per sample: the coding step after which it stopped (early exit), or None while it
    /// runs. A readout without early exit returns an empty list.
    fn exit_steps(&self) -> Vec<Option<usize>> {
        Vec::new()
    }
    /// The readout's estimate of the ANN's output after the steps pushed so far,
    /// `[batch × classes]`: what dense prediction scores (box offsets, per-pixel logits), where
    /// the value matters and not only the argmax. With rate coding each step's output
    /// approximates the ANN's, so this is a mean of steps (the readout's own window). None:
    /// the readout decodes classes only (the default).
    fn outputs(&self) -> Option<Vec<f32>> {
        None
    }
}

/// A registered readout kind.
#[derive(Clone, Copy)]
pub struct ReadoutKind {
    /// `kind` in specs.
    pub name: &'static str,
    /// One line for `runner list`.
    pub description: &'static str,
    /// Builds the readout from its spec table (without `kind`).
    pub parse: fn(&toml::Table) -> Result<Arc<dyn Readout>, String>,
    /// The version of the readout's code ([`RegisteredReadout::VERSION`]).
    pub version: u32,
}

/// A readout that can be named in a spec.
pub trait RegisteredReadout: Readout + DeserializeOwned + Sized + 'static {
    /// `kind` in specs.
    const KIND: &'static str;
    /// One line for `runner list`.
    const DESCRIPTION: &'static str;
    /// The version of the readout's code, part of the cache key of every evaluation that uses
    /// it: bump it when a change makes the readout predict differently. 1 by default (and then
    /// left out of the keys).
    const VERSION: u32 = 1;
    /// Range checks of the parameters.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

impl ReadoutKind {
    /// The registration of `R`.
    pub fn of<R: RegisteredReadout>() -> Self {
        Self {
            name: R::KIND,
            description: R::DESCRIPTION,
            parse: |t| {
                let r: R = crate::neuron::parse_params(t)?;
                r.check()?;
                Ok(Arc::new(r))
            },
            version: R::VERSION,
        }
    }
}

impl Named for ReadoutKind {
    fn name(&self) -> &'static str {
        self.name
    }
}

static READOUTS: Registry<ReadoutKind> = Registry::new(builtin_readouts);

/// Registers a readout kind at run time (replacing one of the same name).
pub fn register_readout(kind: ReadoutKind) {
    READOUTS.register(kind);
}

/// Every registered readout kind, built-ins first.
pub fn readout_kinds() -> Vec<ReadoutKind> {
    READOUTS.all()
}

/// The code version of the readout kind named `kind` ([`RegisteredReadout::VERSION`]); None
/// for a kind nobody registered.
pub fn readout_version(kind: &str) -> Option<u32> {
    READOUTS.find(kind).ok().map(|k| k.version)
}

/// Errors building a readout from a spec table.
#[derive(Debug, thiserror::Error)]
pub enum ReadoutError {
    /// No `kind`, or an unknown one.
    #[error("unknown readout kind `{kind}`; valid kinds: {valid}")]
    UnknownKind {
        /// What was given.
        kind: String,
        /// The registered kinds.
        valid: String,
    },
    /// The parameters do not parse or are out of range.
    #[error("readout `{kind}`: {reason}")]
    InvalidParameter {
        /// The kind.
        kind: String,
        /// What is wrong.
        reason: String,
    },
}

/// Builds the readout a spec table describes.
pub fn build_readout(config: &toml::Table) -> Result<Arc<dyn Readout>, ReadoutError> {
    let kind = kind_of(config);
    let entry = READOUTS.find(kind).map_err(|valid| ReadoutError::UnknownKind { kind: kind.into(), valid })?;
    (entry.parse)(&params_of(config)).map_err(|reason| ReadoutError::InvalidParameter { kind: kind.into(), reason })
}

/// Index of the largest value of `row` (the first on ties).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// Argmax of every `classes`-wide row of `scores`.
pub fn argmax_rows(scores: &[f32], classes: usize) -> Vec<usize> {
    scores.chunks(classes.max(1)).map(argmax).collect()
}
