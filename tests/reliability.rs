//! Hostile and unlucky conditions: buffers past the adapter's limits, checkpoints that lie about
//! their network or hold NaN, labels past `classes`, non-finite config values, commands that
//! would overwrite a file, kill -9 at random moments, a full disk, two runs racing for a folder.

mod common;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use shadergan::checkpoint;
use shadergan::config::Config;
use shadergan::train::{load_generator, restore_checkpoint, run, save_checkpoint, GanTrainer};

fn shadergan(args: &[&str]) -> (bool, String) {
    output(Command::new(env!("CARGO_BIN_EXE_shadergan")).args(args))
}

/// `shadergan` on a device with WebGPU's default limits, the same on every driver.
fn shadergan_webgpu_limited(args: &[&str]) -> (bool, String) {
    output(Command::new(env!("CARGO_BIN_EXE_shadergan")).args(args).env("SHADERGAN_LIMITS", "webgpu"))
}

fn output(command: &mut Command) -> (bool, String) {
    let out = command.output().expect("run shadergan");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// Temporary files an interrupted write left in `dir`.
fn leftover_temp_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let files = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path());
    files.filter(|p| p.extension().is_some_and(|x| x == "tmp")).collect()
}

fn write_config(dir: &Path, config: &Config) -> String {
    let path = dir.join("config.toml");
    std::fs::write(&path, config.to_toml()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn buffers_past_the_adapters_limits_are_errors_naming_the_key_and_what_fits() {
    let gpu = common::webgpu_limited_gpu();
    let limit = gpu.limits().max_storage_buffer_binding_size;
    let dir = tempfile::tempdir().unwrap();
    // G's 32x32 activations at width 64 take batch * 256 KiB: twice the binding limit.
    let mut config = common::tiny_dcgan();
    (config.data.image_size, config.data.limit) = (64, 0);
    (config.model.g_width, config.model.d_width) = (64, 64);
    config.train.batch_size = (2 * limit / (256 << 10)) as usize;
    let (ok, log) = shadergan_webgpu_limited(&[
        "train",
        "--config",
        &write_config(dir.path(), &config),
        "--out",
        dir.path().join("r").to_str().unwrap(),
        "--quiet",
    ]);
    assert!(!ok && !log.contains("panicked"), "{log}");
    let want = format!("train.batch_size = {}", config.train.batch_size);
    assert!(log.contains(&want) && log.contains("storage binding limit") && log.contains("fits"), "{log}");
    let fits: usize = log
        .split("train.batch_size = ")
        .nth(2)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect(&log);
    assert!((2..config.train.batch_size).contains(&fits), "{log}");

    // Networks too wide to build at all name the widths.
    let mut wide = common::tiny_dcgan();
    (wide.data.image_size, wide.data.limit, wide.train.batch_size) = (256, 4, 2);
    (wide.model.g_width, wide.model.latent_dim) = (1024, 100);
    let (ok, log) = shadergan_webgpu_limited(&[
        "train",
        "--config",
        &write_config(dir.path(), &wide),
        "--out",
        dir.path().join("w").to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        !ok && log.contains("the networks need") && log.contains("model.g_width") && !log.contains("panicked"),
        "{log}"
    );

    // The device stays usable after a refused buffer.
    let refused = shadergan::gpu::catch_device_limits(|| gpu.alloc((limit / 4 + 1) as usize));
    assert_eq!(refused.err().map(|e| e.limit), Some(limit));
    assert_eq!(shadergan::Tensor::from_vec(&gpu, &[2], &[1.0, 2.0]).scale(2.0).to_vec(), vec![2.0, 4.0]);
}

#[test]
fn checkpoints_that_lie_about_their_network_or_hold_nan_are_refused_before_allocating() {
    let gpu = common::gpu();
    let config = common::tiny_dcgan();
    let data = run::load_dataset(&config).unwrap();
    let mut t = GanTrainer::new(&gpu, &config, data.len);
    t.train_step(&data);
    let dir = tempfile::tempdir().unwrap();
    save_checkpoint(&t, dir.path()).unwrap();
    let model = dir.path().join("model.safetensors");
    let (tensors, meta) = checkpoint::load(&model).unwrap();
    let list: Vec<(String, checkpoint::HostTensor)> = tensors.clone().into_iter().collect();

    // A small file whose embedded config declares a huge generator.
    let mut huge = config.clone();
    (huge.model.g_width, huge.data.image_size) = (1024, 256);
    let mut lying = meta.clone();
    lying.insert("config".into(), huge.to_toml());
    let path = dir.path().join("lying.safetensors");
    checkpoint::save(&path, &list, lying).unwrap();
    let e = load_generator(&gpu, &path).err().unwrap().to_string();
    assert!(e.contains("declares a generator of") && e.contains("the file holds"), "{e}");

    // NaN weights are refused on load (and the CLI says so instead of sampling black images).
    let mut poisoned = list.clone();
    let w = poisoned.iter_mut().find(|(n, _)| n.starts_with("generator.") && n.ends_with("weight")).unwrap();
    w.1.data[0] = f32::NAN;
    let path = dir.path().join("nan.safetensors");
    checkpoint::save(&path, &poisoned, meta.clone()).unwrap();
    let e = load_generator(&gpu, &path).err().unwrap().to_string();
    assert!(e.contains("NaN or infinite"), "{e}");
    let (ok, log) =
        shadergan(&["sample", "--checkpoint", path.to_str().unwrap(), "--out", dir.path().join("s").to_str().unwrap()]);
    assert!(!ok && log.contains("NaN or infinite"), "{log}");

    // ... and never written: the previous checkpoint stays.
    t.g.parameters()[0].assign(&vec![f32::INFINITY; t.g.parameters()[0].numel()]);
    let e = save_checkpoint(&t, dir.path()).err().unwrap().to_string();
    assert!(e.contains("refusing to write step 1") && e.contains("generator."), "{e}");
    restore_checkpoint(&mut GanTrainer::new(&gpu, &config, data.len), dir.path()).unwrap();
}

#[test]
fn labels_past_classes_and_non_finite_settings_are_config_errors() {
    use shadergan::config::GanKind;
    for kind in [GanKind::Acgan, GanKind::SemiSupervised] {
        let mut c = common::tiny_dcgan();
        (c.model.kind, c.model.classes) = (kind, 5);
        let e = run::load_dataset(&c).err().unwrap().to_string();
        assert!(e.contains("model.classes = 5") && e.contains("labels must be 0 to 4"), "{kind:?}: {e}");
    }
    let base = std::fs::read_to_string("tests/fixtures/tiny-dcgan.toml").unwrap();
    for (line, key) in
        [("aux_weight = inf", "train.aux_weight"), ("beta1 = nan", "train.beta1"), ("beta2 = inf", "train.beta2")]
    {
        let text = base.replace("[train]\n", &format!("[train]\n{line}\n"));
        let e = Config::parse(&text, Path::new("t.toml")).err().unwrap().to_string();
        assert!(e.contains(key), "{line}: {e}");
    }
    let cycle = std::fs::read_to_string("configs/cyclegan-digits.toml").unwrap();
    for (line, key) in [("lambda_cycle = inf", "train.lambda_cycle"), ("beta2 = nan", "train.beta2")] {
        // Replace the key's line where the config sets it, else add it.
        let name = line.split(' ').next().unwrap();
        let kept: Vec<&str> = cycle.lines().filter(|l| !l.starts_with(&format!("{name} "))).collect();
        let text = kept.join("\n").replace("[train]\n", &format!("[train]\n{line}\n"));
        let e = shadergan::config::CycleConfig::parse(&text, Path::new("c.toml")).err().unwrap().to_string();
        assert!(e.contains(key), "{line}: {e}");
    }
}

#[test]
fn commands_refuse_to_overwrite_and_out_of_range_numbers() {
    let gpu = common::gpu();
    let config = common::tiny_dcgan();
    let data = run::load_dataset(&config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_checkpoint(&GanTrainer::new(&gpu, &config, data.len), dir.path()).unwrap();
    let existing = dir.path().join("model.safetensors");
    let precious = std::fs::read(&existing).unwrap();
    let e = existing.to_str().unwrap();
    for args in [
        vec!["interpolate", "--checkpoint", e, "--out", e],
        vec!["control", "--checkpoint", e, "--classifier", e, "--target", "1", "--out", e],
    ] {
        let (ok, log) = shadergan(&args);
        assert!(!ok && log.contains("already exists"), "{args:?}: {log}");
    }
    assert_eq!(std::fs::read(&existing).unwrap(), precious, "the checkpoint was overwritten");
    let fresh = dir.path().join("x.png");
    let f = fresh.to_str().unwrap();
    for (args, want) in [
        (
            vec!["interpolate", "--checkpoint", e, "--steps", "18446744073709551615", "--out", f],
            "--steps must be between 2 and 1000",
        ),
        (
            vec!["control", "--checkpoint", e, "--classifier", e, "--target", "1", "--n", "100000", "--out", f],
            "--n must be between 1 and 256",
        ),
        (
            vec!["control", "--checkpoint", e, "--classifier", e, "--target", "1", "--step-size", "inf", "--out", f],
            "positive and finite",
        ),
        (vec!["sample", "--checkpoint", e, "--truncation", "NaN", "--out", f], "--truncation must be at least 0.05"),
    ] {
        let (ok, log) = shadergan(&args);
        assert!(!ok && log.contains(want) && !log.contains("panicked"), "{args:?}: {log}");
    }
}

/// The tiny DCGAN with a checkpoint every step, as a config file in `dir`.
fn crash_config(dir: &Path, steps: u64) -> String {
    let mut config = common::tiny_dcgan();
    (config.train.steps, config.train.checkpoint_every, config.train.sample_every) = (steps, 1, 0);
    write_config(dir, &config)
}

fn weights(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let (t, _) = checkpoint::load(&dir.join("model.safetensors")).unwrap();
    let mut v: Vec<_> = t.into_iter().map(|(k, h)| (k, h.data)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Steps `metrics.csv` in `dir` records so far (0 before the first row lands).
fn steps_recorded(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("metrics.csv")).map_or(0, |s| s.lines().count().saturating_sub(1))
}

#[test]
fn a_run_killed_at_random_moments_and_resumed_equals_an_uninterrupted_one() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let (steps, config) = (30, crash_config(dir.path(), 30));
    let straight = dir.path().join("straight");
    let started = std::time::Instant::now();
    let (ok, log) = shadergan(&["train", "--config", &config, "--out", straight.to_str().unwrap(), "--quiet"]);
    assert!(ok, "{log}");
    // Kill moments are drawn in units of this machine's step time, so that a fast host cannot
    // finish every run before its kill and a slow one cannot be killed only during start-up.
    let step_time = started.elapsed() / steps as u32;

    let run = dir.path().join("killed");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(std::process::id() as u64);
    let mut kills = 0;
    for _ in 0..6 {
        let done = steps_recorded(&run);
        if done + 3 >= steps {
            break;
        }
        let mut args = vec!["train", "--config", &config, "--out", run.to_str().unwrap(), "--quiet"];
        if run.join("checkpoint.toml").exists() {
            args.push("--resume");
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_shadergan"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for a random step past the checkpoint, then a random part of a step more: the kill
        // lands anywhere in a step, including inside a checkpoint write.
        let target = rng.random_range(done + 1..steps - 2);
        while steps_recorded(&run) < target && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(step_time.mul_f64(rng.random_range(0.0..1.0)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    let resume = if run.join("checkpoint.toml").exists() { vec!["--resume"] } else { vec![] };
    let mut args = vec!["train", "--config", &config, "--out", run.to_str().unwrap(), "--quiet"];
    args.extend(resume);
    let (ok, log) = shadergan(&args);
    assert!(ok, "{log}");
    eprintln!("{kills} kills before the run finished");
    assert!(kills >= 1, "no run was killed before it finished");
    assert_eq!(weights(&run), weights(&straight), "weights after {kills} kills differ from the uninterrupted run");
    let rows = |d: &Path| std::fs::read_to_string(d.join("metrics.csv")).unwrap();
    assert_eq!(rows(&run), rows(&straight));
    assert_eq!(rows(&run).lines().count(), steps + 1);
    let leftovers = leftover_temp_files(&run);
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn two_runs_racing_for_one_folder_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = crash_config(dir.path(), 6);
    let out = dir.path().join("run");
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_shadergan"))
            .args(["train", "--config", &config, "--out", out.to_str().unwrap(), "--quiet"])
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(start);
        let b = s.spawn(start);
        (a.join().unwrap(), b.join().unwrap())
    });
    let logs = [&a, &b].map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
    assert_eq!(a.status.success() as u8 + b.status.success() as u8, 1, "exactly one run trains: {logs:?}");
    let loser = if a.status.success() { &logs[1] } else { &logs[0] };
    assert!(loser.contains("in use by another training run") || loser.contains("already holds a run"), "{loser}");
    assert_eq!(std::fs::read_to_string(out.join("metrics.csv")).unwrap().lines().count(), 7);
    let gpu = common::gpu();
    let c = common::tiny_dcgan();
    let mut t = GanTrainer::new(
        &gpu,
        &{
            let mut c = c;
            c.train.steps = 6;
            c.train.checkpoint_every = 1;
            c.train.sample_every = 0;
            c
        },
        64,
    );
    restore_checkpoint(&mut t, &out).unwrap();
    assert_eq!(t.step, 6);
}

#[test]
fn a_save_into_a_full_disk_keeps_the_previous_checkpoint_usable() {
    let mount = tempfile::tempdir().unwrap();
    let status = Command::new("mount").args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"]).arg(mount.path()).status();
    if !status.is_ok_and(|s| s.success()) {
        // CI runs as root; elsewhere this test needs root to mount its small filesystem.
        eprintln!("cannot mount a tmpfs here (needs root): the full-disk test did not run");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(mount.path());
    let dir = mount.path().join("run");
    let gpu = common::gpu();
    let config = common::tiny_dcgan();
    let data = run::load_dataset(&config).unwrap();
    let mut t = GanTrainer::new(&gpu, &config, data.len);
    t.train_step(&data);
    save_checkpoint(&t, &dir).unwrap();
    let model_bytes = std::fs::metadata(dir.join("model.safetensors")).unwrap().len();
    let state_bytes = std::fs::metadata(dir.join("state.safetensors")).unwrap().len();
    assert!(state_bytes > model_bytes + 8192, "the test needs the state file larger than the model");
    t.train_step(&data);
    // Fill the disk but for room for the model file and not the state file, then none at all.
    let filler = mount.path().join("filler");
    let fill_leaving = |spare: u64| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&filler).unwrap();
        while f.write_all(&[0u8; 4096]).is_ok() {}
        drop(f);
        let len = std::fs::metadata(&filler).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&filler).unwrap().set_len(len.saturating_sub(spare)).unwrap();
    };
    for spare in [model_bytes + 4096, 0] {
        fill_leaving(spare);
        let e = save_checkpoint(&t, &dir).expect_err("the disk is full").to_string();
        assert!(e.contains("No space left"), "{e}");
        let mut back = GanTrainer::new(&gpu, &config, data.len);
        restore_checkpoint(&mut back, &dir).unwrap();
        assert_eq!(back.step, 1, "the previous checkpoint is whole");
        let tmp = leftover_temp_files(&dir);
        assert!(tmp.is_empty(), "{tmp:?}");
    }
}

#[test]
fn classifier_configs_check_widths_and_that_test_labels_match_their_images() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let write = |name: &str, classifier: &str, test_labels: &str| {
        let text = format!(
            "[data]\nkind = \"idx\"\nimages = \"{root}/assets/mnist-train-images-idx3-ubyte.gz\"\n\
             labels = \"{root}/assets/mnist-train-labels-idx1-ubyte.gz\"\nimage_size = 16\nlimit = 64\n\
             test_images = \"{root}/assets/mnist-test-images-idx3-ubyte.gz\"\ntest_labels = \"{root}/assets/{test_labels}\"\n\
             [classifier]\n{classifier}\n"
        );
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let out = dir.path().join("c.safetensors");
    let o = out.to_str().unwrap();
    let zero = write("zero.toml", "width = 0", "mnist-test-labels-idx1-ubyte.gz");
    let (ok, log) = shadergan(&["classify", "train", "--config", &zero, "--out", o]);
    assert!(!ok && log.contains("classifier.width") && log.contains("between 1 and 1024"), "{log}");
    // Images too large to hold (65536x65536 would be 16 GiB each) are a config error.
    for size in ["65536", "1048576"] {
        let huge = write(&format!("huge{size}.toml"), "steps = 2", "mnist-test-labels-idx1-ubyte.gz");
        std::fs::write(
            &huge,
            std::fs::read_to_string(&huge).unwrap().replace("image_size = 16", &format!("image_size = {size}")),
        )
        .unwrap();
        let (ok, log) = shadergan(&["classify", "train", "--config", &huge, "--out", o]);
        assert!(!ok && log.contains("data.image_size") && log.contains("from 16 to 256"), "{log}");
    }
    // The training labels (9,003) given as the test set's (997 images).
    let mismatched = write("mismatch.toml", "steps = 2", "mnist-train-labels-idx1-ubyte.gz");
    let (ok, log) = shadergan(&["classify", "train", "--config", &mismatched, "--out", o]);
    assert!(!ok && log.contains("9003 labels for 997 test images"), "{log}");
    // An existing --out is never overwritten.
    std::fs::write(&out, b"keep").unwrap();
    let good = write("good.toml", "steps = 2", "mnist-test-labels-idx1-ubyte.gz");
    let (ok, log) = shadergan(&["classify", "train", "--config", &good, "--out", o]);
    assert!(!ok && log.contains("already exists") && std::fs::read(&out).unwrap() == b"keep", "{log}");
}

#[test]
fn a_machine_without_vulkan_gets_an_error_naming_what_to_install() {
    let out = Command::new(env!("CARGO_BIN_EXE_shadergan"))
        .args(["info"])
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && !log.contains("panicked"), "{log}");
    assert!(log.contains("mesa-vulkan-drivers"), "the error names the package to install: {log}");
}
