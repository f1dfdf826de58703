//! Trainable ANN activations for "training-involved" conversion: clipped ReLU (Opt., Deng &
//! Gu 2021) and the quantization-clip-floor-shift activation (QCFS, Bu et al. 2022).

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

/// The activation the ANN is trained with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnnActivation {
    /// max(z, 0).
    #[default]
    Relu,
    /// clamp(z, 0, λ) with a fixed λ = `clip` (Opt.: 1.0).
    Clip,
    /// h(z) = λ·clamp(floor(z·L/λ + 0.5)/L, 0, 1), λ a learned per-layer scalar (init 8.0,
    /// weight decay applies), straight-through gradient for floor.
    Qcfs,
}

/// Per-slot parameters of a clip or QCFS activation.
#[derive(Module, Debug)]
pub struct ActivationParams {
    /// One upper bound λ per slot (trainable for QCFS, fixed for clip).
    pub lambda: Param<Tensor<1>>,
    /// Clip or QCFS.
    #[module(skip)]
    pub kind: AnnActivation,
    /// QCFS quantization levels L.
    #[module(skip)]
    pub levels: usize,
}

impl ActivationParams {
    /// `slots` bounds initialised to `init`; frozen (not trained) for clip.
    pub fn new(kind: AnnActivation, slots: usize, init: f32, levels: usize, device: &Device) -> Self {
        Self::from_lambdas(kind, &vec![init; slots], levels, device)
    }

    /// One bound per slot from `lambdas` (trainable for QCFS, fixed for clip).
    pub fn from_lambdas(kind: AnnActivation, lambdas: &[f32], levels: usize, device: &Device) -> Self {
        let lambda = Param::from_tensor(Tensor::<1>::from_floats(lambdas, device));
        let lambda = if kind == AnnActivation::Clip { lambda.set_require_grad(false) } else { lambda };
        Self { lambda, kind, levels: levels.max(1) }
    }

    /// The bounds λ per slot.
    pub fn lambdas(&self) -> Vec<f32> {
        crate::tensor_values(self.lambda.val())
    }

    /// Applies the activation of `slot` to `z` (`[n, c, h, w]`).
    pub fn apply(&self, slot: usize, z: Tensor<4>) -> Tensor<4> {
        let lambda = self.lambda.val().narrow(0, slot, 1).reshape([1, 1, 1, 1]);
        match self.kind {
            AnnActivation::Relu => relu(z),
            // min(relu(z), λ) = relu(z) − relu(z − λ) for λ ≥ 0.
            AnnActivation::Clip => relu(z.clone()) - relu(z - lambda),
            AnnActivation::Qcfs => {
                let l = self.levels as f32;
                let u = z.div(lambda.clone()).mul_scalar(l).add_scalar(0.5);
                let floored = u.clone() + (u.clone().floor() - u).detach();
                let q = floored.div_scalar(l);
                let clamped = relu(q.clone()) - relu(q.sub_scalar(1.0));
                clamped.mul(lambda)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qcfs_matches_its_equation_and_clip_clips() {
        let d = Device::flex();
        let z = Tensor::<1>::from_floats([-1.0, 0.0, 0.9, 1.1, 3.0, 7.9, 9.0], &d).reshape([1, 7, 1, 1]);
        let q = ActivationParams::new(AnnActivation::Qcfs, 1, 8.0, 4, &d);
        // λ = 8, L = 4: h = 8·clamp(floor(z/2 + 0.5)/4, 0, 1)
        let expected = [0.0, 0.0, 0.0, 2.0, 4.0, 8.0, 8.0];
        let got = crate::tensor_values(q.apply(0, z.clone()));
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() < 1e-5, "{got:?}");
        }
        let c = ActivationParams::new(AnnActivation::Clip, 1, 1.0, 1, &d);
        assert_eq!(crate::tensor_values(c.apply(0, z)), vec![0.0, 0.0, 0.9, 1.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn qcfs_lambda_receives_gradients() {
        let d = Device::flex().autodiff();
        let q = ActivationParams::new(AnnActivation::Qcfs, 2, 8.0, 8, &d);
        let z = Tensor::<4>::full([1, 3, 2, 2], 5.3, &d);
        let loss = q.apply(1, z).sum();
        let grads = loss.backward();
        let g = q.lambda.grad(&grads).expect("λ is trainable");
        let g = crate::tensor_values(g);
        assert_eq!(g[0], 0.0, "slot 0 was not used");
        assert!(g[1] != 0.0);
    }
}
