//! The `shadergan` binary end to end on a tiny config: train (with resume), sample, interpolate,
//! and the errors a user sees for bad input.

use std::path::Path;
use std::process::Command;

fn shadergan(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shadergan"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run shadergan");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

fn rows(csv: &Path) -> Vec<String> {
    std::fs::read_to_string(csv).unwrap().lines().skip(1).map(String::from).collect()
}

#[test]
fn train_resume_sample_interpolate() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let (ok, log) =
        shadergan(&["train", "--config", "tests/fixtures/tiny-dcgan.toml", "--steps", "2", "--out", run_s, "--quiet"]);
    assert!(ok, "{log}");
    for f in [
        "model.safetensors",
        "state.safetensors",
        "checkpoint.toml",
        "metrics.csv",
        "grid.png",
        "loss.png",
        "report.html",
        "config.toml",
        "samples/step-000002.png",
    ] {
        assert!(run.join(f).exists(), "{f} missing; {log}");
    }
    assert_eq!(rows(&run.join("metrics.csv")).len(), 2);
    let report = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        report.contains("data:image/png;base64,") && report.contains("<svg") && report.contains("Adapter:"),
        "report.html lacks its images, charts or adapter"
    );

    // A second train into the same folder must not clobber it.
    let (ok, log) =
        shadergan(&["train", "--config", "tests/fixtures/tiny-dcgan.toml", "--steps", "2", "--out", run_s, "--quiet"]);
    assert!(!ok && log.contains("--resume"), "{log}");
    let (ok, log) = shadergan(&[
        "train",
        "--config",
        "tests/fixtures/tiny-dcgan.toml",
        "--steps",
        "4",
        "--out",
        run_s,
        "--resume",
        "--quiet",
    ]);
    assert!(ok, "{log}");
    let r = rows(&run.join("metrics.csv"));
    assert_eq!(r.len(), 4);
    assert!(r[3].starts_with("4,"));

    let samples = dir.path().join("samples");
    let model = run.join("model.safetensors");
    let (ok, log) = shadergan(&[
        "sample",
        "--checkpoint",
        model.to_str().unwrap(),
        "--n",
        "5",
        "--out",
        samples.to_str().unwrap(),
        "--truncation",
        "0.8",
    ]);
    assert!(ok, "{log}");
    for i in 0..5 {
        let img = image::open(samples.join(format!("{i:06}.png"))).unwrap();
        assert_eq!((img.width(), img.height()), (16, 16));
    }
    assert!(samples.join("grid.png").exists());

    let interp = dir.path().join("interp.png");
    let (ok, log) = shadergan(&[
        "interpolate",
        "--checkpoint",
        model.to_str().unwrap(),
        "--steps",
        "6",
        "--rows",
        "2",
        "--out",
        interp.to_str().unwrap(),
    ]);
    assert!(ok, "{log}");
    let img = image::open(&interp).unwrap();
    // 6 columns x 4 rows of 16-pixel tiles with 2-pixel gaps, doubled.
    assert_eq!((img.width(), img.height()), (2 * (6 * 18 + 2), 2 * (4 * 18 + 2)));
}

#[test]
fn bad_input_gives_clear_errors() {
    let (ok, log) = shadergan(&["sample", "--checkpoint", "no/such/model.safetensors", "--out", "/tmp/x"]);
    assert!(!ok && log.contains("no/such/model.safetensors") && log.contains("no such file"), "{log}");
    assert!(!log.contains("panicked"), "{log}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[data]\nkind = \"idx\"\nimages = \"assets/mnist-train-images-idx3-ubyte.gz\"\nchannels = 2\n",
    )
    .unwrap();
    let (ok, log) =
        shadergan(&["train", "--config", bad.to_str().unwrap(), "--out", dir.path().join("r").to_str().unwrap()]);
    assert!(!ok && log.contains("data.channels = 2"), "{log}");

    let missing_data = dir.path().join("missing.toml");
    std::fs::write(&missing_data, "[data]\nkind = \"idx\"\nimages = \"nowhere/images.idx\"\n").unwrap();
    let (ok, log) = shadergan(&[
        "train",
        "--config",
        missing_data.to_str().unwrap(),
        "--out",
        dir.path().join("r").to_str().unwrap(),
    ]);
    assert!(!ok && log.contains("nowhere/images.idx"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // The system's reason is given once, not repeated by the error chain.
    let error = log.lines().find(|l| l.starts_with("error:")).expect("an error line");
    assert_eq!(error.matches("(os error").count(), 1, "{error}");

    let (ok, log) = shadergan(&[
        "train",
        "--config",
        "tests/fixtures/tiny-dcgan.toml",
        "--out",
        dir.path().join("fresh").to_str().unwrap(),
        "--resume",
    ]);
    assert!(!ok && log.contains("no checkpoint"), "{log}");
}

#[test]
fn info_lists_the_adapter() {
    let (ok, log) = shadergan(&["info"]);
    assert!(ok, "{log}");
    assert!(log.contains("chosen:"), "{log}");
}

#[test]
fn info_names_the_kernel_path_and_bad_switches_are_errors() {
    // As on a machine without a desktop session.
    let out = Command::new(env!("CARGO_BIN_EXE_shadergan")).arg("info").env_remove("XDG_RUNTIME_DIR").output();
    let out = out.expect("run shadergan");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("kernels: "), "info says which kernels run: {text}");
    assert!(!text.contains("XDG_RUNTIME_DIR"), "a headless run prints no desktop-session errors: {text}");
    let out = Command::new(env!("CARGO_BIN_EXE_shadergan"))
        .args(["info"])
        .env("SHADERGAN_KERNELS", "portable,fastest")
        .output()
        .expect("run shadergan");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an unknown switch fails");
    assert!(text.contains("unknown word 'fastest'") && text.contains("no-subgroups"), "{text}");
}
