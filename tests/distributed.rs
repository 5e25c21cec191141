//! Data-parallel training over MPI, two ranks on lavapipe (`cargo test --features distributed
//! --test distributed`; needs `mpirun`, which `scripts/setup.sh --mpi` installs).
#![cfg(feature = "distributed")]

mod common;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// `mpirun` with `ranks` copies of the binary (or an MPMD line), under a hard timeout.
fn mpirun(args: &[&str]) -> (bool, String, Duration) {
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(["-k", "5", "180", "mpirun", "--bind-to", "none", "--oversubscribe"])
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .expect("mpirun starts (scripts/setup.sh --mpi installs OpenMPI)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text, started.elapsed())
}

const BIN: &str = env!("CARGO_BIN_EXE_shadergan");

/// The WGAN-GP of the issue at a test's size: layer norm in both networks, global batch 64.
fn wgan_config(dir: &Path, steps: u64) -> String {
    let mut c = common::tiny_dcgan();
    c.data.limit = 256;
    c.model.g_norm = shadergan::config::Norm::Layer;
    c.model.d_norm = shadergan::config::Norm::Layer;
    c.train.loss = shadergan::config::GanLoss::WassersteinGp;
    (c.train.batch_size, c.train.steps, c.train.checkpoint_every, c.train.sample_every) = (64, steps, 3, 0);
    let path = dir.join(format!("wgan-{steps}.toml"));
    std::fs::write(&path, c.to_toml()).unwrap();
    path.to_str().unwrap().to_string()
}

fn tensors(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let (t, _) = shadergan::checkpoint::load(&dir.join("model.safetensors")).unwrap();
    let mut v: Vec<_> = t.into_iter().map(|(k, h)| (k, h.data)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Each tensor within 1e-3 of its own largest magnitude plus `atol`. Adam divides every
/// gradient by its running RMS, so a parameter whose gradient is zero in exact arithmetic (a
/// conv bias ahead of instance norm) or nearly so (layer norm's bias under a critic's mean
/// score) moves by float noise in steps of the learning rate; `atol` allows for that. The
/// weights themselves agree to about 1e-8.
fn assert_close(what: &str, a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)], atol: f32) {
    for ((name, x), (_, y)) in a.iter().zip(b) {
        let scale = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        eprintln!("{what}: {name}: largest difference {worst:.2e} (largest value {scale:.2e})");
        assert!(worst <= 1e-3 * scale + atol, "{what}: {name} differs by {worst} (largest value {scale})");
    }
}

fn train(ranks: usize, config: &str, out: &Path, extra: &[&str]) {
    let n = ranks.to_string();
    let mut args = vec!["-n", &n, BIN, "train", "--config", config, "--out", out.to_str().unwrap(), "--quiet"];
    args.extend(extra);
    let (ok, log, _) = mpirun(&args);
    assert!(ok, "{log}");
}

#[test]
fn two_ranks_of_32_match_one_rank_of_64_and_resume_with_any_rank_count() {
    let dir = tempfile::tempdir().unwrap();
    let config = wgan_config(dir.path(), 5);
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    train(1, &config, &one, &[]);
    train(2, &config, &two, &[]);
    let curves = |d: &Path| std::fs::read_to_string(d.join("metrics.csv")).unwrap();
    eprintln!("1 rank x 64:\n{}\n2 ranks x 32:\n{}", curves(&one), curves(&two));
    assert_close("2 ranks x 32 against 1 rank x 64", &tensors(&one), &tensors(&two), 1e-4);

    // Stopped at step 3 (its checkpoint) and resumed, by 2 ranks and then by 1, to step 6.
    let six = wgan_config(dir.path(), 6);
    let straight = dir.path().join("straight");
    train(2, &six, &straight, &[]);
    let resumed = dir.path().join("resumed");
    train(2, &six, &resumed, &["--steps", "3"]);
    train(2, &six, &resumed, &["--resume"]);
    assert_eq!(tensors(&resumed), tensors(&straight), "a resumed 2-rank run differs from an uninterrupted one");
    assert_eq!(curves(&resumed), curves(&straight));
    let by_one = dir.path().join("by-one");
    train(2, &six, &by_one, &["--steps", "3"]);
    train(1, &six, &by_one, &["--resume"]);
    assert_close("resumed by 1 rank", &tensors(&by_one), &tensors(&straight), 1e-4);
}

#[test]
fn a_rank_that_fails_ends_the_job_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let good = wgan_config(dir.path(), 50);
    // Rank 1 reads a config whose data file is corrupt; rank 0 waits for it in a collective.
    let corrupt = dir.path().join("corrupt.idx");
    std::fs::write(&corrupt, b"\x00\x00\x08\x03not an image set").unwrap();
    let bad_text = std::fs::read_to_string(&good)
        .unwrap()
        .replace(&common::tiny_dcgan().data.images.display().to_string(), &corrupt.display().to_string());
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, bad_text).unwrap();
    let out = dir.path().join("run");
    let o = out.to_str().unwrap();
    let (ok, log, took) = mpirun(&[
        "-n",
        "1",
        BIN,
        "train",
        "--config",
        &good,
        "--out",
        o,
        "--quiet",
        ":",
        "-n",
        "1",
        BIN,
        "train",
        "--config",
        bad.to_str().unwrap(),
        "--out",
        o,
        "--quiet",
    ]);
    assert!(!ok, "{log}");
    assert!(log.contains("rank 1 of 2") && log.contains("corrupt.idx") && log.contains("not an image set"), "{log}");
    assert!(took < Duration::from_secs(60), "the job took {took:?} to end");

    // A global batch that does not split over the ranks is refused on every rank.
    let mut c = common::tiny_dcgan();
    c.train.batch_size = 7;
    let odd = dir.path().join("odd.toml");
    std::fs::write(&odd, c.to_toml()).unwrap();
    let (ok, log, _) = mpirun(&[
        "-n",
        "2",
        BIN,
        "train",
        "--config",
        odd.to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert!(!ok && log.contains("train.batch_size = 7") && log.contains("split evenly over the 2 ranks"), "{log}");
}

#[test]
fn cyclegan_trains_data_parallel_like_one_process() {
    // Instance norm is per sample; without the image pool (per rank) 2 ranks compute what 1 does.
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::tiny_cyclegan();
    (c.train.steps, c.train.pool_size, c.train.sample_every, c.train.checkpoint_every) = (3, 0, 0, 3);
    let config = dir.path().join("cycle.toml");
    std::fs::write(&config, c.to_toml()).unwrap();
    let config = config.to_str().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    train(1, config, &one, &[]);
    train(2, config, &two, &[]);
    // The biases that instance norm cancels may take their three Adam steps (lr 2e-4) in
    // opposite directions in the two runs.
    assert_close("CycleGAN, 2 ranks x 4 against 1 rank x 8", &tensors(&one), &tensors(&two), 2.0 * 3.0 * 2e-4);
}

#[test]
fn synchronised_batch_norm_makes_two_ranks_match_one() {
    // The DCGAN as configured (batch norm in G and D), statistics over the global batch.
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::tiny_dcgan();
    c.data.limit = 256;
    (c.train.batch_size, c.train.steps, c.train.checkpoint_every, c.train.sample_every) = (64, 4, 4, 0);
    c.train.sync_batch_norm = true;
    let config = dir.path().join("bn.toml");
    std::fs::write(&config, c.to_toml()).unwrap();
    let config = config.to_str().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    train(1, config, &one, &[]);
    train(2, config, &two, &[]);
    let curves = |d: &Path| std::fs::read_to_string(d.join("metrics.csv")).unwrap();
    eprintln!("1 rank x 64:\n{}\n2 ranks x 32, synchronised batch norm:\n{}", curves(&one), curves(&two));
    // Running statistics included: they are the global batch's too.
    assert_close("sync batch norm, 2 ranks x 32 against 1 rank x 64", &tensors(&one), &tensors(&two), 1e-4);

    // Without it each rank normalises its own 32 images, and the runs part (the check above
    // can tell them apart).
    c.train.sync_batch_norm = false;
    let per_rank = dir.path().join("per-rank.toml");
    std::fs::write(&per_rank, c.to_toml()).unwrap();
    let own = dir.path().join("own");
    train(2, per_rank.to_str().unwrap(), &own, &[]);
    let apart = tensors(&one).iter().zip(tensors(&own)).any(|((_, a), (_, b))| {
        let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-3 * scale + 1e-4)
    });
    assert!(apart, "per-rank batch norm should differ from one process by more than the tolerance");
}
