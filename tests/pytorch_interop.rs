//! A checkpoint read by the Python `safetensors` package (and PyTorch when installed) has the
//! names, dtypes and shapes of PyTorch's DCGAN modules. CI installs the package and sets
//! SHADERGAN_REQUIRE_PYTHON=1, so there the check cannot be skipped.

mod common;
use std::path::Path;
use std::process::Command;

use shadergan::config::Config;
use shadergan::train::{run, GanTrainer};

fn python_with_safetensors() -> bool {
    Command::new("python3")
        .args(["-c", "import safetensors.numpy, tomllib"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn checkpoint_loads_in_python_with_pytorch_names_and_shapes() {
    if !python_with_safetensors() {
        assert!(
            std::env::var("SHADERGAN_REQUIRE_PYTHON").is_err(),
            "SHADERGAN_REQUIRE_PYTHON is set but python3 cannot import safetensors (pip install safetensors numpy)"
        );
        eprintln!("python3 with the safetensors package not found: interop check not run");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("tests/fixtures/tiny-dcgan.toml")).unwrap();
    let mut config = Config::parse(&text, Path::new("tiny")).unwrap();
    config.data.images = root.join(&config.data.images);
    config.data.labels = None;
    config.data.image_size = 32;
    let gpu = common::gpu();
    let data = run::load_dataset(&config).unwrap();
    let mut t = GanTrainer::new(&gpu, &config, data.len);
    t.train_step(&data);
    let dir = tempfile::tempdir().unwrap();
    shadergan::train::save_checkpoint(&t, dir.path()).unwrap();
    let out = Command::new("python3")
        .arg(root.join("scripts/check_checkpoint.py"))
        .arg(dir.path().join("model.safetensors"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("ok:"), "{log}");
}

#[test]
fn the_weight_counts_loaders_check_match_the_built_generators() {
    use rand::SeedableRng;
    use shadergan::config::Norm;
    use shadergan::models::{cyclegan, dcgan};
    let gpu = common::gpu();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let conv_weights = |net: &shadergan::nn::Sequential| -> u128 {
        net.named_tensors()
            .iter()
            .filter(|(n, t, _)| n.ends_with("weight") && t.rank() == 4)
            .map(|(_, t, _)| t.numel() as u128)
            .sum()
    };
    for (latent, width, channels, size) in [(100, 8, 1, 32), (7, 3, 3, 16), (12, 5, 1, 64)] {
        let g = dcgan::generator(&gpu, latent, width, channels, size, Norm::Batch, &mut rng);
        assert_eq!(
            dcgan::generator_weight_count(latent, width, channels, size),
            conv_weights(&g),
            "{latent} {width} {channels} {size}"
        );
    }
    for (channels, width, blocks) in [(1, 4, 1), (3, 6, 3)] {
        let g = cyclegan::generator(&gpu, channels, width, blocks, &mut rng);
        assert_eq!(
            cyclegan::generator_weight_count(channels, width, blocks),
            conv_weights(&g),
            "{channels} {width} {blocks}"
        );
    }
}
