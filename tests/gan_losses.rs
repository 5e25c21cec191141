//! The adversarial losses of every GAN variant against their formulas on the CPU, and a few
//! training steps of each variant (WGAN with clipping, WGAN-GP with a layer-norm critic,
//! least squares, label smoothing, conditional).

mod common;
use std::path::Path;

use common::*;
use shadergan::config::{Config, GanLoss, Norm, OptimizerKind};
use shadergan::train::losses::{discriminator_loss, generator_loss};
use shadergan::train::{run, GanTrainer};
use shadergan::{grad, Tensor};

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// A named change to the base config.
type Variant = (&'static str, Box<dyn Fn(&mut Config)>);

#[test]
fn adversarial_losses_match_their_formulas() {
    let gpu = gpu();
    let mut rng = rng("gan losses");
    let real = f64s(&f32s(&uniform(&mut rng, 9, -3.0, 3.0)));
    let fake = f64s(&f32s(&uniform(&mut rng, 9, -3.0, 3.0)));
    let (rt, ft) = (common::tensor(&gpu, &[9, 1], &real), common::tensor(&gpu, &[9, 1], &fake));
    let bce = |x: f64, t: f64| softplus(x) - x * t;
    for smooth in [1.0, 0.9] {
        let want_d = mean(&real.iter().map(|&x| bce(x, smooth)).collect::<Vec<_>>())
            + mean(&fake.iter().map(|&x| bce(x, 0.0)).collect::<Vec<_>>());
        for kind in [GanLoss::Minimax, GanLoss::NonSaturating] {
            assert_close(
                &format!("{kind:?} D smooth {smooth}"),
                &[discriminator_loss(kind, &rt, &ft, smooth as f32).item()],
                &[want_d],
                1e-5,
                1e-6,
            );
        }
        let want_ls = 0.5
            * (mean(&real.iter().map(|x| (x - smooth).powi(2)).collect::<Vec<_>>())
                + mean(&fake.iter().map(|x| x * x).collect::<Vec<_>>()));
        assert_close(
            "LSGAN D",
            &[discriminator_loss(GanLoss::LeastSquares, &rt, &ft, smooth as f32).item()],
            &[want_ls],
            1e-5,
            1e-6,
        );
    }
    let w = mean(&fake) - mean(&real);
    for kind in [GanLoss::Wasserstein, GanLoss::WassersteinGp] {
        assert_close("critic loss", &[discriminator_loss(kind, &rt, &ft, 1.0).item()], &[w], 1e-5, 1e-6);
        assert_close("WGAN G", &[generator_loss(kind, &ft).item()], &[-mean(&fake)], 1e-5, 1e-6);
    }
    // Minimax: G minimises log(1 - D(G(z))) = -softplus(x); non-saturating: -log D(G(z)) = softplus(-x).
    let minimax = mean(&fake.iter().map(|&x| -softplus(x)).collect::<Vec<_>>());
    let ns = mean(&fake.iter().map(|&x| softplus(-x)).collect::<Vec<_>>());
    assert_close("minimax G", &[generator_loss(GanLoss::Minimax, &ft).item()], &[minimax], 1e-5, 1e-6);
    assert_close("non-saturating G", &[generator_loss(GanLoss::NonSaturating, &ft).item()], &[ns], 1e-5, 1e-6);
    let ls = 0.5 * mean(&fake.iter().map(|x| (x - 1.0).powi(2)).collect::<Vec<_>>());
    assert_close("LSGAN G", &[generator_loss(GanLoss::LeastSquares, &ft).item()], &[ls], 1e-5, 1e-6);
}

fn tiny() -> Config {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("tests/fixtures/tiny-dcgan.toml")).unwrap();
    let mut c = Config::parse(&text, Path::new("tiny-dcgan.toml")).unwrap();
    c.data.images = root.join(&c.data.images);
    c.data.labels = c.data.labels.map(|l| root.join(l));
    c
}

#[test]
fn every_variant_trains_a_few_steps() {
    let gpu = gpu();
    let variants: Vec<Variant> = vec![
        (
            "wgan clip",
            Box::new(|c: &mut Config| {
                c.train.loss = GanLoss::Wasserstein;
                c.train.optimizer = OptimizerKind::Rmsprop;
                c.train.d_steps = 2;
            }),
        ),
        (
            "wgan-gp",
            Box::new(|c: &mut Config| {
                c.train.loss = GanLoss::WassersteinGp;
                c.model.d_norm = Norm::Layer;
            }),
        ),
        ("lsgan", Box::new(|c: &mut Config| c.train.loss = GanLoss::LeastSquares)),
        ("smoothing", Box::new(|c: &mut Config| c.train.real_label = 0.9)),
        ("conditional", Box::new(|c: &mut Config| c.model.conditional = true)),
    ];
    for (name, tweak) in variants {
        let mut config = tiny();
        tweak(&mut config);
        let data = run::load_dataset(&config).unwrap();
        let mut t = GanTrainer::new(&gpu, &config, data.len);
        let before: Vec<Vec<f32>> = t.d.parameters().iter().map(|p| p.to_vec()).collect();
        for _ in 0..2 {
            let s = t.train_step(&data);
            assert!([s.d_loss, s.g_loss, s.d_real, s.d_fake].iter().all(|v| v.is_finite()), "{name}: {s:?}");
        }
        let after: Vec<Vec<f32>> = t.d.parameters().iter().map(|p| p.to_vec()).collect();
        assert!(before.iter().zip(&after).all(|(b, a)| b != a), "{name}: some D parameter did not move");
        if name == "wgan clip" {
            let c = config.train.clip;
            assert!(after.iter().flatten().all(|v| v.abs() <= c), "critic weights must stay within ±{c}");
        }
        if name == "conditional" {
            // The fixed grid has one row of 8 per class.
            assert_eq!(t.fixed_labels.len(), 80);
            assert_eq!(t.generate_fixed().len(), 80 * 16 * 16);
        }
    }
}

#[test]
fn wgan_gp_with_batch_norm_is_refused() {
    let mut text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-dcgan.toml")).unwrap();
    text = text.replace("seed = 7", "seed = 7\nloss = \"wasserstein_gp\"");
    let e = Config::parse(&text, Path::new("gp.toml")).unwrap_err().to_string();
    assert!(e.contains("model.d_norm") && e.contains("layer"), "{e}");
}

#[test]
fn stabiliser_and_auxiliary_formulas() {
    use shadergan::config::GanKind;
    use shadergan::nn::MinibatchDiscrimination;
    use shadergan::train::codes::{auxiliary_loss, Codes};
    use shadergan::train::losses::feature_matching;
    let gpu = gpu();
    let mut rng = rng("stabilisers");

    // Feature matching: squared distance between the batch means of the features.
    let (n, f) = (5usize, 12usize);
    let real = f64s(&f32s(&uniform(&mut rng, n * f, -1.0, 1.0)));
    let fake = f64s(&f32s(&uniform(&mut rng, n * f, -1.0, 1.0)));
    let want: f64 = (0..f)
        .map(|j| {
            let mr = (0..n).map(|i| real[i * f + j]).sum::<f64>() / n as f64;
            let mf = (0..n).map(|i| fake[i * f + j]).sum::<f64>() / n as f64;
            (mr - mf).powi(2)
        })
        .sum();
    let got =
        feature_matching(&common::tensor(&gpu, &[n, 3, 2, 2], &real), &common::tensor(&gpu, &[n, 3, 2, 2], &fake));
    assert_close("feature matching", &[got.item()], &[want], 1e-5, 1e-6);

    // Minibatch discrimination: o_b(x_i) = sum_{j != i} exp(-||M_i,b - M_j,b||_1), M = x T.
    let (a, kernels, dims) = (4usize, 3usize, 2usize);
    let x = f64s(&f32s(&uniform(&mut rng, n * a, -1.0, 1.0)));
    let mut r = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(9);
    let mbd = MinibatchDiscrimination::new(&gpu, a, kernels, dims, &mut r);
    let t = f64s(&mbd.t.to_vec());
    let m = shadergan::reference::matmul(&x, &t, 1, n, a, kernels * dims, false, false);
    let mut want = Vec::new();
    for i in 0..n {
        want.extend_from_slice(&x[i * a..(i + 1) * a]);
        for b in 0..kernels {
            let o: f64 = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    (-(0..dims)
                        .map(|c| (m[(i * kernels + b) * dims + c] - m[(j * kernels + b) * dims + c]).abs())
                        .sum::<f64>())
                    .exp()
                })
                .sum();
            want.push(o);
        }
    }
    let got = mbd.forward(&common::tensor(&gpu, &[n, a], &x));
    assert_eq!(got.shape(), &[n, a + kernels]);
    assert_close("minibatch discrimination", &got.to_vec(), &want, 1e-4, 1e-5);

    // ACGAN: class cross-entropy on the head after the score column; InfoGAN adds half the mean
    // squared error of the continuous codes.
    let mut config = tiny();
    config.model.kind = GanKind::Infogan;
    config.model.info_categorical = 3;
    config.model.info_continuous = 2;
    let out = f64s(&f32s(&uniform(&mut rng, n * 6, -2.0, 2.0)));
    let labels: Vec<u32> = vec![0, 2, 1, 1, 0];
    let cont = f32s(&uniform(&mut rng, n * 2, -1.0, 1.0));
    let codes = Codes { z: vec![], labels: labels.clone(), continuous: cont.clone() };
    let got = auxiliary_loss(&config, &common::tensor(&gpu, &[n, 6], &out), &codes).unwrap().item();
    let mut ce = 0.0;
    let mut sq = 0.0;
    for i in 0..n {
        let row = &out[i * 6 + 1..i * 6 + 4];
        let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
        ce += lse - row[labels[i] as usize];
        for c in 0..2 {
            sq += (out[i * 6 + 4 + c] - cont[i * 2 + c] as f64).powi(2);
        }
    }
    let want = ce / n as f64 + 0.5 * sq / (2 * n) as f64;
    assert_close("InfoGAN information term", &[got], &[want], 1e-5, 1e-6);
}

#[test]
fn more_variants_train_and_historical_means_are_means() {
    use shadergan::config::GanKind;
    let gpu = gpu();
    let variants: Vec<Variant> = vec![
        ("acgan", Box::new(|c: &mut Config| c.model.kind = GanKind::Acgan)),
        ("infogan", Box::new(|c: &mut Config| c.model.kind = GanKind::Infogan)),
        ("semi-supervised", Box::new(|c: &mut Config| c.model.kind = GanKind::SemiSupervised)),
        ("feature matching", Box::new(|c: &mut Config| c.train.feature_matching = true)),
        ("minibatch discrimination", Box::new(|c: &mut Config| c.model.minibatch_kernels = 8)),
        ("historical averaging", Box::new(|c: &mut Config| c.train.historical_averaging = 0.1)),
    ];
    for (name, tweak) in variants {
        let mut config = tiny();
        tweak(&mut config);
        let data = run::load_dataset(&config).unwrap();
        let mut t = GanTrainer::new(&gpu, &config, data.len);
        let before: Vec<Vec<f32>> =
            t.g.parameters().iter().chain(t.d.parameters().iter()).map(|p| p.to_vec()).collect();
        let s = t.train_step(&data);
        assert!([s.d_loss, s.g_loss, s.d_real, s.d_fake].iter().all(|v| v.is_finite()), "{name}: {s:?}");
        let after: Vec<Vec<f32>> = t.g.parameters().iter().chain(t.d.parameters().iter()).map(|p| p.to_vec()).collect();
        assert!(before.iter().zip(&after).all(|(b, a)| b != a), "{name}: some parameter did not move");
        if name == "historical averaging" {
            // After one step the running mean is (θ0 + θ1) / 2.
            for ((avg, b), a) in t.historical_means().iter().zip(&before).zip(&after) {
                let want: Vec<f64> = b.iter().zip(a).map(|(x, y)| (*x as f64 + *y as f64) / 2.0).collect();
                assert_close("historical mean", &avg.to_vec(), &want, 1e-5, 1e-6);
            }
        }
        if name == "semi-supervised" {
            let pred = t.classify(&data.pixels[..4 * 256]);
            assert_eq!(pred.len(), 4);
            assert!(pred.iter().all(|&p| p < 10));
        }
        if name == "infogan" {
            assert_eq!(t.fixed_labels.len(), 80, "one grid row per categorical value");
        }
    }
}

#[test]
fn virtual_batch_norm_matches_formula_and_ignores_batch_mates() {
    use shadergan::nn::VirtualBatchNorm;
    let gpu = gpu();
    let mut rng = rng("virtual batch norm");
    let (r, n, c, s) = (4usize, 3usize, 2usize, 5usize);
    let x = f64s(&f32s(&uniform(&mut rng, (r + n) * c * s, -2.0, 2.0)));
    let vbn = VirtualBatchNorm::new(&gpu, c, r);
    let got = vbn.forward(&common::tensor(&gpu, &[r + n, c, s], &x)).to_vec();
    let at = |i: usize, ch: usize, k: usize| x[(i * c + ch) * s + k];
    let mut want = vec![0.0; x.len()];
    for ch in 0..c {
        let ref_vals: Vec<f64> = (0..r).flat_map(|i| (0..s).map(move |k| (i, k))).map(|(i, k)| at(i, ch, k)).collect();
        let stats = |vals: &[f64]| {
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            (m, vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / vals.len() as f64)
        };
        let (mr, vr) = stats(&ref_vals);
        for i in 0..r {
            for k in 0..s {
                want[(i * c + ch) * s + k] = (at(i, ch, k) - mr) / (vr + 1e-5).sqrt();
            }
        }
        for i in r..r + n {
            // The reference batch plus this one sample (each sample weighs as one of r + 1).
            let own: Vec<f64> = (0..s).map(|k| at(i, ch, k)).collect();
            let om = own.iter().sum::<f64>() / s as f64;
            let osq = own.iter().map(|v| v * v).sum::<f64>() / s as f64;
            let rsq = ref_vals.iter().map(|v| v * v).sum::<f64>() / ref_vals.len() as f64;
            let mu = (r as f64 * mr + om) / (r as f64 + 1.0);
            let sq = (r as f64 * rsq + osq) / (r as f64 + 1.0);
            for k in 0..s {
                want[(i * c + ch) * s + k] = (at(i, ch, k) - mu) / (sq - mu * mu + 1e-5).sqrt();
            }
        }
    }
    assert_close("virtual batch norm", &got, &want, 1e-4, 1e-4);

    // In a generator with virtual batch norm, a sample's image does not depend on the rest of
    // its batch (unlike batch norm in training mode).
    let mut config = tiny();
    config.model.g_norm = shadergan::config::Norm::VirtualBatch;
    let data = run::load_dataset(&config).unwrap();
    let mut t = GanTrainer::new(&gpu, &config, data.len);
    t.train_step(&data);
    let latent = config.model.latent_dim;
    let z = f32s(&uniform(&mut rng, 5 * latent, -1.0, 1.0));
    let alone = t.generate_with(&z[..latent], &[]);
    let in_batch = t.generate_with(&z, &[]);
    assert_close("sample alone vs in a batch", &alone, &f64s(&in_batch[..alone.len()]), 1e-4, 1e-5);
}

#[test]
fn conditional_first_conv_equals_the_conv_of_class_planes() {
    // D's first conv over cat(x, one-hot class planes), computed without building the planes:
    // values, and gradients of sum(y^2) wrt the weight, bias and image, must match the definition.
    let gpu = common::gpu();
    let mut rng = common::rng("conditional first conv");
    let (n, c, s, k, out) = (5usize, 2usize, 9usize, 4usize, 3usize);
    let x = common::tensor(&gpu, &[n, c, s, s], &common::uniform(&mut rng, n * c * s * s, -1.0, 1.0)).requires_grad();
    let labels = [3u32, 0, 1, 3, 2];
    for (stride, pad) in [(2, 1), (1, 0)] {
        let conv = shadergan::nn::Conv2d::new(&gpu, c + k, out, 4)
            .stride(stride)
            .padding(pad)
            .init_with(shadergan::nn::Init::Normal(0.3), &mut rng);
        let planes = shadergan::nn::one_hot(&gpu, &labels, k).reshape(&[n, k, 1, 1]).expand(&[n, k, s, s]);
        let want = conv.forward(&Tensor::cat(&[&x, &planes], 1));
        let got = shadergan::train::codes::conditional_first_conv(&conv, &x, &labels, k);
        let bias = conv.bias.as_ref().unwrap();
        common::assert_close("conditional conv", &got.to_vec(), &common::f64s(&want.to_vec()), 1e-4, 1e-5);
        let wrt = [&conv.weight, bias, &x];
        let g_want = grad(&want.square().sum_all(), &wrt);
        let g_got = grad(&got.square().sum_all(), &wrt);
        for (name, (a, b)) in ["weight", "bias", "image"].iter().zip(g_got.iter().zip(&g_want)) {
            common::assert_close(name, &a.to_vec(), &common::f64s(&b.to_vec()), 1e-4, 1e-4);
        }
    }
}
