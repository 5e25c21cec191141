//! Property-based fuzzing (proptest) of everything that reads outside input: IDX files, image
//! folders, TOML configs and checkpoints. Each must answer every input with a value or an
//! error, never a panic. CI runs a short bounded pass; `PROPTEST_CASES=N cargo test --test fuzz`
//! runs N inputs per target.

mod common;
use std::path::Path;

use proptest::prelude::*;
use shadergan::checkpoint;
use shadergan::config::{Config, CycleConfig};
use shadergan::data;

/// Inputs per target in CI; PROPTEST_CASES overrides it.
fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

/// A valid file's bytes with some bytes overwritten and, now and then, cut short or extended.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    (
        prop::collection::vec((0..len.max(1), any::<u8>()), 0..8),
        prop::option::weighted(0.2, 0..=len),
        prop::option::weighted(0.2, prop::collection::vec(any::<u8>(), 1..16)),
    )
        .prop_map(move |(edits, cut, tail)| {
            let mut b = valid.clone();
            for (i, v) in edits {
                if let Some(byte) = b.get_mut(i) {
                    *byte = v;
                }
            }
            if let Some(keep) = cut {
                b.truncate(keep);
            }
            b.extend(tail.unwrap_or_default());
            b
        })
}

fn idx(dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    b.extend(payload);
    b
}

proptest! {
    #![proptest_config(cases(1000))]

    #[test]
    fn idx_files_never_panic(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        mutated(idx(&[3, 4, 4], &[7; 48])),
        mutated(idx(&[5], &[1; 5])),
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(a, b, c)| idx(&[a, b, c], &[0; 16])),
    ], gzip in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.idx");
        let bytes = if gzip {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&bytes).unwrap();
            e.finish().unwrap()
        } else {
            bytes
        };
        std::fs::write(&path, &bytes).unwrap();
        let _ = data::load_idx_images(&path, 8);
        let _ = data::load_idx_labels(&path);
    }

    #[test]
    fn image_folders_never_panic(files in prop::collection::vec(prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        mutated(png_bytes()),
    ], 1..4), crops in 0usize..3, channels in prop_oneof![Just(1usize), Just(3), Just(2)]) {
        let dir = tempfile::tempdir().unwrap();
        for (i, f) in files.iter().enumerate() {
            let class = dir.path().join(format!("class{}", i % 2));
            std::fs::create_dir_all(&class).unwrap();
            std::fs::write(class.join(format!("{i}.png")), f).unwrap();
        }
        let _ = data::load_folder_crops(dir.path(), 8, channels, crops, 6, 0);
    }

    #[test]
    fn configs_never_panic(text in config_text()) {
        if let Ok(c) = Config::parse(&text, Path::new("fuzz.toml")) {
            // A config that parses round-trips through its own TOML.
            prop_assert!(Config::parse(&c.to_toml(), Path::new("again.toml")).is_ok());
        }
        let _ = CycleConfig::parse(&text, Path::new("fuzz.toml"));
    }
}

fn png_bytes() -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_fn(10, 9, |x, y| image::Luma([(x * 20 + y) as u8]))
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// A valid config with values replaced by random ones of random types, and random lines added.
fn config_text() -> impl Strategy<Value = String> {
    let base =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/wgan-gp-mnist.toml")).unwrap();
    let lines: Vec<String> = base.lines().map(String::from).collect();
    let value = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("\"\"".to_string()),
        "[a-z_]{0,12}".prop_map(|s| format!("\"{s}\"")),
        Just("[1, 2]".to_string()),
    ];
    (
        prop::collection::vec((0..lines.len(), value), 0..6),
        prop::collection::vec("[a-z_.]{1,12} = [0-9a-z\"]{0,6}", 0..3),
    )
        .prop_map(move |(edits, extra)| {
            let mut l = lines.clone();
            for (i, v) in edits {
                if let Some((key, _)) = l[i].split_once(" = ") {
                    l[i] = format!("{key} = {v}");
                }
            }
            l.extend(extra);
            l.join("\n")
        })
}

#[test]
fn checkpoints_never_panic() {
    use shadergan::train::{load_generator, run, save_checkpoint, GanTrainer};
    let gpu = common::gpu();
    let config = common::tiny_dcgan();
    let data = run::load_dataset(&config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_checkpoint(&GanTrainer::new(&gpu, &config, data.len), dir.path()).unwrap();
    let valid = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    let path = dir.path().join("fuzzed.safetensors");
    let mut runner = proptest::test_runner::TestRunner::new(cases(300));
    let (loaded, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    runner
        .run(&prop_oneof![mutated(valid.clone()), prop::collection::vec(any::<u8>(), 0..256)], |bytes| {
            std::fs::write(&path, &bytes).unwrap();
            let _ = checkpoint::load(&path);
            match load_generator(&gpu, &path) {
                Ok(_) => loaded.set(loaded.get() + 1),
                Err(_) => refused.set(refused.get() + 1),
            }
            Ok(())
        })
        .unwrap();
    eprintln!("checkpoints: {} loaded, {} refused with an error, no panic", loaded.get(), refused.get());
    assert!(refused.get() > 0);
}
