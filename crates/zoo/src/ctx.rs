use burn::prelude::*;

use crate::ActivationParams;

/// Replaces an activation slot. `x` is the slot's pre-activation, `[batch, channels, h, w]`
/// (linear layers pass `[batch, features, 1, 1]`); the return value has the same shape.
pub trait SlotHook {
    /// Called once per slot per forward pass, in forward order.
    fn apply(&mut self, slot: usize, x: Tensor<4>) -> Tensor<4>;
}

/// Description of one activation slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotInfo {
    /// Stable name (PyTorch state-dict style where a reference exists), e.g. `layer1.0.relu1`.
    pub name: String,
    /// Names of the weighted layers (conv/linear) that read this slot's output; their MACs
    /// divided by the slot's neuron count give the average fan-out used for SOP counts.
    pub consumers: Vec<String>,
}

/// Multiply-accumulate count of one weighted layer for one input sample.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerMacs {
    /// Layer name, e.g. `layer1.0.conv1`.
    pub name: String,
    /// MACs per sample.
    pub macs: u64,
    /// Input neurons per sample (so `macs / inputs` is the average fan-out of an input).
    pub inputs: u64,
    /// Output neurons per sample.
    pub outputs: u64,
}

/// Per-forward context: an optional slot hook and an optional MAC trace.
#[derive(Default)]
pub struct ForwardCtx<'a> {
    hook: Option<&'a mut dyn SlotHook>,
    trace: Option<Vec<LayerMacs>>,
    /// Activation outputs per slot when recording is on (ANN mode only), `[batch, ...]`.
    recorded: Option<Vec<Tensor<4>>>,
    /// The model's own ANN activation (clip/QCFS); ReLU when `None`.
    ann: Option<ActivationParams>,
    /// The caller needs nothing past this slot (see [`ForwardCtx::stopping_after`]).
    stop_after: Option<usize>,
    /// That slot has been passed.
    stopped: bool,
}

impl<'a> ForwardCtx<'a> {
    /// Plain ANN forward: every slot is a ReLU.
    pub fn ann() -> Self {
        Self::default()
    }

    /// Every slot is handled by `hook`.
    pub fn with_hook(hook: &'a mut dyn SlotHook) -> Self {
        Self { hook: Some(hook), ..Self::default() }
    }

    /// ANN forward that records the MACs of every weighted layer.
    pub fn tracing() -> Self {
        Self { trace: Some(Vec::new()), ..Self::default() }
    }

    /// ANN forward that keeps every slot's output tensor.
    pub fn recording() -> Self {
        Self { recorded: Some(Vec::new()), ..Self::default() }
    }

    /// Lets the model skip the layers after slot `slot`: once it has passed, [`ForwardCtx::stopped`]
    /// is true and a model may return [`ForwardCtx::skipped_logits`] (for callers that only
    /// want the inputs of the slots up to it, e.g. a slot-by-slot calibration). Models that do
    /// not check simply run to the end.
    pub fn stopping_after(mut self, slot: usize) -> Self {
        self.stop_after = Some(slot);
        self
    }

    /// Whether the slot given to [`ForwardCtx::stopping_after`] has been passed.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Placeholder logits `[batch, classes]` (zeros) of a forward pass stopped early.
    pub fn skipped_logits(batch: usize, classes: usize, device: &Device) -> Tensor<2> {
        Tensor::zeros([batch, classes], device)
    }

    /// The MAC trace collected by a [`ForwardCtx::tracing`] forward.
    pub fn take_trace(&mut self) -> Vec<LayerMacs> {
        self.trace.take().unwrap_or_default()
    }

    /// Slot outputs collected by a [`ForwardCtx::recording`] forward.
    pub fn take_recorded(&mut self) -> Vec<Tensor<4>> {
        self.recorded.take().unwrap_or_default()
    }

    /// Whether MACs are being traced (so callers can skip building names).
    pub fn is_tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// Record the MACs of a weighted layer (no-op unless tracing).
    pub fn record_macs(&mut self, name: impl FnOnce() -> String, macs: u64, inputs: u64, outputs: u64) {
        if let Some(trace) = self.trace.as_mut() {
            trace.push(LayerMacs { name: name(), macs, inputs, outputs });
        }
    }

    /// Sets the model's ANN activation (called by models at the start of their forward).
    pub fn use_activation(&mut self, act: Option<&ActivationParams>) {
        self.ann = act.cloned();
    }

    /// Activation slot on a feature map `[batch, channels, h, w]`: the hook if one is
    /// installed, else the model's ANN activation (ReLU, clip or QCFS).
    pub fn act(&mut self, slot: usize, x: Tensor<4>) -> Tensor<4> {
        let y = match (self.hook.as_mut(), &self.ann) {
            (Some(hook), _) => hook.apply(slot, x),
            (None, Some(a)) => a.apply(slot, x),
            (None, None) => burn::tensor::activation::relu(x),
        };
        if let Some(rec) = self.recorded.as_mut() {
            rec.push(y.clone());
        }
        if self.stop_after == Some(slot) {
            self.stopped = true;
        }
        y
    }

    /// Activation slot on a feature vector `[batch, features]`.
    pub fn act2(&mut self, slot: usize, x: Tensor<2>) -> Tensor<2> {
        let [n, f] = x.dims();
        self.act(slot, x.reshape([n, f, 1, 1])).reshape([n, f])
    }
}
