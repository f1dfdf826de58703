//! torchvision ResNet-18/34: slots, shapes, MACs, BN folding and import of torchvision-named weights.

use std::collections::HashMap;
use std::path::Path;

use burn::module::Module;
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::store::ModuleSnapshot;
use burn::tensor::Distribution;
use zoo::{Convertible, ForwardCtx, ImportError, ModelSpec, Network, build_model, import_weights};

fn spec(toml_text: &str) -> ModelSpec {
    toml::from_str(toml_text).unwrap()
}

fn model(text: &str, input: [usize; 3], classes: usize, device: &Device) -> Network {
    build_model(&spec(text), input, classes, device).unwrap()
}

#[test]
fn slots_hooks_and_consumers() {
    struct Record(Vec<(usize, [usize; 4])>);
    impl zoo::SlotHook for Record {
        fn apply(&mut self, slot: usize, x: Tensor<4>) -> Tensor<4> {
            self.0.push((slot, x.dims()));
            burn::tensor::activation::relu(x)
        }
    }
    let d = Device::flex();
    for (name, blocks) in [("resnet18", [2, 2, 2, 2]), ("resnet34", [3, 4, 6, 3])] {
        let m = model(&format!("name = \"{name}\"\nwidth = 0.0625"), [3, 32, 32], 10, &d);
        let slots = m.slots();
        let n_blocks: usize = blocks.iter().sum();
        assert_eq!(slots.len(), 1 + 2 * n_blocks, "{name}");
        assert_eq!(slots[0].name, "relu");
        assert_eq!(slots[0].consumers, ["layer1.0.conv1"]);
        assert_eq!(slots[1].name, "layer1.0.relu1");
        let last = format!("layer4.{}.relu2", blocks[3] - 1);
        assert_eq!(slots.last().unwrap().name, last);
        assert_eq!(slots.last().unwrap().consumers, ["linear"]);
        // the slot ending layer1 feeds layer2.0's conv and its downsample shortcut
        let end1 = 2 * blocks[0];
        assert_eq!(slots[end1].consumers, ["layer2.0.conv1", "layer2.0.shortcut"]);

        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &d);
        let mut hook = Record(vec![]);
        let out = m.forward_ctx(x.clone(), &mut ForwardCtx::with_hook(&mut hook));
        assert_eq!(out.dims(), [2, 10]);
        let order: Vec<usize> = hook.0.iter().map(|(s, _)| *s).collect();
        assert_eq!(order, (0..slots.len()).collect::<Vec<_>>());
        // widths 4/8/16/32 at 1/16; 32 -> 16 (conv) -> 8 (pool) -> 8, 4, 2, 1
        assert_eq!(hook.0[0].1, [2, 4, 8, 8], "slot 0 sees the pooled stem");
        assert_eq!(hook.0[1].1, [2, 4, 8, 8]);
        assert_eq!(hook.0.last().unwrap().1, [2, 32, 1, 1]);

        let mut tr = ForwardCtx::tracing();
        let _ = m.forward_ctx(x, &mut tr);
        let layers: Vec<String> = tr.take_trace().into_iter().map(|l| l.name).collect();
        assert_eq!(layers.len(), 1 + 2 * n_blocks + 3 + 1, "{name}: convs, 3 downsamples, fc");
        for s in &slots {
            for c in &s.consumers {
                assert!(layers.contains(c), "{name}: consumer {c} of {} not traced", s.name);
            }
        }
    }
}

/// MACs per 224x224 image at width 1, 1000 classes, against the closed-form count.
#[test]
fn full_size_macs_and_parameters_match_torchvision() {
    let d = Device::flex();
    // (name, blocks, torchvision parameter count, BN channels): burn also counts the BN
    // running mean and variance as parameters.
    for (name, blocks, params, bn) in
        [("resnet18", [2, 2, 2, 2], 11_689_512, 4800), ("resnet34", [3, 4, 6, 3], 21_797_672, 8512)]
    {
        let m = model(&format!("name = \"{name}\""), [3, 224, 224], 1000, &d);
        assert_eq!(m.num_params(), params + 2 * bn, "{name}");
        let mut tr = ForwardCtx::tracing();
        let out = m.forward_ctx(Tensor::zeros([1, 3, 224, 224], &d), &mut tr);
        assert_eq!(out.dims(), [1, 1000]);
        let macs: u64 = tr.take_trace().iter().map(|l| l.macs).sum();
        // stem 112²·64·3·49; per stage s (side 56/2^s, c = 64·2^s): first conv, the others,
        // downsample; fc 512·1000.
        let mut expect: u64 = 112 * 112 * 64 * 3 * 49 + 512 * 1000;
        for (s, &n) in blocks.iter().enumerate() {
            let (side, c, n): (u64, u64, u64) = (56 >> s, 64 << s, n as u64);
            let cin = if s == 0 { 64 } else { c / 2 };
            expect += side * side * c * cin * 9 + (2 * n - 1) * side * side * c * c * 9;
            if s > 0 {
                expect += side * side * c * cin;
            }
        }
        assert_eq!(macs, expect, "{name}");
        println!("{name}: {params} parameters, {macs} MACs per 224x224 image");
    }
}

#[test]
fn options_are_validated() {
    let d = Device::flex();
    let err = build_model(&spec("name = \"resnet18\"\nshortcut = \"pad\""), [3, 32, 32], 10, &d).unwrap_err();
    assert!(err.to_string().contains("pad"), "{err}");
    // without BN every conv gets a bias
    let a = model("name = \"resnet18\"\nwidth = 0.0625", [3, 32, 32], 10, &d).num_params();
    let b = model("name = \"resnet18\"\nwidth = 0.0625\nbatch_norm = false", [3, 32, 32], 10, &d).num_params();
    assert!(b < a);
}

#[test]
fn bn_folding_and_activations() {
    let ad = Device::flex().autodiff();
    ad.seed(5);
    let d = Device::flex();
    for text in [
        "name = \"resnet18\"\nwidth = 0.0625",
        "name = \"resnet34\"\nwidth = 0.0625\nactivation = \"clip\"\nclip = 2.0",
        "name = \"resnet18\"\nwidth = 0.0625\nactivation = \"qcfs\"",
    ] {
        let mut m = model(text, [3, 32, 32], 10, &ad);
        let mut opt = SgdConfig::new().init();
        for _ in 0..2 {
            let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.5, 2.0), &ad);
            let loss = m.forward(x).powi_scalar(2).mean();
            let g = GradientsParams::from_grads(loss.backward(), &m);
            m = opt.step(0.05, m, g);
        }
        let m = m.valid().to_device(&d);
        if let Some(act) = m.activation() {
            assert_eq!(act.lambdas().len(), m.slots().len(), "{text}");
        }
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.5, 2.0), &d);
        let a = zoo::tensor_values(m.forward(x.clone()));
        let b = zoo::tensor_values(m.fold_batchnorm().forward(x));
        let scale = a.iter().fold(0f32, |s, v| s.max(v.abs())).max(1e-3);
        for (u, v) in a.iter().zip(&b) {
            assert!((u - v).abs() <= 1e-4 * scale + 1e-5, "{text}: {u} vs {v}");
        }
    }
}

/// One tensor of a torchvision state dict: name, shape, f32 values (or an i64 counter).
struct Entry {
    name: String,
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// The state dict torchvision's `resnet18(num_classes)` would have at `base` stem channels
/// (64 at width 1), with distinct values in every tensor (tensor k holds k + 1 + j·1e-5).
fn torchvision_resnet18_state(base: usize, classes: usize) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let mut push = |name: String, shape: Vec<usize>| {
        let k = out.len() as f32;
        let n: usize = shape.iter().product();
        out.push(Entry { name, shape, values: (0..n).map(|j| k + 1.0 + j as f32 * 1e-5).collect() });
    };
    let bn = |push: &mut dyn FnMut(String, Vec<usize>), p: &str, c: usize| {
        for t in ["weight", "bias", "running_mean", "running_var"] {
            push(format!("{p}.{t}"), vec![c]);
        }
    };
    push("conv1.weight".into(), vec![base, 3, 7, 7]);
    bn(&mut push, "bn1", base);
    let mut cin = base;
    for s in 0..4 {
        let c = base << s;
        for b in 0..2 {
            let p = format!("layer{}.{b}", s + 1);
            let bin = if b == 0 { cin } else { c };
            push(format!("{p}.conv1.weight"), vec![c, bin, 3, 3]);
            bn(&mut push, &format!("{p}.bn1"), c);
            push(format!("{p}.conv2.weight"), vec![c, c, 3, 3]);
            bn(&mut push, &format!("{p}.bn2"), c);
            if b == 0 && s > 0 {
                push(format!("{p}.downsample.0.weight"), vec![c, cin, 1, 1]);
                bn(&mut push, &format!("{p}.downsample.1"), c);
            }
        }
        cin = c;
    }
    push("fc.weight".into(), vec![classes, cin]);
    push("fc.bias".into(), vec![classes]);
    out
}

/// Writes `entries` as safetensors, adding an i64 `num_batches_tracked` per batch norm as
/// torchvision checkpoints have.
fn write_safetensors(entries: &[Entry], path: &Path) {
    use safetensors::{Dtype, tensor::TensorView};
    let bytes: Vec<Vec<u8>> = entries.iter().map(|e| e.values.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let counter = 1234i64.to_le_bytes();
    let mut views: Vec<(String, TensorView)> = entries
        .iter()
        .zip(&bytes)
        .map(|(e, b)| (e.name.clone(), TensorView::new(Dtype::F32, e.shape.clone(), b).unwrap()))
        .collect();
    for e in entries.iter().filter(|e| e.name.ends_with(".running_var")) {
        let name = e.name.replace("running_var", "num_batches_tracked");
        views.push((name, TensorView::new(Dtype::I64, vec![], &counter).unwrap()));
    }
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// Writes `entries` as a PyTorch 1.6+ `.pth` (a ZIP with a protocol-2 pickle of an
/// `OrderedDict` with `_metadata`, one storage per tensor), as `torch.save(state_dict)` does,
/// plus an i64 `num_batches_tracked` per batch norm.
fn write_pth(entries: &[Entry], path: &Path) {
    use std::io::Write;
    fn text(p: &mut Vec<u8>, s: &str) {
        p.push(b'X');
        p.extend((s.len() as u32).to_le_bytes());
        p.extend(s.as_bytes());
    }
    fn int(p: &mut Vec<u8>, v: usize) {
        p.push(b'J');
        p.extend((v as i32).to_le_bytes());
    }
    fn ints(p: &mut Vec<u8>, v: &[usize]) {
        p.push(b'(');
        v.iter().for_each(|&x| int(p, x));
        p.push(b't');
    }
    const ORDERED_DICT: &[u8] = b"ccollections\nOrderedDict\n)R";
    let mut storages: Vec<Vec<u8>> = Vec::new();
    let mut p: Vec<u8> = vec![0x80, 2];
    p.extend(ORDERED_DICT);
    p.push(b'(');
    let mut tensor = |p: &mut Vec<u8>, name: &str, shape: &[usize], kind: &str, bytes: Vec<u8>| {
        text(p, name);
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        let numel: usize = shape.iter().product();
        p.push(b'(');
        text(p, "storage");
        p.extend(format!("ctorch\n{kind}\n").as_bytes());
        text(p, &storages.len().to_string());
        text(p, "cpu");
        int(p, numel);
        p.extend(b"tQ");
        int(p, 0);
        ints(p, shape);
        let strides: Vec<usize> = (0..shape.len()).map(|i| shape[i + 1..].iter().product()).collect();
        ints(p, &strides);
        p.push(0x89);
        p.extend(ORDERED_DICT);
        p.extend(b"tR");
        storages.push(bytes);
    };
    for e in entries {
        tensor(&mut p, &e.name, &e.shape, "FloatStorage", e.values.iter().flat_map(|v| v.to_le_bytes()).collect());
        if e.name.ends_with(".running_var") {
            let name = e.name.replace("running_var", "num_batches_tracked");
            tensor(&mut p, &name, &[], "LongStorage", 1234i64.to_le_bytes().to_vec());
        }
    }
    p.push(b'u');
    // state: {'_metadata': OrderedDict()}, then BUILD and STOP
    p.push(b'}');
    text(&mut p, "_metadata");
    p.extend(ORDERED_DICT);
    p.extend(b"sb.");

    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut file = |name: String, bytes: &[u8]| {
        zip.start_file(name, opts).unwrap();
        zip.write_all(bytes).unwrap();
    };
    file("archive/data.pkl".into(), &p);
    file("archive/byteorder".into(), b"little");
    for (k, s) in storages.iter().enumerate() {
        file(format!("archive/data/{k}"), s);
    }
    file("archive/version".into(), b"3\n");
    zip.finish().unwrap();
}

/// Tensor values of `m` by burn path (enum variant skipped), in burn's layouts.
fn burn_tensors(m: &Network) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    m.collect(None, None, true)
        .iter()
        .map(|t| {
            let data = burn::store::bridge::to_data(t).unwrap();
            (t.name.clone(), (data.shape().to_vec(), data.convert::<f32>().try_into_vec::<f32>().unwrap()))
        })
        .collect()
}

/// The burn path of a torchvision name.
fn burn_name(tv: &str) -> String {
    let n =
        tv.replace("downsample.0", "shortcut_conv").replace("downsample.1", "shortcut_bn").replace("fc.", "linear.");
    let is_bn = n.contains(".bn") || n.starts_with("bn") || n.contains("shortcut_bn");
    match (is_bn, n.rsplit_once('.')) {
        (true, Some((p, "weight"))) => format!("{p}.gamma"),
        (true, Some((p, "bias"))) => format!("{p}.beta"),
        _ => n,
    }
}

#[test]
fn torchvision_state_dict_imports_into_resnet18() {
    let d = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet18-tiny.safetensors");
    // width 1/16: channels 4/8/16/32; 1000 classes -> 10
    let state = torchvision_resnet18_state(4, 10);
    write_safetensors(&state, &path);
    let fresh = model("name = \"resnet18\"\nwidth = 0.0625", [3, 32, 32], 10, &d);
    let m = import_weights(fresh, &path).unwrap();
    let got = burn_tensors(&m);
    assert_eq!(got.len(), state.len(), "every model tensor has a torchvision counterpart");

    // Spot checks with hand-written names and layouts.
    let by_name: HashMap<&str, &Entry> = state.iter().map(|e| (e.name.as_str(), e)).collect();
    assert_eq!(got["linear.bias"].1, by_name["fc.bias"].values);
    let rm = "layer3.0.downsample.1.running_mean";
    assert_eq!(got["layer3.0.shortcut_bn.running_mean"].1, by_name[rm].values);
    assert_eq!(got["layer2.0.shortcut_conv.weight"].1, by_name["layer2.0.downsample.0.weight"].values);
    assert_eq!(got["layer2.0.shortcut_conv.weight"].0, [8, 4, 1, 1]);
    assert_eq!(got["bn1.gamma"].1, by_name["bn1.weight"].values);
    assert_eq!(got["layer4.1.bn2.beta"].1, by_name["layer4.1.bn2.bias"].values);
    // fc.weight is [classes, 32] in PyTorch, [32, classes] in burn.
    let (shape, w) = &got["linear.weight"];
    assert_eq!(*shape, [32, 10]);
    let tv = &by_name["fc.weight"].values;
    for o in 0..10 {
        for i in 0..32 {
            assert_eq!(w[i * 10 + o], tv[o * 32 + i]);
        }
    }
    // Every tensor, by the same renaming rules.
    for e in &state {
        let (shape, values) = &got[&burn_name(&e.name)];
        if e.name == "fc.weight" {
            continue;
        }
        assert_eq!((shape, values), (&e.shape, &e.values), "{}", e.name);
    }
    let out = m.forward(Tensor::random([1, 3, 32, 32], Distribution::Normal(0.0, 1.0), &d));
    assert_eq!(out.dims(), [1, 10]);
}

#[test]
fn torchvision_pth_imports_like_safetensors() {
    let d = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let state = torchvision_resnet18_state(4, 10);
    let (st, pth) = (dir.path().join("w.safetensors"), dir.path().join("resnet18-tiny.pth"));
    write_safetensors(&state, &st);
    write_pth(&state, &pth);
    let fresh = || model("name = \"resnet18\"\nwidth = 0.0625", [3, 32, 32], 10, &d);
    let a = burn_tensors(&import_weights(fresh(), &st).unwrap());
    let b = burn_tensors(&import_weights(fresh(), &pth).unwrap());
    assert_eq!(a.len(), state.len());
    assert_eq!(a, b);
    assert_eq!(
        b["layer3.0.shortcut_bn.running_mean"].1,
        state.iter().find(|e| e.name == "layer3.0.downsample.1.running_mean").unwrap().values
    );
}

#[test]
fn incomplete_or_foreign_state_dicts_are_rejected() {
    let d = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let fresh = || model("name = \"resnet18\"\nwidth = 0.0625", [3, 32, 32], 10, &d);

    let mut state = torchvision_resnet18_state(4, 10);
    state.retain(|e| e.name != "layer4.1.bn2.running_var");
    let path = dir.path().join("missing.safetensors");
    write_safetensors(&state, &path);
    match import_weights(fresh(), &path) {
        Err(ImportError::Mismatch { missing, unused, .. }) => {
            assert_eq!(missing, ["layer4.1.bn2.running_var"]);
            assert!(unused.is_empty(), "{unused:?}");
        }
        other => panic!("expected Mismatch, got {other:?}"),
    }

    // resnet34 weights do not fit resnet18: layer1.2 etc. are unused.
    let mut state = torchvision_resnet18_state(4, 10);
    state.push(Entry { name: "layer1.2.conv1.weight".into(), shape: vec![4, 4, 3, 3], values: vec![0.0; 144] });
    let path = dir.path().join("extra.safetensors");
    write_safetensors(&state, &path);
    match import_weights(fresh(), &path) {
        Err(ImportError::Mismatch { missing, unused, .. }) => {
            assert!(missing.is_empty(), "{missing:?}");
            assert!(unused.iter().any(|u| u.contains("layer1.2")), "{unused:?}");
        }
        other => panic!("expected Mismatch, got {other:?}"),
    }
}
