//! MobileNet-v2 against torchvision: a state dict with torchvision's names and layouts
//! (written here as a safetensors file) imports into `mobilenet-v2` tensor by tensor, and the
//! network runs with ReLU6 (the clip activation at 6) in every slot.

use std::collections::HashMap;
use std::path::Path;

use burn::prelude::*;
use burn::store::ModuleSnapshot;
use zoo::{AnnActivation, ModelSpec, Network, build_model, import_weights, make_divisible};

/// torchvision `mobilenet_v2(width_mult, num_classes)` tensor names and shapes, in order.
fn torchvision_state(width: f32, classes: usize) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    let bn = |out: &mut Vec<(String, Vec<usize>)>, p: &str, c: usize| {
        for k in ["weight", "bias", "running_mean", "running_var"] {
            out.push((format!("{p}.{k}"), vec![c]));
        }
    };
    let mut cin = make_divisible(32.0 * width);
    out.push(("features.0.0.weight".into(), vec![cin, 3, 3, 3]));
    bn(&mut out, "features.0.1", cin);
    let settings =
        [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
    let mut f = 1;
    for (t, c, n, _s) in settings {
        let cout = make_divisible(c as f32 * width);
        for _ in 0..n {
            let hidden = cin * t;
            let p = format!("features.{f}.conv");
            if t == 1 {
                out.push((format!("{p}.0.0.weight"), vec![hidden, 1, 3, 3]));
                bn(&mut out, &format!("{p}.0.1"), hidden);
                out.push((format!("{p}.1.weight"), vec![cout, hidden, 1, 1]));
                bn(&mut out, &format!("{p}.2"), cout);
            } else {
                out.push((format!("{p}.0.0.weight"), vec![hidden, cin, 1, 1]));
                bn(&mut out, &format!("{p}.0.1"), hidden);
                out.push((format!("{p}.1.0.weight"), vec![hidden, 1, 3, 3]));
                bn(&mut out, &format!("{p}.1.1"), hidden);
                out.push((format!("{p}.2.weight"), vec![cout, hidden, 1, 1]));
                bn(&mut out, &format!("{p}.3"), cout);
            }
            cin = cout;
            f += 1;
        }
    }
    let last = make_divisible(1280.0 * width.max(1.0));
    out.push(("features.18.0.weight".into(), vec![last, cin, 1, 1]));
    bn(&mut out, "features.18.1", last);
    out.push(("classifier.1.weight".into(), vec![classes, last]));
    out.push(("classifier.1.bias".into(), vec![classes]));
    out
}

fn write_safetensors(entries: &[(String, Vec<usize>, Vec<f32>)], path: &Path) {
    use safetensors::{Dtype, tensor::TensorView};
    let bytes: Vec<Vec<u8>> = entries.iter().map(|e| e.2.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let counter = 7i64.to_le_bytes();
    let mut views: Vec<(String, TensorView)> = entries
        .iter()
        .zip(&bytes)
        .map(|(e, b)| (e.0.clone(), TensorView::new(Dtype::F32, e.1.clone(), b).unwrap()))
        .collect();
    for e in entries.iter().filter(|e| e.0.ends_with(".running_var")) {
        views.push((
            e.0.replace("running_var", "num_batches_tracked"),
            TensorView::new(Dtype::I64, vec![], &counter).unwrap(),
        ));
    }
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

fn spec(text: &str) -> ModelSpec {
    toml::from_str(text).unwrap()
}

#[test]
fn torchvision_state_dict_imports_into_mobilenet_v2() {
    let d = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mobilenet_v2-tiny.safetensors");
    let width = 0.35;
    // Distinct values per tensor (positive variances for the BNs).
    let state: Vec<(String, Vec<usize>, Vec<f32>)> = torchvision_state(width, 10)
        .into_iter()
        .enumerate()
        .map(|(k, (name, shape))| {
            let n: usize = shape.iter().product();
            let values = (0..n).map(|j| 0.01 * (k + 1) as f32 + j as f32 * 1e-5).collect();
            (name, shape, values)
        })
        .collect();
    write_safetensors(&state, &path);
    let fresh = build_model(&spec("name = \"mobilenet-v2\"\nwidth = 0.35"), [3, 32, 32], 10, &d).unwrap();
    assert_eq!(fresh.activation().map(|a| (a.kind, a.lambdas()[0])), Some((AnnActivation::Clip, 6.0)), "ReLU6");
    let m = import_weights(fresh, &path).unwrap();
    let got: HashMap<String, Vec<f32>> = m
        .collect(None, None, true)
        .iter()
        .filter(|t| !t.name.contains("act."))
        .map(|t| {
            (t.name.clone(), burn::store::bridge::to_data(t).unwrap().convert::<f32>().try_into_vec::<f32>().unwrap())
        })
        .collect();
    assert_eq!(got.len(), state.len(), "every model tensor has a torchvision counterpart");
    let by_name: HashMap<&str, &Vec<f32>> = state.iter().map(|e| (e.0.as_str(), &e.2)).collect();
    assert_eq!(&got["stem_conv.weight"], by_name["features.0.0.weight"]);
    assert_eq!(&got["blocks.0.dw_conv.weight"], by_name["features.1.conv.0.0.weight"]);
    assert_eq!(&got["blocks.0.project_bn.gamma"], by_name["features.1.conv.2.weight"]);
    assert_eq!(&got["blocks.1.expand_conv.weight"], by_name["features.2.conv.0.0.weight"]);
    assert_eq!(&got["blocks.16.dw_bn.running_var"], by_name["features.17.conv.1.1.running_var"]);
    assert_eq!(&got["blocks.16.project_conv.weight"], by_name["features.17.conv.2.weight"]);
    assert_eq!(&got["last_bn.beta"], by_name["features.18.1.bias"]);
    assert_eq!(&got["linear.bias"], by_name["classifier.1.bias"]);
    // The imported network runs; its slots are capped at 6.
    let x = Tensor::<4>::ones([1, 3, 32, 32], &d);
    let mut rec = zoo::ForwardCtx::recording();
    let _ = zoo::Convertible::forward_ctx(&m, x, &mut rec);
    let slots = rec.take_recorded();
    assert_eq!(slots.len(), 35);
    let top = slots.iter().map(|t| t.clone().max().into_scalar::<f32>()).fold(0.0f32, f32::max);
    assert!(top <= 6.0 + 1e-5, "ReLU6 caps every activation: {top}");
    let _: &Network = &m;
}
