//! The 1-D toy GAN converges (θ from 3 to the data, D flat at 1/2); the 2-D mixture GAN moves its
//! samples onto the ring's modes and counts them; the browser's awaited steps of both give the
//! blocking steps' figures; and the engine's classifier learns MNIST digits well above chance in
//! a few steps; conditional samples are scored per class.

mod common;
use std::path::Path;

use shadergan::config::DataConfig;
use shadergan::models::classifier::{labelled_subset, Classifier};
use shadergan::train::run;

#[test]
fn toy_gan_theta_converges_and_d_flattens() {
    let gpu = common::gpu();
    let dir = tempfile::tempdir().unwrap();
    let r = shadergan::toy::run(&gpu, Some(dir.path()), 300, 5).unwrap();
    assert_eq!(r.theta.len(), 300);
    let last: f32 = r.theta[250..].iter().map(|t| t.abs()).sum::<f32>() / 50.0;
    assert!(last < 0.25, "theta should reach the data mean 0, mean |theta| over the last steps {last}");
    assert!(r.theta[0] > 2.5, "theta starts near 3");
    assert!((r.d_real - 0.5).abs() < 0.05, "D(x) on real data should flatten to 1/2, got {}", r.d_real);
    assert!(r.w.abs() < 0.3, "D's slope should shrink, got {}", r.w);
    assert_eq!(r.stage_files.len(), 4);
    for f in &r.stage_files {
        assert!(dir.path().join(f).exists());
    }
}

#[test]
fn toy_and_mixture_steps_awaited_give_the_blocking_steps_figures() {
    use shadergan::mixture::MixtureGan;
    use shadergan::toy::ToyGame;
    let gpu = common::gpu();
    let (mut blocking, mut awaited) = (ToyGame::new(&gpu, 11), ToyGame::new(&gpu, 11));
    for _ in 0..3 {
        assert_eq!(blocking.step(), pollster::block_on(awaited.step_async()));
    }
    let (mut blocking, mut awaited) = (MixtureGan::new(&gpu, 11), MixtureGan::new(&gpu, 11));
    for _ in 0..3 {
        assert_eq!(blocking.step(), pollster::block_on(awaited.step_async()));
    }
}

#[test]
fn mode_coverage_counts_modes_holding_a_percent_of_the_samples() {
    use shadergan::mixture::{mode_centre, mode_coverage, MODE_STD};
    let mut points = Vec::new();
    let mut put = |k: usize, count: usize, dx: f32| {
        let [x, y] = mode_centre(k);
        for _ in 0..count {
            points.extend([x + dx, y]);
        }
    };
    put(0, 100, 0.0);
    put(3, 50, 2.9 * MODE_STD); // just inside three deviations
    put(5, 1, 0.0); // one point of 161: under 1%
    put(6, 10, 3.1 * MODE_STD); // just outside
    let (covered, quality) = mode_coverage(&points);
    assert_eq!(covered, 2);
    assert!((quality - 151.0 / 161.0).abs() < 1e-6, "share near a mode {quality}");
    assert_eq!(mode_coverage(&[]), (0, 0.0));
}

#[test]
fn mixture_gan_moves_its_samples_onto_the_ring() {
    use shadergan::mixture::{mode_coverage, MixtureGan, RADIUS};
    let gpu = common::gpu();
    let mut gan = MixtureGan::new(&gpu, 3);
    let radius_error = |gan: &mut MixtureGan| {
        let p = gan.samples(2000).to_vec();
        p.chunks(2).map(|q| (q[0].hypot(q[1]) - RADIUS).abs()).sum::<f32>() / 1000.0
    };
    let before = radius_error(&mut gan);
    let mut last = None;
    for _ in 0..150 {
        last = Some(gan.step());
    }
    let last = last.unwrap();
    assert!(last.d_loss.is_finite() && last.g_loss.is_finite(), "{last:?}");
    let after = radius_error(&mut gan);
    let (covered, quality) = mode_coverage(&gan.samples(2000).to_vec());
    println!("mean |r - R|: {before} -> {after}; {covered} modes covered, {quality} near a mode; {last:?}");
    assert!(after < 0.5 * before && after < 0.6, "samples should near the ring: mean |r - R| {before} -> {after}");
    assert!(covered >= 1, "at least one mode reached after 150 steps");
}

#[test]
fn classifier_learns_digits_quickly() {
    let gpu = common::gpu();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data: DataConfig = toml::from_str(&format!(
        "kind = \"idx\"\nimages = \"{}\"\nlabels = \"{}\"\nimage_size = 16\nlimit = 2000",
        root.join("assets/mnist-train-images-idx3-ubyte.gz").display(),
        root.join("assets/mnist-train-labels-idx1-ubyte.gz").display()
    ))
    .unwrap();
    let set = run::load_data(&data, 32).unwrap();
    let train = labelled_subset(&set, 100, 3).unwrap();
    assert_eq!(train.len, 1000);
    let mut c = Classifier::new(&gpu, 10, 1, 16, 8, 1);
    c.train(&train, 120, 32, 3e-3, 1, |_, _| {});
    let held_out = set.truncated(2000);
    let acc = c.accuracy(&gpu, &held_out);
    assert!(acc > 0.6, "accuracy {acc} after 120 steps (chance is 0.1)");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    c.save(&path, 8, Some(acc)).unwrap();
    let back = Classifier::load(&gpu, &path).unwrap();
    assert_eq!(back.predict(&gpu, &held_out.pixels[..64 * 256]), c.predict(&gpu, &held_out.pixels[..64 * 256]));
}

#[test]
fn steering_z_raises_the_target_class_probability_and_leaves_weights_alone() {
    use shadergan::config::Config;
    use shadergan::train::GanTrainer;
    let gpu = common::gpu();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("tests/fixtures/tiny-dcgan.toml")).unwrap();
    let mut config = Config::parse(&text, Path::new("tiny")).unwrap();
    config.data.images = root.join(&config.data.images);
    config.data.labels = config.data.labels.map(|l| root.join(l));
    let data = run::load_dataset(&config).unwrap();
    let mut t = GanTrainer::new(&gpu, &config, data.len);
    for _ in 0..3 {
        t.train_step(&data);
    }
    let mut c = Classifier::new(&gpu, 10, 1, 16, 8, 2);
    c.train(&data, 20, 16, 3e-3, 1, |_, _| {});
    let weights: Vec<Vec<f32>> = t.g.parameters().iter().map(|p| p.to_vec()).collect();
    let z = t.fixed_noise[..4 * config.model.latent_dim].to_vec();
    let traj = shadergan::control::steer(&gpu, &config, &t.g, &c, &z, &[], 3, 6, 0.5);
    assert_eq!(traj.images.len(), 4 * 7 * 16 * 16);
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(mean(&traj.end_prob) > mean(&traj.start_prob), "p(3): {:?} -> {:?}", traj.start_prob, traj.end_prob);
    let after: Vec<Vec<f32>> = t.g.parameters().iter().map(|p| p.to_vec()).collect();
    assert_eq!(weights, after, "steering must not change the generator");
}

#[test]
fn conditional_scores_count_the_requested_class_or_the_codes_digit() {
    // 3 classes (or code values), 10 samples each; rows are the classifier's label histograms.
    let counts = vec![vec![9, 1, 0], vec![2, 7, 1], vec![0, 4, 6]];
    let conditional = shadergan::eval::conditional_report(&counts, 10, false);
    assert!(conditional.contains("class 1: 70.0% of 10 samples classified as 1"), "{conditional}");
    assert!(conditional.contains("overall: 73.33% of 30"), "{conditional}");
    // InfoGAN never sees labels: code 2 is scored against the digit it mostly makes.
    let swapped = vec![vec![0, 8, 2], vec![9, 0, 1], vec![1, 8, 1]];
    let info = shadergan::eval::conditional_report(&swapped, 10, true);
    assert!(info.contains("code 0: 80.0% of 10 samples classified as 1"), "{info}");
    assert!(info.contains("code 1: 90.0% of 10 samples classified as 0"), "{info}");
    assert!(
        info.contains(
            "overall: 83.33% of 30 samples show their code's digit; the 3 code values produce 2 different digits"
        ),
        "{info}"
    );
}
