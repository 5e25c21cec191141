//! The adversarial losses of every GAN variant against their formulas on the CPU, and a few
//! training steps of each variant (WGAN with clipping, WGAN-GP with a layer-norm critic,
//! least squares, label smoothing, conditional).

mod common;
use std::path::Path;

use common::*;
use shadergan::config::{Config, GanLoss, Norm, OptimizerKind};
use shadergan::train::losses::{discriminator_loss, generator_loss};
use shadergan::train::{run, GanTrainer};

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

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
    let variants: Vec<(&str, Box<dyn Fn(&mut Config)>)> = vec![
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
