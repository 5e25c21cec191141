//! Data loaders and config parsing, including every kind of bad input the user can hand us:
//! each must be an error naming the file and the problem, never a panic.

use std::io::Write;
use std::path::Path;

use shadergan::config::Config;
use shadergan::data::{load_folder, load_idx_images, load_idx_labels, BatchSampler};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn bundled_mnist_loads_with_labels() {
    let images = load_idx_images(&root().join("assets/mnist-train-images-idx3-ubyte.gz"), 32).unwrap();
    let labels = load_idx_labels(&root().join("assets/mnist-train-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(images.len, 9003);
    assert_eq!(labels.len(), 9003);
    assert_eq!((images.channels, images.size), (1, 32));
    assert!(images.pixels.iter().all(|v| (-1.0..=1.0).contains(v)));
    // Real digits: mostly background (-1) with some ink near +1.
    let ink = images.pixels.iter().filter(|&&v| v > 0.5).count() as f64 / images.pixels.len() as f64;
    assert!(ink > 0.05 && ink < 0.4, "ink fraction {ink}");
    let mut counts = [0usize; 10];
    for &l in &labels {
        counts[l as usize] += 1;
    }
    assert!(counts.iter().all(|&c| c > 700), "class counts {counts:?}");
    let test = load_idx_labels(&root().join("assets/mnist-test-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(test.len(), 997);
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::File::create(path).unwrap().write_all(bytes).unwrap();
}

#[test]
fn bad_idx_files_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.idx");
    let mut bytes = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28];
    bytes.extend(vec![0u8; 784 + 100]);
    write(&truncated, &bytes);
    let e = load_idx_images(&truncated, 32).unwrap_err().to_string();
    assert!(e.contains("truncated.idx") && e.contains("truncated"), "{e}");

    let magic = dir.path().join("magic.idx");
    write(&magic, b"\x89PNG\r\n\x1a\n0000000000");
    let e = load_idx_images(&magic, 32).unwrap_err().to_string();
    assert!(e.contains("magic.idx") && e.contains("magic"), "{e}");

    let gz = dir.path().join("corrupt.gz");
    write(&gz, &[0x1f, 0x8b, 8, 0, 1, 2, 3]);
    let e = load_idx_images(&gz, 32).unwrap_err().to_string();
    assert!(e.contains("corrupt.gz") && e.contains("gzip"), "{e}");

    let labels_as_images = root().join("assets/mnist-test-labels-idx1-ubyte.gz");
    let e = load_idx_images(&labels_as_images, 32).unwrap_err().to_string();
    assert!(e.contains("expected images"), "{e}");

    let e = load_idx_images(&dir.path().join("missing.idx"), 32).unwrap_err().to_string();
    assert!(e.contains("missing.idx"), "{e}");
}

#[test]
fn image_folders_load_resize_label_and_reject_bad_sets() {
    let dir = tempfile::tempdir().unwrap();
    for (class, shade) in [("cats", 30u8), ("dogs", 220u8)] {
        let sub = dir.path().join(class);
        std::fs::create_dir(&sub).unwrap();
        for i in 0..3 {
            // Odd sizes and aspect ratios: centre-cropped and resized.
            let img = image::RgbImage::from_pixel(20 + i * 7, 13 + i, image::Rgb([shade, shade, shade]));
            img.save(sub.join(format!("{i}.png"))).unwrap();
        }
    }
    let set = load_folder(dir.path(), 8, 3).unwrap();
    assert_eq!((set.len, set.channels, set.size), (6, 3, 8));
    assert_eq!(set.class_names, vec!["cats", "dogs"]);
    assert_eq!(set.labels.as_deref(), Some(&[0, 0, 0, 1, 1, 1][..]));
    let first = set.image(0)[0];
    assert!((first - (30.0 / 127.5 - 1.0)).abs() < 0.02, "{first}");
    let gray = load_folder(dir.path(), 8, 1).unwrap();
    assert_eq!(gray.image_len(), 64);

    let empty = tempfile::tempdir().unwrap();
    let e = load_folder(empty.path(), 8, 1).unwrap_err().to_string();
    assert!(e.contains("no PNG or JPEG"), "{e}");

    let mixed = tempfile::tempdir().unwrap();
    image::GrayImage::from_pixel(8, 8, image::Luma([9])).save(mixed.path().join("a.png")).unwrap();
    image::RgbImage::from_pixel(8, 8, image::Rgb([9, 200, 3])).save(mixed.path().join("b.png")).unwrap();
    let e = load_folder(mixed.path(), 8, 1).unwrap_err().to_string();
    assert!(e.contains("b.png") && e.contains("mixed channels"), "{e}");
    // Read as colour, the gray image is repeated in each channel.
    let colour = load_folder(mixed.path(), 8, 3).unwrap();
    let gray_image = colour.image(0);
    assert!(gray_image[..64].iter().zip(&gray_image[128..]).all(|(r, b)| (r - b).abs() < 1e-6));

    let broken = tempfile::tempdir().unwrap();
    write(&broken.path().join("x.png"), b"not a png at all");
    let e = load_folder(broken.path(), 8, 1).unwrap_err().to_string();
    assert!(e.contains("x.png") && e.contains("decode"), "{e}");
}

#[test]
fn sampler_covers_each_epoch_once_and_resumes_from_its_position() {
    let mut s = BatchSampler::new(10, 3);
    let mut seen: Vec<usize> = (0..3).flat_map(|_| s.next_indices(3)).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 9, "one epoch has no repeats");
    let mut a = BatchSampler::new(10, 3);
    for _ in 0..5 {
        a.next_indices(3);
    }
    let mut b = BatchSampler::at(10, 3, a.epoch, a.cursor);
    for _ in 0..7 {
        assert_eq!(a.next_indices(3), b.next_indices(3));
    }
}

#[test]
fn configs_parse_and_bad_values_are_named() {
    let shipped = Config::load(&root().join("configs/dcgan-mnist.toml")).unwrap();
    assert_eq!(shipped.data.image_size, 32);
    let base = std::fs::read_to_string(root().join("tests/fixtures/tiny-dcgan.toml")).unwrap();
    let p = Path::new("test.toml");
    for (from, to, needle) in [
        ("image_size = 16", "image_size = 24", "data.image_size = 24"),
        ("batch_size = 8", "batch_size = 1", "train.batch_size = 1"),
        ("g_width = 4", "g_width = 0", "model.g_width = 0"),
        ("seed = 7", "seed = 7\nlearning_rate = 3", "unknown field `learning_rate`"),
        ("steps = 4", "steps = \"many\"", "steps"),
        ("kind = \"idx\"", "kind = \"csv\"", "unknown variant `csv`"),
        ("limit = 64", "limit = 64\nstreaming = true", "data.streaming = true"),
        ("limit = 64", "limit = 64\nprefetch = 0", "data.prefetch = 0"),
        ("seed = 7", "seed = 7\n[eval]\nevery = 0\nclassifier = \"c.safetensors\"", "eval.every = 0"),
        ("seed = 7", "seed = 7\n[eval]\nevery = 5\nclassifier = \"c.safetensors\"\nn = 1", "eval.n = 1"),
    ] {
        let text = base.replace(from, to);
        let e = Config::parse(&text, p).unwrap_err().to_string();
        assert!(e.contains("test.toml") && e.contains(needle), "{to}: {e}");
    }
    let e = Config::load(Path::new("no/such/config.toml")).unwrap_err().to_string();
    assert!(e.contains("no/such/config.toml"), "{e}");
}

#[test]
fn every_shipped_config_parses_and_validates() {
    let mut seen = 0;
    for entry in std::fs::read_dir(root().join("configs")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("classifier") {
            shadergan::config::ClassifierConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        } else if name.starts_with("cyclegan") {
            let c = shadergan::config::CycleConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                root().join(&c.domain_x.images).exists() && root().join(&c.domain_y.images).exists(),
                "{name}: data missing"
            );
        } else {
            let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let images = c.data.images.to_string_lossy().into_owned();
            if images.starts_with("assets/") {
                assert!(root().join(&c.data.images).exists(), "{name}: {images} missing");
            } else {
                // Data fetched on demand: the config must say how.
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(
                    text.contains("setup.sh --datasets") || text.contains("fetch_emoji.py"),
                    "{name}: {images} is not bundled and the config does not say how to get it"
                );
            }
        }
        seen += 1;
    }
    assert!(seen >= 9, "configs/ holds {seen} files");
}

/// A miniature emoji-datasource-google package: two categories of RGBA (and gray + alpha)
/// PNGs, a skipped "Component" entry, an entry without a Google image and a skin-tone variant.
fn fake_emoji_package(dir: &Path) {
    let img = dir.join("img/google/64");
    std::fs::create_dir_all(&img).unwrap();
    let mut entries = Vec::new();
    for (i, (category, google)) in [
        ("Smileys & Emotion", true),
        ("Smileys & Emotion", true),
        ("Smileys & Emotion", true),
        ("Food & Drink", true),
        ("Food & Drink", true),
        ("Food & Drink", false),
        ("Component", true),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("1f60{i}.png");
        if i == 4 {
            image::GrayAlphaImage::from_fn(64, 64, |x, _| image::LumaA([40, (x * 4) as u8]))
                .save(img.join(&name))
                .unwrap();
        } else {
            image::RgbaImage::from_fn(64, 64, |x, _| image::Rgba([200, i as u8 * 30, 10, (x * 4) as u8]))
                .save(img.join(&name))
                .unwrap();
        }
        let skin = if i == 0 {
            image::RgbaImage::from_pixel(64, 64, image::Rgba([9, 9, 9, 255]))
                .save(img.join("1f600-1f3fb.png"))
                .unwrap();
            r#", "skin_variations": {"1F3FB": {"image": "1f600-1f3fb.png", "has_img_google": true}}"#
        } else {
            ""
        };
        entries.push(format!(r#"{{"image": "{name}", "category": "{category}", "has_img_google": {google}{skin}}}"#));
    }
    std::fs::write(dir.join("emoji.json"), format!("[{}]", entries.join(","))).unwrap();
}

#[test]
fn the_emoji_script_lays_out_categories_that_load_as_classes() {
    let work = tempfile::tempdir().unwrap();
    let package = work.path().join("package");
    fake_emoji_package(&package);
    let out = work.path().join("emoji");
    let status = std::process::Command::new("python3")
        .arg(root().join("scripts/fetch_emoji.py"))
        .arg(&package)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("python3 runs scripts/fetch_emoji.py");
    assert!(status.success());
    let attribution = std::fs::read_to_string(out.join("ATTRIBUTION.md")).unwrap();
    assert!(attribution.contains("Apache License") && attribution.contains("MIT"), "{attribution}");
    // 3 smileys: 1 held out; 2 foods with Google images: 1 held out; no component, no skin tone.
    let train = load_folder(&out.join("train"), 64, 3).unwrap();
    let test = load_folder(&out.join("test"), 64, 3).unwrap();
    assert_eq!(train.class_names, vec!["food-and-drink", "smileys-and-emotion"]);
    assert_eq!((train.len, test.len), (3, 2));
    assert!(!out.join("train/component").exists());
    let all: Vec<String> = walk(&out).into_iter().filter(|p| p.ends_with(".png")).collect();
    assert!(all.iter().all(|p| !p.contains("1f3fb") && !p.contains("1f605") && !p.contains("1f606")), "{all:?}");
    // Transparent pixels came out white: the left column (alpha 0) of every image.
    for set in [&train, &test] {
        for i in 0..set.len {
            let img = set.image(i);
            assert!((0..3).all(|c| img[c * 64 * 64] > 0.99), "image {i}'s transparent corner is not white");
        }
    }
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}
