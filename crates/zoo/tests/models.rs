//! Slot lists, shapes, BN folding and weight import of the zoo models.

use burn::module::Module;
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use zoo::{Convertible, ForwardCtx, ModelSpec, Network, build_model};

fn spec(toml_text: &str) -> ModelSpec {
    toml::from_str(toml_text).unwrap()
}

fn model(text: &str, input: [usize; 3], device: &Device) -> Network {
    build_model(&spec(text), input, 10, device).unwrap()
}

fn names(m: &Network) -> Vec<String> {
    m.slots().into_iter().map(|s| s.name).collect()
}

#[test]
fn slot_lists_are_in_forward_order_with_stable_names() {
    let d = Device::flex();
    let small = model("name = \"small-cnn\"", [1, 28, 28], &d);
    assert_eq!(names(&small), ["relu1", "relu2", "relu3"]);

    let vgg = model("name = \"vgg16\"\nwidth = 0.125", [3, 32, 32], &d);
    let n = names(&vgg);
    assert_eq!(n.len(), 13);
    assert_eq!(n[0], "features.0.relu");
    assert_eq!(n[12], "features.12.relu");
    let vgg3 = model("name = \"vgg16\"\nwidth = 0.125\nclassifier = \"3fc\"", [3, 32, 32], &d);
    assert_eq!(names(&vgg3)[13..], ["classifier.0.relu", "classifier.1.relu"]);

    let he = model("name = \"resnet20-he\"\nshortcut = \"pad\"", [3, 32, 32], &d);
    let n = names(&he);
    assert_eq!(n.len(), 19);
    assert_eq!(n[..5], ["relu", "layer1.0.relu1", "layer1.0.relu2", "layer1.1.relu1", "layer1.1.relu2"]);
    assert_eq!(n[18], "layer3.2.relu2");

    let seng = model("name = \"resnet20-sengupta\"\nwidth = 0.125", [3, 32, 32], &d);
    let n = names(&seng);
    assert_eq!(n.len(), 3 + 8 * 2);
    assert_eq!(n[..3], ["relu", "stem.0.relu", "stem.1.relu"]);
    assert_eq!(n[18], "layer4.1.relu2");

    let calib = model("name = \"resnet20-calib\"\nwidth = 0.125", [3, 32, 32], &d);
    assert_eq!(names(&calib).len(), 19);
}

#[test]
fn every_slot_is_called_once_per_forward_and_consumers_exist() {
    struct Count(Vec<usize>);
    impl zoo::SlotHook for Count {
        fn apply(&mut self, slot: usize, x: Tensor<4>) -> Tensor<4> {
            self.0.push(slot);
            burn::tensor::activation::relu(x)
        }
    }
    let d = Device::flex();
    for (text, input) in [
        ("name = \"small-cnn\"", [1, 28, 28]),
        ("name = \"vgg16\"\nwidth = 0.125\nclassifier = \"3fc\"\npooling = \"max\"", [3, 32, 32]),
        ("name = \"resnet20-he\"\nwidth = 0.5", [3, 32, 32]),
        ("name = \"resnet20-sengupta\"\nwidth = 0.125", [3, 32, 32]),
    ] {
        let m = model(text, input, &d);
        let mut hook = Count(vec![]);
        let x = Tensor::<4>::random([2, input[0], input[1], input[2]], Distribution::Normal(0.0, 1.0), &d);
        let out = m.forward_ctx(x.clone(), &mut ForwardCtx::with_hook(&mut hook));
        assert_eq!(out.dims(), [2, 10]);
        let slots = m.slots();
        assert_eq!(hook.0, (0..slots.len()).collect::<Vec<_>>(), "{text}");
        let mut tr = ForwardCtx::tracing();
        let _ = m.forward_ctx(x, &mut tr);
        let layers: Vec<String> = tr.take_trace().into_iter().map(|l| l.name).collect();
        for s in &slots {
            assert!(!s.consumers.is_empty(), "{text}: {} has no consumer", s.name);
            for c in &s.consumers {
                assert!(layers.contains(c), "{text}: consumer {c} of {} not traced ({layers:?})", s.name);
            }
        }
    }
}

/// Trains a model a few steps so BN has non-trivial γ, β and running statistics.
fn trained_with_bn(text: &str, input: [usize; 3]) -> Network {
    let ad = Device::flex().autodiff();
    ad.seed(3);
    let mut m = model(text, input, &ad);
    let mut opt = SgdConfig::new().init();
    for _ in 0..3 {
        let x = Tensor::<4>::random([8, input[0], input[1], input[2]], Distribution::Normal(0.5, 2.0), &ad);
        let loss = m.forward(x).powi_scalar(2).mean();
        let g = GradientsParams::from_grads(loss.backward(), &m);
        m = opt.step(0.05, m, g);
    }
    m.valid().to_device(&Device::flex())
}

#[test]
fn bn_folding_preserves_ann_outputs() {
    let d = Device::flex();
    for (text, input) in [
        ("name = \"small-cnn\"", [1, 28, 28]),
        ("name = \"resnet20-he\"\nwidth = 0.5", [3, 32, 32]),
        ("name = \"resnet20-he\"\nshortcut = \"pad\"\nwidth = 0.5", [3, 32, 32]),
        ("name = \"vgg16\"\nwidth = 0.125\npooling = \"max\"", [3, 32, 32]),
    ] {
        let m = trained_with_bn(text, input);
        let x = Tensor::<4>::random([4, input[0], input[1], input[2]], Distribution::Normal(0.5, 2.0), &d);
        let a = zoo::tensor_values(m.forward(x.clone()));
        let b = zoo::tensor_values(m.fold_batchnorm().forward(x));
        let scale = a.iter().fold(0f32, |s, v| s.max(v.abs())).max(1e-3);
        for (u, v) in a.iter().zip(&b) {
            assert!((u - v).abs() <= 1e-4 * scale + 1e-5, "{text}: {u} vs {v}");
        }
    }
}

#[test]
fn option_a_shortcut_subsamples_and_zero_pads() {
    // With all conv weights zero and BN identity, block output = relu(shortcut(x)).
    let d = Device::flex();
    let m = model("name = \"resnet20-he\"\nshortcut = \"pad\"\nbatch_norm = false", [3, 32, 32], &d);
    let params = m.num_params();
    let he_conv =
        model("name = \"resnet20-he\"\nshortcut = \"conv\"\nbatch_norm = false", [3, 32, 32], &d).num_params();
    assert!(params < he_conv, "pad shortcuts add no parameters");
    // He et al. ResNet-20 (option A, BN) has 0.27M parameters.
    let with_bn = model("name = \"resnet20-he\"\nshortcut = \"pad\"", [3, 32, 32], &d);
    let n = with_bn.num_params();
    assert!((269_000..=273_000).contains(&n), "{n}");
}

#[test]
fn saved_weights_reload_identically() {
    let d = Device::flex();
    let m = trained_with_bn("name = \"small-cnn\"", [1, 28, 28]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.bpk");
    m.clone().save_file(&p).unwrap();
    let fresh = model("name = \"small-cnn\"", [1, 28, 28], &d);
    let loaded = zoo::import_weights(fresh, &p).unwrap();
    let x = Tensor::<4>::random([2, 1, 28, 28], Distribution::Normal(0.0, 1.0), &d);
    assert_eq!(zoo::tensor_values(m.forward(x.clone())), zoo::tensor_values(loaded.forward(x)));
}

#[test]
fn imported_weights_with_a_nan_are_an_error_naming_the_tensor() {
    let d = Device::default();
    let m = model("name = \"small-cnn\"", [1, 12, 12], &d);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.bpk");
    m.clone().save_file(&p).unwrap();
    assert!(zoo::non_finite_tensors(&m).is_empty());
    // Overwrite one f32 of the file's last tensor payload with NaN, keeping its size.
    let mut bytes = std::fs::read(&p).unwrap();
    let at = bytes.len() - 4;
    bytes[at..].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&p, &bytes).unwrap();
    let err = zoo::import_weights(model("name = \"small-cnn\"", [1, 12, 12], &d), &p).unwrap_err().to_string();
    assert!(err.contains("non-finite") && err.contains("m.bpk") && err.contains("fc"), "{err}");
}
