//! The library functions behind the CLI's commands: the semi-supervised comparison on a real
//! (tiny) run, and the checks of sampling's arguments.

mod common;
use std::path::Path;

use shadergan::config::Config;
use shadergan::eval::accuracy;
use shadergan::tasks;
use shadergan::train::{restore_checkpoint, run, GanTrainer, Trainer};

fn tiny_ssgan() -> Config {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("configs/ssgan-mnist.toml")).unwrap();
    let mut c = Config::parse(&text, Path::new("ssgan-mnist.toml")).unwrap();
    c.data.images = root.join(&c.data.images);
    c.data.labels = c.data.labels.map(|l| root.join(l));
    c.data.test_images = c.data.test_images.map(|l| root.join(l));
    c.data.test_labels = c.data.test_labels.map(|l| root.join(l));
    (c.data.image_size, c.data.limit) = (16, 512);
    (c.model.g_width, c.model.d_width, c.model.latent_dim) = (8, 8, 16);
    (c.train.batch_size, c.train.labelled_per_class, c.train.steps) = (16, 3, 3);
    c
}

#[test]
fn semi_supervised_comparison_scores_the_runs_d_and_a_baseline_on_the_same_labels() {
    let gpu = common::gpu();
    let config = tiny_ssgan();
    let data = run::load_dataset(&config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    Trainer::new(dir.path(), 3).fit(&mut GanTrainer::new(&gpu, &config, data.len), &data).unwrap();

    let c = tasks::semi_supervised_comparison(&gpu, dir.path(), 150).unwrap();
    eprintln!("{c:?}");
    assert_eq!((c.labelled, c.per_class, c.gan_steps), (30, 3, 3));
    assert_eq!(c.test_images, 997, "the bundled MNIST test set");
    // The run's D, restored independently, classifies the test set exactly as reported.
    let mut gan = GanTrainer::new(&gpu, &config, data.len);
    restore_checkpoint(&mut gan, dir.path()).unwrap();
    let test = shadergan::data::load_idx_labels(config.data.test_labels.as_ref().unwrap()).unwrap();
    let images =
        shadergan::data::load_idx_images(config.data.test_images.as_ref().unwrap(), config.data.image_size).unwrap();
    assert!((accuracy(&gan.classify(&images.pixels), &test) - c.gan_accuracy).abs() < 1e-12);
    // 150 steps on 30 labelled digits learn something: well above the 10% of chance.
    assert!(c.baseline_accuracy > 0.2, "baseline {:.3}", c.baseline_accuracy);

    let e = tasks::semi_supervised_comparison(&gpu, Path::new("tests/fixtures"), 1).unwrap_err().to_string();
    assert!(e.contains("config.toml"), "{e}");
}

#[test]
fn sampling_arguments_outside_their_ranges_are_errors_naming_what_is_accepted() {
    let gpu = common::gpu();
    let config = common::tiny_dcgan();
    let data = run::load_dataset(&config).unwrap();
    let t = GanTrainer::new(&gpu, &config, data.len);
    for (n, truncation, class, want) in [
        (0, None, None, "--n must be between 1 and 50000"),
        (4, Some(f32::NAN), None, "--truncation must be at least 0.05"),
        (4, Some(1e-30), None, "--truncation must be at least 0.05"),
        (4, None, Some(3), "--class needs a model that takes a class"),
    ] {
        let e = tasks::sample(&gpu, &config, &t.g, n, 0, truncation, class).err().expect(want).to_string();
        assert!(e.contains(want), "{e}");
    }
    let s = tasks::sample(&gpu, &config, &t.g, 5, 0, Some(0.5), None).unwrap();
    assert_eq!((s.images.len(), s.columns), (5 * 16 * 16, 3));
    let e = tasks::interpolate(&gpu, &config, &t.g, 1, 1, 0).err().unwrap().to_string();
    assert!(e.contains("--steps must be between 2 and 1000"), "{e}");
}
