//! A tiny DCGAN trained for a few steps: losses finite and parameters moved; checkpoints
//! round-trip bit-exactly; resuming continues exactly like an uninterrupted run.

mod common;

use shadergan::checkpoint;
use shadergan::checkpoint::CheckpointError;
use shadergan::config::Config;
use shadergan::gpu::Gpu;
use shadergan::train::{network_tensors, restore_checkpoint, run, save_checkpoint, GanTrainer};

fn tiny() -> Config {
    common::tiny_dcgan()
}

fn weights(t: &GanTrainer) -> Vec<(String, Vec<f32>)> {
    network_tensors(t).into_iter().map(|(n, h)| (n, h.data)).collect()
}

fn resume(gpu: &Gpu, config: &Config, dir: &std::path::Path, len: usize) -> Result<GanTrainer, CheckpointError> {
    let mut t = GanTrainer::new(gpu, config, len);
    restore_checkpoint(&mut t, dir)?;
    Ok(t)
}

#[test]
fn a_few_steps_train_and_move_every_parameter() {
    let gpu = common::gpu();
    let config = tiny();
    let data = run::load_dataset(&config).unwrap();
    let mut t = GanTrainer::new(&gpu, &config, data.len);
    let before: Vec<Vec<f32>> = t.g.parameters().iter().chain(t.d.parameters().iter()).map(|p| p.to_vec()).collect();
    for _ in 0..3 {
        let s = t.train_step(&data);
        for v in [s.d_loss, s.g_loss, s.d_real, s.d_fake] {
            assert!(v.is_finite(), "{s:?}");
        }
        assert!((0.0..=1.0).contains(&s.d_real) && (0.0..=1.0).contains(&s.d_fake));
    }
    let after: Vec<Vec<f32>> = t.g.parameters().iter().chain(t.d.parameters().iter()).map(|p| p.to_vec()).collect();
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(b.iter().zip(a).any(|(x, y)| x != y), "parameter {i} did not move");
    }
    // Generated images are in tanh's range and have the configured shape.
    let imgs = t.generate_with(&t.fixed_noise[..2 * config.model.latent_dim], &[]);
    assert_eq!(imgs.len(), 2 * 16 * 16);
    assert!(imgs.iter().all(|v| (-1.0..=1.0).contains(v)));
}

#[test]
fn checkpoint_round_trips_bit_exactly_and_resume_matches_an_uninterrupted_run() {
    let gpu = common::gpu();
    let config = tiny();
    let data = run::load_dataset(&config).unwrap();

    let mut straight = GanTrainer::new(&gpu, &config, data.len);
    let straight_stats: Vec<_> = (0..4).map(|_| straight.train_step(&data)).collect();

    let dir = tempfile::tempdir().unwrap();
    let mut first = GanTrainer::new(&gpu, &config, data.len);
    let mut stats: Vec<_> = (0..2).map(|_| first.train_step(&data)).collect();
    save_checkpoint(&first, dir.path()).unwrap();

    // Round trip: what was saved is what a fresh load reads, bit for bit.
    let (loaded, meta) = checkpoint::load(&dir.path().join("model.safetensors")).unwrap();
    for (name, t) in network_tensors(&first) {
        assert_eq!(loaded[&name].data, t.data, "{name}");
        if !name.ends_with("num_batches_tracked") {
            assert_eq!(loaded[&name].shape, t.shape, "{name}");
        }
    }
    assert_eq!(meta["step"], "2");
    assert!(meta["config"].contains("g_width = 4"));
    let mut resumed = resume(&gpu, &config, dir.path(), data.len).unwrap();
    assert_eq!(weights(&resumed), weights(&first));
    assert_eq!(resumed.fixed_noise, first.fixed_noise);
    assert_eq!(resumed.step, 2);

    stats.extend((0..2).map(|_| resumed.train_step(&data)));
    assert_eq!(stats, straight_stats, "losses after resuming differ from the uninterrupted run");
    assert_eq!(weights(&resumed), weights(&straight), "weights after resuming differ from the uninterrupted run");
}

#[test]
fn resume_errors_name_the_missing_file_the_changed_config_and_the_torn_file() {
    let gpu = common::gpu();
    let config = tiny();
    let empty = tempfile::tempdir().unwrap();
    let e = resume(&gpu, &config, empty.path(), 64).err().unwrap().to_string();
    assert!(e.contains("checkpoint.toml") && e.contains("manifest is missing"), "{e}");

    let other = tempfile::tempdir().unwrap();
    let mut wider = config.clone();
    wider.model.g_width = 6;
    let data = run::load_dataset(&wider).unwrap();
    save_checkpoint(&GanTrainer::new(&gpu, &wider, data.len), other.path()).unwrap();
    let e = resume(&gpu, &config, other.path(), data.len).err().unwrap().to_string();
    assert!(e.contains("model.g_width is 6 in the checkpoint but 4 now"), "{e}");

    std::fs::write(other.path().join("model.safetensors"), b"garbage").unwrap();
    let e = resume(&gpu, &wider, other.path(), data.len).err().unwrap().to_string();
    assert!(e.contains("model.safetensors") && e.contains("does not match the manifest"), "{e}");
}

#[test]
fn minimax_loss_uniform_noise_and_several_d_steps_train() {
    use shadergan::config::{GanLoss, NoiseKind};
    let gpu = common::gpu();
    let mut config = tiny();
    config.train.loss = GanLoss::Minimax;
    config.train.noise = NoiseKind::Uniform;
    config.train.d_steps = 3;
    let data = run::load_dataset(&config).unwrap();
    let mut t = GanTrainer::new(&gpu, &config, data.len);
    assert!(t.fixed_noise.iter().all(|v| (-1.0..1.0).contains(v)), "uniform noise lies in [-1, 1)");
    let s = t.train_step(&data);
    // Minimax G loss is -BCE(D(G(z)), 0) = log(1 - D(G(z))) averaged: negative, and close to
    // log(1 - d_fake) for a batch whose outputs are similar.
    assert!(s.g_loss < 0.0 && s.g_loss.is_finite(), "{s:?}");
    assert!(s.d_loss.is_finite());
}
