//! CycleGAN: the losses against their definitions, the image pool, a short run in which both
//! cycle losses fall, checkpoints, and the translate command.

mod common;

use common::*;
use shadergan::config::CycleConfig;
use shadergan::cyclegan::{CycleTrainer, Domains, ImagePool};
use shadergan::nn::Mode;
use shadergan::train::run::load_data;

fn tiny(steps: u64) -> CycleConfig {
    let mut c = common::tiny_cyclegan();
    c.train.steps = steps;
    c.train.lr = 2e-3;
    c
}

#[test]
fn cycle_and_identity_losses_are_their_definitions() {
    let gpu = gpu();
    let config = tiny(10);
    let domains = Domains { x: load_data(&config.domain_x, 8).unwrap(), y: load_data(&config.domain_y, 8).unwrap() };
    let (x, y) = (&domains.x, &domains.y);
    let mut t = CycleTrainer::new(&gpu, &config, x.len, y.len);
    // The batch is the whole 8-image set (in some order; the L1 means do not care), so the
    // losses of the first step can be recomputed here from the networks before the update.
    let (xt, yt) = (
        common::tensor(&gpu, &[8, 1, 16, 16], &f64s(&x.pixels)),
        common::tensor(&gpu, &[8, 1, 16, 16], &f64s(&y.pixels)),
    );
    let l1 = |a: &[f32], b: &[f32]| {
        a.iter().zip(b).map(|(p, q)| (*p as f64 - *q as f64).abs()).sum::<f64>() / a.len() as f64
    };
    let gx = t.g_xy.forward(&xt, Mode::Train);
    let fy = t.g_yx.forward(&yt, Mode::Train);
    let cycle = l1(&t.g_yx.forward(&gx, Mode::Train).to_vec(), &x.pixels)
        + l1(&t.g_xy.forward(&fy, Mode::Train).to_vec(), &y.pixels);
    let identity = l1(&t.g_xy.forward(&yt, Mode::Train).to_vec(), &y.pixels)
        + l1(&t.g_yx.forward(&xt, Mode::Train).to_vec(), &x.pixels);
    let s = t.train_step(&domains);
    assert_close("cycle loss", &[s.cycle], &[cycle], 1e-4, 1e-5);
    assert_close("identity loss", &[s.identity], &[identity], 1e-4, 1e-5);
}

#[test]
fn image_pool_keeps_history_up_to_its_capacity() {
    use rand::SeedableRng;
    let gpu = gpu();
    let mut pool = ImagePool::new(5);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let first = Tensor::from_vec(&gpu, &[4, 1], &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(pool.query(&first, &mut rng).to_vec(), vec![1.0, 2.0, 3.0, 4.0], "a filling pool passes images through");
    let mut saw_old = false;
    for round in 0..10 {
        let v = 10.0 * (round + 1) as f32;
        let fresh = Tensor::from_vec(&gpu, &[4, 1], &[v, v + 1.0, v + 2.0, v + 3.0]);
        let out = pool.query(&fresh, &mut rng).to_vec();
        assert_eq!(out.len(), 4);
        saw_old |= out.iter().any(|o| *o < v);
        assert!(pool.len() <= 5);
    }
    assert!(saw_old, "about half of the queries should return images from the history");
    let mut off = ImagePool::new(0);
    assert_eq!(off.query(&first, &mut rng).to_vec(), first.to_vec());
}

use shadergan::Tensor;

#[test]
fn both_cycle_losses_fall_and_translate_writes_rows() {
    let gpu = gpu();
    let config = tiny(40);
    let domains = Domains { x: load_data(&config.domain_x, 8).unwrap(), y: load_data(&config.domain_y, 8).unwrap() };
    let (x, y) = (&domains.x, &domains.y);
    let mut t = CycleTrainer::new(&gpu, &config, x.len, y.len);
    let per = 16 * 16;
    let cycle_err = |t: &CycleTrainer| {
        let l1 = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| (p - q).abs()).sum::<f32>() / a.len() as f32;
        let back_x = t.translate(&t.translate(&x.pixels, true), false);
        let back_y = t.translate(&t.translate(&y.pixels, false), true);
        (l1(&back_x, &x.pixels), l1(&back_y, &y.pixels))
    };
    let (x0, y0) = cycle_err(&t);
    for _ in 0..40 {
        let s = t.train_step(&domains);
        assert!(s.cycle.is_finite() && s.g_adv.is_finite());
    }
    let (x1, y1) = cycle_err(&t);
    assert!(x1 < 0.7 * x0 && y1 < 0.7 * y0, "cycle errors X {x0} -> {x1}, Y {y0} -> {y1}");
    assert!(t.learning_rate() < config.train.lr, "the learning rate decays in the second half");

    let dir = tempfile::tempdir().unwrap();
    shadergan::train::save_checkpoint(&t, dir.path()).unwrap();
    let mut resumed = CycleTrainer::new(&gpu, &config, x.len, y.len);
    shadergan::train::restore_checkpoint(&mut resumed, dir.path()).unwrap();
    assert_eq!(resumed.step, 40);
    assert_eq!(resumed.translate(&x.pixels[..per], true), t.translate(&x.pixels[..per], true));

    // translate: input | translation | reconstruction rows for a folder of images.
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    for i in 0..3 {
        shadergan::viz::save_png(
            &input.join(format!("{i}.png")),
            &shadergan::viz::to_image(&x.pixels[i * per..(i + 1) * per], 1, 16),
            1,
        )
        .unwrap();
    }
    let out = dir.path().join("out");
    let model = dir.path().join("model.safetensors");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_shadergan"))
        .args([
            "translate",
            "--checkpoint",
            model.to_str().unwrap(),
            "--direction",
            "x2y",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for i in 0..3 {
        assert!(out.join(format!("{i:06}.png")).exists());
    }
    let grid = image::open(out.join("grid.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (2 * (3 * 18 + 2), 2 * (3 * 18 + 2)));
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_shadergan"))
        .args([
            "translate",
            "--checkpoint",
            model.to_str().unwrap(),
            "--direction",
            "sideways",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("x2y or y2x"));
}

#[test]
fn patchgan_layers_that_leave_no_score_are_refused_naming_the_key_and_what_fits() {
    use rand::SeedableRng;
    use shadergan::config::patch_scores_side;
    let gpu = common::gpu();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("configs/cyclegan-digits.toml")).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for size in [16, 20, 28, 32, 64] {
        for layers in 1..=5 {
            let config = text
                .replace("d_layers = 2", &format!("d_layers = {layers}"))
                .replace("image_size = 32", &format!("image_size = {size}"));
            let parsed = CycleConfig::parse(&config, std::path::Path::new("c.toml"));
            match patch_scores_side(size, layers) {
                Some(side) => {
                    parsed.unwrap_or_else(|e| panic!("{size}x{size}, {layers} layers: {e}"));
                    let d = shadergan::models::cyclegan::patch_discriminator(&gpu, 1, 2, layers, &mut rng);
                    let out = d.forward(&Tensor::zeros(&gpu, &[1, 1, size, size]), Mode::Eval);
                    assert_eq!(out.shape(), &[1, 1, side, side], "{size}x{size}, {layers} layers");
                }
                None => {
                    let err = parsed.expect_err("refused").to_string();
                    assert!(err.contains("model.d_layers") && err.contains("leaves no PatchGAN score"), "{err}");
                    let fits = (1..layers).rev().find(|&l| patch_scores_side(size, l).is_some()).unwrap();
                    assert!(err.contains(&format!("at most {fits} layers fit")), "{err}");
                }
            }
        }
    }
    assert_eq!(patch_scores_side(16, 5), None, "the issue's case: 16x16 with five layers");
}
