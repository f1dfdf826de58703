//! PointNet and PointNet++ (SSG): shapes, slots, BN folding, geometry sharing, invariances,
//! MAC counts and training.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use zoo::{Convertible, ForwardCtx, ModelError, ModelSpec, Network, build_model, tensor_from, tensor_values};

const POINTS: usize = 64;
/// A CPU-sized PointNet++ for tests.
const PN2: &str =
    "name = \"pointnet2-ssg\"\nwidth = 0.125\nsa_centroids = [16, 8]\nsa_radii = [0.4, 0.8]\nsa_neighbours = [8, 8]";
const PN: &str = "name = \"pointnet\"\nwidth = 0.125";

fn spec(text: &str) -> ModelSpec {
    toml::from_str(text).unwrap()
}

fn model(text: &str, points: usize, device: &Device) -> Network {
    build_model(&spec(text), [3, points, 1], 10, device).unwrap()
}

fn cloud(batch: usize, points: usize, device: &Device) -> Tensor<4> {
    Tensor::random([batch, 3, points, 1], Distribution::Uniform(-1.0, 1.0), device)
}

fn names(m: &Network) -> Vec<String> {
    m.slots().into_iter().map(|s| s.name).collect()
}

fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |s, v| s.max(v.abs())).max(1e-3);
    for (u, v) in a.iter().zip(b) {
        assert!((u - v).abs() <= 1e-4 * scale + 1e-6, "{what}: {u} vs {v}");
    }
}

#[test]
fn output_shapes_for_every_variant() {
    let d = Device::flex();
    for text in [
        PN.to_string(),
        format!("{PN}\npooling = \"max\""),
        format!("{PN}\ntnet = true\nbatch_norm = false"),
        PN2.to_string(),
        format!("{PN2}\npooling = \"max\"\nbatch_norm = false"),
    ] {
        let m = model(&text, POINTS, &d);
        assert_eq!(m.forward(cloud(3, POINTS, &d)).dims(), [3, 10], "{text}");
    }
    // PointNet takes any number of points; PointNet++ any number ≥ the first level's centroids.
    assert_eq!(model(PN, POINTS, &d).forward(cloud(2, 17, &d)).dims(), [2, 10]);
    assert_eq!(model(PN2, POINTS, &d).forward(cloud(2, 16, &d)).dims(), [2, 10]);
}

#[test]
fn slot_lists_name_every_layer_in_forward_order() {
    let d = Device::flex();
    let pn = model(PN, POINTS, &d);
    let expected: Vec<String> = (0..5)
        .map(|i| format!("feat.mlp_convs.{i}.relu"))
        .chain(["head.fc1.relu".into(), "head.fc2.relu".into()])
        .collect();
    assert_eq!(names(&pn), expected);
    let slots = pn.slots();
    assert_eq!(slots[4].consumers, ["head.fc1"]);
    assert_eq!(slots[6].consumers, ["head.fc3"]);

    let tn = model(&format!("{PN}\ntnet = true"), POINTS, &d);
    let n = names(&tn);
    assert_eq!(n.len(), 12);
    assert_eq!(
        n[..5],
        [
            "tnet.feat.mlp_convs.0.relu",
            "tnet.feat.mlp_convs.1.relu",
            "tnet.feat.mlp_convs.2.relu",
            "tnet.head.fc1.relu",
            "tnet.head.fc2.relu"
        ]
    );
    assert_eq!(n[5..], expected[..]);

    let pn2 = model(PN2, POINTS, &d);
    let n = names(&pn2);
    assert_eq!(n.len(), 11);
    assert_eq!(n[..3], ["sa1.mlp_convs.0.relu", "sa1.mlp_convs.1.relu", "sa1.mlp_convs.2.relu"]);
    assert_eq!(n[8..], ["sa3.mlp_convs.2.relu", "head.fc1.relu", "head.fc2.relu"]);
    let slots = pn2.slots();
    assert_eq!(slots[2].consumers, ["sa2.mlp_convs.0"]);
    assert_eq!(slots[5].consumers, ["sa3.mlp_convs.0"]);
    assert_eq!(slots[8].consumers, ["head.fc1"]);
}

#[test]
fn every_slot_is_called_once_with_point_shaped_tensors_and_consumers_are_traced() {
    struct Shapes(Vec<(usize, [usize; 4])>);
    impl zoo::SlotHook for Shapes {
        fn apply(&mut self, slot: usize, x: Tensor<4>) -> Tensor<4> {
            self.0.push((slot, x.dims()));
            burn::tensor::activation::relu(x)
        }
    }
    let d = Device::flex();
    for text in [format!("{PN}\ntnet = true"), PN2.to_string(), format!("{PN2}\npooling = \"max\"")] {
        let m = model(&text, POINTS, &d);
        let mut hook = Shapes(vec![]);
        let out = m.forward_ctx(cloud(2, POINTS, &d), &mut ForwardCtx::with_hook(&mut hook));
        assert_eq!(out.dims(), [2, 10]);
        let slots = m.slots();
        assert_eq!(hook.0.iter().map(|s| s.0).collect::<Vec<_>>(), (0..slots.len()).collect::<Vec<_>>());
        if text.starts_with(PN2) {
            let max = text.contains("max");
            // sa1: [n, C, S1=16, K1=8]; its last slot is pooled first with max pooling.
            assert_eq!(hook.0[0].1, [2, 8, 16, 8]);
            assert_eq!(hook.0[2].1, if max { [2, 16, 16, 1] } else { [2, 16, 16, 8] });
            assert_eq!(hook.0[3].1, [2, 16, 8, 8]);
            assert_eq!(hook.0[6].1, [2, 32, 1, 8]);
            assert_eq!(hook.0[9].1, [2, 64, 1, 1]);
        }
        let mut tr = ForwardCtx::tracing();
        let _ = m.forward_ctx(cloud(1, POINTS, &d), &mut tr);
        let layers: Vec<String> = tr.take_trace().into_iter().map(|l| l.name).collect();
        for s in &slots {
            for c in &s.consumers {
                assert!(layers.contains(c), "{text}: consumer {c} of {} not traced ({layers:?})", s.name);
            }
        }
    }
}

/// Trains a model a few steps so BN has non-trivial γ, β and running statistics.
fn trained_with_bn(text: &str) -> Network {
    let ad = Device::flex().autodiff();
    ad.seed(5);
    let mut m = model(text, POINTS, &ad);
    let mut opt = AdamConfig::new().init();
    for _ in 0..3 {
        let x = cloud(4, POINTS, &ad);
        let loss = m.forward(x).sub_scalar(0.3).powi_scalar(2).mean();
        let g = GradientsParams::from_grads(loss.backward(), &m);
        m = opt.step(0.05, m, g);
    }
    m.valid().to_device(&Device::flex())
}

#[test]
fn bn_folding_preserves_outputs() {
    let d = Device::flex();
    for text in [format!("{PN}\ntnet = true"), format!("{PN}\npooling = \"max\""), PN2.to_string()] {
        let m = trained_with_bn(&text);
        let x = cloud(3, POINTS, &d);
        let a = tensor_values(m.forward(x.clone()));
        let folded = m.fold_batchnorm();
        let b = tensor_values(folded.forward(x));
        assert_close(&a, &b, &text);
        // Folding removed every BN: a model built without BN has the same parameter count.
        let no_bn = model(&format!("{text}\nbatch_norm = false"), POINTS, &d);
        assert_eq!(folded.num_params(), no_bn.num_params(), "{text}");
    }
}

#[test]
fn a_step_major_repeated_batch_gives_repeated_outputs() {
    // The simulator feeds [c·B, 3, P, 1] = the batch repeated c times, step-major; geometry is
    // computed once per distinct sample and must give exactly the per-sample result.
    let d = Device::flex();
    for text in [PN2.to_string(), format!("{PN2}\npooling = \"max\"")] {
        let m = model(&text, POINTS, &d);
        let x = cloud(2, POINTS, &d);
        let single = tensor_values(m.forward(x.clone()));
        let repeated = tensor_values(m.forward(x.clone().repeat_dim(0, 3)));
        assert_close(&repeated, &[single.clone(), single.clone(), single.clone()].concat(), &text);
        // Each sample alone gives its row of the batch result.
        for (i, row) in single.chunks(10).enumerate() {
            let alone = tensor_values(m.forward(x.clone().narrow(0, i, 1)));
            assert_close(&alone, row, &text);
        }
    }
}

#[test]
fn pointnet_is_invariant_to_point_order() {
    let d = Device::flex();
    for text in [PN.to_string(), format!("{PN}\npooling = \"max\""), format!("{PN}\ntnet = true")] {
        let m = model(&text, POINTS, &d);
        let x = cloud(2, POINTS, &d);
        // A fixed permutation of the points (multiplicative step 37 is coprime with 64).
        let perm: Vec<i64> = (0..POINTS as i64).map(|i| (i * 37 + 11) % POINTS as i64).collect();
        let idx = Tensor::<1, Int>::from_data(burn::tensor::TensorData::new(perm, [POINTS]), &d);
        let permuted = x.clone().select(2, idx);
        assert!(tensor_values(permuted.clone()) != tensor_values(x.clone()));
        assert_close(&tensor_values(m.forward(x)), &tensor_values(m.forward(permuted)), &text);
    }
}

#[test]
fn pointnet2_sees_relative_coordinates_until_the_global_level() {
    // FPS and ball query depend on distances only and sa1/sa2 read neighbour − centroid
    // coordinates, so translating a cloud changes nothing before sa3, which reads the absolute
    // xyz of the sa2 centroids. With sa3's weights on those 3 channels zeroed, the network is
    // translation-invariant; with them, it is not. (Seeded: an unlucky random init whose sa3
    // units are all inactive would not see the shift either.)
    let d = Device::flex();
    d.seed(3);
    let m = model(PN2, POINTS, &d);
    let x = cloud(1, POINTS, &d);
    let shifted = x.clone() + tensor_from(vec![0.5, -0.25, 2.0], [1, 3, 1, 1], &d);
    let (a, b) = (tensor_values(m.forward(x.clone())), tensor_values(m.forward(shifted.clone())));
    assert!(a.iter().zip(&b).any(|(u, v)| (u - v).abs() > 1e-3), "sa3 sees absolute coordinates");
    let m = zero_sa3_xyz_weights(m);
    assert_close(&tensor_values(m.forward(x)), &tensor_values(m.forward(shifted)), "translation");
}

/// Zeroes the weights of `sa3.mlp_convs.0` on its first 3 (xyz) input channels.
fn zero_sa3_xyz_weights(m: Network) -> Network {
    use burn::module::{ModuleMapper, Param};
    struct Zero(Vec<String>);
    impl ModuleMapper for Zero {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.0.push(name.into());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if D != 4 || !self.0.ends_with(&["sa3", "mlp_convs", "0", "weight"].map(String::from)) {
                return param;
            }
            param.map(|t| {
                let dims = t.dims();
                let (o, i) = (dims[0], dims[1]);
                let mask: Vec<f32> = (0..o * i).map(|k| if k % i < 3 { 0.0 } else { 1.0 }).collect();
                let mask = tensor_from(mask, [o, i], &t.device()).reshape(dims);
                t * mask
            })
        }
    }
    let mut z = Zero(vec![]);
    let m = m.map(&mut z);
    assert!(z.0.is_empty());
    m
}

#[test]
fn traced_macs_follow_the_layer_shapes() {
    let d = Device::flex();
    let macs = |text: &str, points: usize| {
        let m = build_model(&spec(text), [3, points, 1], 10, &d).unwrap();
        let mut ctx = ForwardCtx::tracing();
        let _ = m.forward_ctx(Tensor::zeros([1, 3, points, 1], &d), &mut ctx);
        ctx.take_trace()
    };
    // PointNet, width 1, 1024 points: per point 3·64 + 64·64 + 64·64 + 64·128 + 128·1024, then
    // FC 1024·512 + 512·256 + 256·10.
    let t = macs("name = \"pointnet\"", 1024);
    let total: u64 = t.iter().map(|l| l.macs).sum();
    assert_eq!(total, 1024 * (3 * 64 + 64 * 64 + 64 * 64 + 64 * 128 + 128 * 1024) + 1024 * 512 + 512 * 256 + 256 * 10);
    assert_eq!(t.len(), 8);
    // PointNet++ at the test config: sa1 reads 3·64 input neurons, sa2 (3 + 16)·16 (gathered).
    let t = macs(PN2, POINTS);
    let first = |name: &str| t.iter().find(|l| l.name == name).unwrap().clone();
    let sa1 = first("sa1.mlp_convs.0");
    assert_eq!((sa1.macs, sa1.inputs, sa1.outputs), (16 * 8 * 3 * 8, 3 * 64, 8 * 16 * 8));
    let sa2 = first("sa2.mlp_convs.0");
    assert_eq!((sa2.macs, sa2.inputs, sa2.outputs), (8 * 8 * 19 * 16, 19 * 16, 16 * 8 * 8));
    let sa3 = first("sa3.mlp_convs.0");
    assert_eq!((sa3.macs, sa3.inputs), (8 * 35 * 32, 35 * 8));
}

#[test]
fn image_inputs_and_misplaced_options_are_rejected() {
    let d = Device::flex();
    let err = |text: &str, input: [usize; 3]| match build_model(&spec(text), input, 10, &d) {
        Err(ModelError::Invalid { model, reason }) => format!("{model}: {reason}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("{text} with {input:?} was accepted"),
    };
    assert!(err("name = \"pointnet\"", [3, 32, 32]).starts_with("pointnet: expects a point cloud"));
    assert!(err("name = \"pointnet2-ssg\"", [1, 28, 28]).starts_with("pointnet2-ssg: expects a point cloud"));
    assert!(err("name = \"pointnet2-ssg\"", [3, 256, 1]).contains("sa_centroids[0] = 512"));
    assert!(err("name = \"pointnet2-ssg\"\nsa_centroids = [16, 32]", [3, 64, 1]).contains("sa_centroids[1]"));
    assert!(err("name = \"pointnet2-ssg\"\nsa_radii = [0.2]", [3, 1024, 1]).contains("2 levels"));
    assert!(err("name = \"vgg16\"\ntnet = true", [3, 32, 32]).contains("tnet"));
    assert!(err("name = \"pointnet\"\nsa_neighbours = [8, 8]", [3, 64, 1]).contains("pointnet2-ssg"));
}

#[test]
fn new_spec_fields_are_not_serialized_at_their_defaults() {
    // Serialized specs are cache keys: the point-model fields must not change existing ones.
    let s = spec("name = \"vgg16\"");
    let text = toml::to_string(&s).unwrap();
    assert!(!text.contains("tnet") && !text.contains("sa_"), "{text}");
    assert_eq!(s.sa_centroids, [512, 128]);
    assert_eq!(s.sa_radii, [0.2, 0.4]);
    assert_eq!(s.sa_neighbours, [32, 64]);
    let custom = spec(PN2);
    let back: ModelSpec = toml::from_str(&toml::to_string(&custom).unwrap()).unwrap();
    assert_eq!(back, custom);
}

#[test]
fn pointnet_learns_two_toy_classes() {
    // Class 0: points on a flat disc (z = 0); class 1: points on a vertical line. Adam, a few
    // steps: the loss must drop well below its starting value.
    let ad = Device::flex().autodiff();
    ad.seed(11);
    let m = model("name = \"pointnet\"\nwidth = 0.0625", 32, &ad);
    let (x, y) = toy_batch(8, 32, &ad);
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let mut opt = AdamConfig::new().init();
    let mut m = m;
    let mut losses = vec![];
    for _ in 0..12 {
        let loss = loss_fn.forward(m.forward(x.clone()).narrow(1, 0, 2), y.clone());
        losses.push(loss.clone().into_scalar::<f32>());
        let g = GradientsParams::from_grads(loss.backward(), &m);
        m = opt.step(0.01, m, g);
    }
    assert!(losses[11] < 0.5 * losses[0], "{losses:?}");
}

fn toy_batch(n: usize, points: usize, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let u = tensor_values(Tensor::<2>::random([n, 2 * points], Distribution::Uniform(-1.0, 1.0), device));
    let mut v = Vec::with_capacity(n * 3 * points);
    let mut labels = Vec::with_capacity(n);
    for (i, r) in u.chunks(2 * points).enumerate() {
        let class = i % 2;
        let (a, b) = r.split_at(points);
        let (xs, ys, zs): (Vec<f32>, Vec<f32>, Vec<f32>) = if class == 0 {
            (a.to_vec(), b.to_vec(), vec![0.0; points])
        } else {
            (vec![0.0; points], vec![0.0; points], a.to_vec())
        };
        v.extend(xs);
        v.extend(ys);
        v.extend(zs);
        labels.push(class as i64);
    }
    let y = Tensor::<1, Int>::from_data(burn::tensor::TensorData::new(labels, [n]), device);
    (tensor_from(v, [n, 3, points, 1], device), y)
}

#[test]
fn the_tnet_starts_as_the_identity_and_its_output_layer_receives_gradients() {
    use burn::module::{ModuleVisitor, Param};
    let ad = Device::flex().autodiff();
    ad.seed(2);
    let m = model(&format!("{PN}\ntnet = true"), POINTS, &ad);
    let x = cloud(4, POINTS, &ad);
    // At init fc3 is zero and M = I: the cloud passes unchanged, so the main MLP's first conv
    // gets a gradient (it would not if the identity were missing: x·0 = 0), fc3 gets one, and
    // nothing flows further back into the T-Net yet.
    let grads = m.forward(x).powi_scalar(2).mean().backward();
    struct Grads<'a>(Vec<String>, &'a burn::tensor::Gradients, Vec<(String, f32)>);
    impl ModuleVisitor for Grads<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.0.push(name.into());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let g = param.grad(self.1).map_or(0.0, |g| g.abs().sum().into_scalar::<f32>());
            self.2.push((self.0.join("."), g));
        }
    }
    let mut v = Grads(vec![], &grads, vec![]);
    m.visit(&mut v);
    let grad =
        |p: &str| v.2.iter().find(|(n, _)| *n == format!("PointNet.{p}")).unwrap_or_else(|| panic!("{p}: {:?}", v.2)).1;
    assert!(grad("tnet.head.fc3.weight") > 0.0);
    assert!(grad("feat.mlp_convs.0.weight") > 0.0);
    assert_eq!(grad("tnet.head.fc2.weight"), 0.0);
}

/// A CPU-sized part segmenter for tests.
const SEG: &str = "name = \"pointnet-partseg\"\nwidth = 0.125";
/// Parts scored per point by the test segmenters.
const PARTS: usize = 5;

fn segmenter(text: &str, device: &Device) -> Network {
    build_model(&spec(text), [3, POINTS, 1], PARTS, device).unwrap()
}

#[test]
fn part_segmenter_scores_every_point_and_lists_its_slots() {
    let d = Device::flex();
    let m = segmenter(SEG, &d);
    assert_eq!(m.forward(cloud(3, POINTS, &d)).dims(), [3, PARTS * POINTS]);
    let slots = m.slots();
    let names: Vec<&str> = slots.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "local.mlp_convs.0.relu",
            "local.mlp_convs.1.relu",
            "global.mlp_convs.0.relu",
            "global.mlp_convs.1.relu",
            "global.mlp_convs.2.relu",
            "seg.mlp_convs.0.relu",
            "seg.mlp_convs.1.relu",
            "seg.mlp_convs.2.relu",
            "seg.mlp_convs.3.relu",
        ]
    );
    // The local features feed the global MLP and, concatenated, the segmentation MLP.
    assert_eq!(slots[1].consumers, ["global.mlp_convs.0", "seg.mlp_convs.0"]);
    assert_eq!(slots[4].consumers, ["seg.mlp_convs.0"]);
    assert_eq!(slots[8].consumers, ["classifier"]);
    let mut tr = ForwardCtx::tracing();
    let _ = m.forward_ctx(cloud(1, POINTS, &d), &mut tr);
    let trace = tr.take_trace();
    let seg0 = trace.iter().find(|l| l.name == "seg.mlp_convs.0").unwrap();
    // 1x1 conv over 8 local + 128 global channels (width 1/8) to 64, at every point.
    assert_eq!(seg0.macs, (POINTS * (8 + 128) * 64) as u64);
    assert_eq!(segmenter(&format!("{SEG}\ntnet = true"), &d).slots().len(), 14);
    assert!(matches!(m.layer_graph([3, POINTS, 1]), Err(zoo::GraphError::Unsupported { .. })));
    let one_part = build_model(&spec(SEG), [3, POINTS, 1], 1, &d);
    assert!(matches!(one_part, Err(ModelError::Invalid { .. })));
}

#[test]
fn part_scores_follow_their_points_when_the_cloud_is_permuted() {
    // Each point's scores depend on the point and on the order-free global feature only, so
    // permuting the points permutes the score columns of every part plane alike.
    let d = Device::flex();
    for text in [SEG.to_string(), format!("{SEG}\npooling = \"max\""), format!("{SEG}\ntnet = true")] {
        let m = segmenter(&text, &d);
        let x = cloud(2, POINTS, &d);
        let perm: Vec<usize> = (0..POINTS).map(|i| (i * 37 + 11) % POINTS).collect();
        let idx = Tensor::<1, Int>::from_data(
            burn::tensor::TensorData::new(perm.iter().map(|&i| i as i64).collect::<Vec<_>>(), [POINTS]),
            &d,
        );
        let base = tensor_values(m.forward(x.clone()));
        let permuted = tensor_values(m.forward(x.select(2, idx)));
        let expected: Vec<f32> = (0..2 * PARTS)
            .flat_map(|plane| perm.iter().map(move |&j| (plane, j)))
            .map(|(plane, j)| base[plane * POINTS + j])
            .collect();
        assert_close(&permuted, &expected, &text);
    }
}

#[test]
fn part_segmenter_bn_folding_preserves_outputs() {
    let d = Device::flex();
    let ad = Device::flex().autodiff();
    ad.seed(7);
    let mut m = build_model(&spec(&format!("{SEG}\ntnet = true")), [3, POINTS, 1], PARTS, &ad).unwrap();
    let mut opt = AdamConfig::new().init();
    for _ in 0..3 {
        let loss = m.forward(cloud(4, POINTS, &ad)).sub_scalar(0.3).powi_scalar(2).mean();
        let g = GradientsParams::from_grads(loss.backward(), &m);
        m = opt.step(0.05, m, g);
    }
    let m = m.valid().to_device(&d);
    let x = cloud(3, POINTS, &d);
    let a = tensor_values(m.forward(x.clone()));
    let b = tensor_values(m.fold_batchnorm().forward(x));
    assert_close(&a, &b, "pointnet-partseg");
}
