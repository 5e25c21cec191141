//! The training engine (`Trainer::fit`) for every model: a run stopped and resumed equals an
//! uninterrupted one (DCGAN and CycleGAN, weights and metrics.csv bit for bit), and the run
//! folder is guarded: a lock against a second run, torn or changed checkpoints refused, stale
//! temporary files removed, divergence stopped with the last finite checkpoint kept.

mod common;
use std::path::Path;

use shadergan::checkpoint::CheckpointError;
use shadergan::cyclegan::{CycleTrainer, Domains};
use shadergan::prelude::*;
use shadergan::train::{
    network_tensors, restore_checkpoint, run, save_checkpoint, GanTrainer, Metrics, RunLock, TrainState, Trainable,
    Trainer,
};

fn weights<M: Trainable>(m: &M) -> Vec<(String, Vec<f32>)> {
    network_tensors(m).into_iter().map(|(n, h)| (n, h.data)).collect()
}

fn metrics_rows(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("metrics.csv")).unwrap().lines().map(String::from).collect()
}

/// Runs to 4 steps straight and as 2 + 2 with a resume; both folders must agree bit for bit.
fn check_resume<M: Trainable>(make: impl Fn() -> M, data: &M::Data) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut straight = make();
    Trainer::new(a.path(), 4).fit(&mut straight, data).unwrap();
    let mut first = make();
    Trainer::new(b.path(), 2).fit(&mut first, data).unwrap();
    let mut resumed = make();
    let summary = Trainer::new(b.path(), 4).resume(true).fit(&mut resumed, data).unwrap();
    assert_eq!(summary.steps, 4);
    assert_eq!(metrics_rows(b.path()), metrics_rows(a.path()), "metrics.csv after resuming differs");
    assert_eq!(weights(&resumed), weights(&straight), "weights after resuming differ");
    for f in ["model.safetensors", "state.safetensors", "checkpoint.toml", "grid.png", "loss.png", "report.html"] {
        assert!(b.path().join(f).is_file(), "{f} missing");
    }
}

#[test]
fn a_resumed_dcgan_run_equals_an_uninterrupted_one() {
    let gpu = common::gpu();
    let config = common::tiny_dcgan();
    let data = run::load_dataset(&config).unwrap();
    let source: &dyn shadergan::data::ImageSource = &data;
    check_resume(|| GanTrainer::new(&gpu, &config, data.len), source);
}

#[test]
fn a_resumed_cyclegan_run_equals_an_uninterrupted_one() {
    let mut config = common::tiny_cyclegan();
    for d in [&mut config.domain_x, &mut config.domain_y] {
        (d.labels, d.limit) = (None, 12);
    }
    (config.train.batch_size, config.train.pool_size, config.train.steps) = (4, 6, 4);
    let gpu = common::gpu();
    let domains =
        Domains { x: run::load_data(&config.domain_x, 4).unwrap(), y: run::load_data(&config.domain_y, 4).unwrap() };
    // The pool (6 images) is full after 2 steps of 4, so the resumed half draws from saved fakes.
    check_resume(|| CycleTrainer::new(&gpu, &config, domains.x.len, domains.y.len), &domains);
}

/// A model small enough to test the engine alone: y = w x fitted to y = 2x, with an optional
/// step at which its loss turns NaN.
struct LineFit {
    w: Linear,
    opt: Sgd,
    step: u64,
    nan_at: Option<u64>,
}

impl LineFit {
    fn new(gpu: &Gpu) -> Self {
        manual_seed(3);
        LineFit { w: Linear::new(gpu, 1, 1).bias(false), opt: Sgd::new(0.1, 0.0), step: 0, nan_at: None }
    }
}

impl Trainable for LineFit {
    type Data = Tensor;
    fn kind(&self) -> &str {
        "line-fit"
    }
    fn steps_done(&self) -> u64 {
        self.step
    }
    fn train_step(&mut self, x: &Tensor) -> anyhow::Result<Metrics> {
        let err = self.w.forward(x).sub(&x.scale(2.0));
        let loss = err.mul(&err).mean_all();
        self.opt.step(&self.w.parameters(), &grad(&loss, &self.w.parameters()));
        self.step += 1;
        let v = if self.nan_at == Some(self.step) { f32::NAN } else { loss.item() };
        Ok(vec![("loss", v)])
    }
    fn networks(&self) -> Vec<(&'static str, &dyn Module)> {
        vec![("line", &self.w)]
    }
    fn save_state(&self, state: &mut TrainState) {
        state.put_optimizer("opt", &self.opt);
    }
    fn load_state(&mut self, state: &TrainState) -> Result<(), CheckpointError> {
        self.step = state.step;
        state.load_optimizer("opt", &mut self.opt, &self.w.parameters())
    }
    fn sample_grid(&self, _x: &Tensor) -> image::RgbImage {
        image::RgbImage::new(4, 4)
    }
}

#[test]
fn a_locked_folder_is_refused_naming_the_process_and_freed_when_the_holder_ends() {
    let gpu = common::gpu();
    let x = Tensor::from_vec(&gpu, &[4, 1], &[1.0, -1.0, 0.5, 2.0]);
    let dir = tempfile::tempdir().unwrap();
    let held = RunLock::acquire(dir.path()).unwrap();
    let e = Trainer::new(dir.path(), 2).fit(&mut LineFit::new(&gpu), &x).unwrap_err().to_string();
    assert!(e.contains("in use") && e.contains(&std::process::id().to_string()), "{e}");
    drop(held);
    Trainer::new(dir.path(), 2).fit(&mut LineFit::new(&gpu), &x).unwrap();
}

#[test]
fn a_torn_pair_a_fresh_run_over_a_checkpoint_and_stale_temp_files_are_handled() {
    let gpu = common::gpu();
    let x = Tensor::from_vec(&gpu, &[4, 1], &[1.0, -1.0, 0.5, 2.0]);
    let dir = tempfile::tempdir().unwrap();
    let mut m = LineFit::new(&gpu);
    Trainer::new(dir.path(), 1).fit(&mut m, &x).unwrap();
    let step1_state = std::fs::read(dir.path().join("state.safetensors")).unwrap();
    Trainer::new(dir.path(), 2).resume(true).fit(&mut LineFit::new(&gpu), &x).unwrap();

    let e = Trainer::new(dir.path(), 3).fit(&mut LineFit::new(&gpu), &x).unwrap_err().to_string();
    assert!(e.contains("already holds a run") && e.contains("--resume"), "{e}");

    // A kill between the two writes: step 2's weights beside step 1's state.
    let stale = dir.path().join("model.safetensors.999-0.tmp");
    std::fs::write(&stale, b"half a file").unwrap();
    std::fs::write(dir.path().join("state.safetensors"), &step1_state).unwrap();
    let e = Trainer::new(dir.path(), 3).resume(true).fit(&mut LineFit::new(&gpu), &x).unwrap_err().to_string();
    assert!(e.contains("state.safetensors") && e.contains("does not match the manifest of step 2"), "{e}");
    assert!(!stale.exists(), "a stale temporary file survived the start of a run");

    let mut m = LineFit::new(&gpu);
    assert!(restore_checkpoint(&mut m, dir.path()).is_err());
    save_checkpoint(&m, dir.path()).unwrap();
    restore_checkpoint(&mut LineFit::new(&gpu), dir.path()).unwrap();
}

#[test]
fn divergence_stops_the_run_naming_the_metric_and_keeps_the_last_finite_checkpoint() {
    let gpu = common::gpu();
    let x = Tensor::from_vec(&gpu, &[4, 1], &[1.0, -1.0, 0.5, 2.0]);
    let dir = tempfile::tempdir().unwrap();
    let mut m = LineFit::new(&gpu);
    m.nan_at = Some(3);
    let e = Trainer::new(dir.path(), 5).checkpoint_every(2).fit(&mut m, &x).unwrap_err().to_string();
    assert!(e.contains("diverged at step 3") && e.contains("loss = NaN"), "{e}");
    let mut back = LineFit::new(&gpu);
    restore_checkpoint(&mut back, dir.path()).unwrap();
    assert_eq!(back.step, 2);
    let rows = metrics_rows(dir.path());
    assert_eq!(rows[0], "step,loss");
    assert!(rows.len() >= 3 && rows[1].starts_with("1,") && rows[2].starts_with("2,"), "{rows:?}");
}

#[test]
fn resuming_under_a_changed_learning_rate_names_the_key() {
    let gpu = common::gpu();
    let config = common::tiny_dcgan();
    let data = run::load_dataset(&config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    Trainer::new(dir.path(), 1).fit(&mut GanTrainer::new(&gpu, &config, data.len), &data).unwrap();
    let mut changed = config.clone();
    changed.train.lr_g *= 2.0;
    let e = Trainer::new(dir.path(), 2)
        .resume(true)
        .fit(&mut GanTrainer::new(&gpu, &changed, data.len), &data)
        .unwrap_err()
        .to_string();
    assert!(e.contains("train.lr_g") && e.contains("in the checkpoint"), "{e}");
    // More steps is a change a resume accepts.
    let mut longer = config.clone();
    longer.train.steps = 2;
    Trainer::new(dir.path(), 2).resume(true).fit(&mut GanTrainer::new(&gpu, &longer, data.len), &data).unwrap();
}

#[test]
fn a_save_cut_short_rolls_back_before_its_manifest_and_forward_after_it() {
    let gpu = common::gpu();
    let x = Tensor::from_vec(&gpu, &[4, 1], &[1.0, -1.0, 0.5, 2.0]);
    let (dir, later) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut m = LineFit::new(&gpu);
    m.train_step(&x).unwrap();
    save_checkpoint(&m, dir.path()).unwrap();
    m.train_step(&x).unwrap();
    save_checkpoint(&m, later.path()).unwrap();
    let copy = |name: &str, to: &str| std::fs::copy(later.path().join(name), dir.path().join(to)).unwrap();

    // Killed while writing: step 2's files wait as .new, the manifest still names step 1.
    copy("model.safetensors", "model.safetensors.new");
    copy("state.safetensors", "state.safetensors.new");
    let mut back = LineFit::new(&gpu);
    restore_checkpoint(&mut back, dir.path()).unwrap();
    assert_eq!(back.step, 1);
    assert!(!dir.path().join("model.safetensors.new").exists(), "an unfinished save is dropped");

    // Killed after the manifest, before the renames: the load finishes the save.
    copy("model.safetensors", "model.safetensors.new");
    copy("state.safetensors", "state.safetensors.new");
    copy("checkpoint.toml", "checkpoint.toml");
    let mut back = LineFit::new(&gpu);
    restore_checkpoint(&mut back, dir.path()).unwrap();
    assert_eq!(back.step, 2);
    assert_eq!(weights(&back), weights(&m));
}
