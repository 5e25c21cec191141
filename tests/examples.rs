//! The examples run as a user would run them: `cargo test` builds them beside the tests, and
//! these tests start the binaries and check what they print and write.

mod common;
use std::path::{Path, PathBuf};
use std::process::Command;

use shadergan::train::{run, GanTrainer};

/// An example's binary, built by `cargo test` into target/<profile>/examples.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} not built: a plain `cargo test` builds the examples (or `cargo build --examples`)",
        path.display()
    );
    path
}

fn run_example(name: &str, args: &[&str]) -> String {
    let out = Command::new(example(name)).args(args).output().expect("the example starts");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{name} failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

#[test]
fn toy_1d_walks_theta_to_the_data() {
    let text = run_example("toy_1d", &["200"]);
    let last = text.lines().last().expect("a summary line");
    let theta: f64 = last.split_whitespace().nth(2).and_then(|v| v.parse().ok()).expect(last);
    assert!(theta.abs() < 0.3, "theta ended at {theta}: {text}");
}

#[test]
fn generate_writes_images_from_a_checkpoint() {
    let config = common::tiny_dcgan();
    let gpu = common::gpu();
    let data = run::load_dataset(&config).unwrap();
    let mut trainer = GanTrainer::new(&gpu, &config, data.len);
    trainer.train_step(&data);
    let dir = tempfile::tempdir().unwrap();
    shadergan::train::save_checkpoint(&trainer, dir.path()).unwrap();
    let out = dir.path().join("images");
    let model = dir.path().join("model.safetensors");
    run_example("generate", &[model.to_str().unwrap(), out.to_str().unwrap(), "4"]);
    for i in 0..4 {
        let img = image::open(out.join(format!("{i:03}.png"))).expect("a PNG per image");
        assert_eq!(img.width(), 16, "16x16 images");
    }
}

#[test]
fn custom_gan_trains_resumes_and_samples_through_the_library_trainer() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let text = run_example("custom_gan", &[run.to_str().unwrap(), "6"]);
    assert!(text.contains("6 steps, final loss_d"), "{text}");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "step,loss_d,loss_g");
    assert_eq!(rows.len(), 7, "three steps before the stop and three after the resume: {csv}");
    for f in ["samples.png", "grid.png", "report.html", "checkpoint.toml", "samples/step-000003.png"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let samples = image::open(run.join("samples.png")).unwrap().to_luma8();
    let (lo, hi) = samples.pixels().fold((255u8, 0u8), |(lo, hi), p| (lo.min(p[0]), hi.max(p[0])));
    assert!(hi > lo, "the samples are one flat colour");
}
