//! Fréchet distance, KID and precision/recall against formulas and independent computations,
//! and `shadergan eval` end to end.

mod common;
use common::*;
use shadergan::eval::{frechet_distance, kernel_distance, precision_recall, sqrt_psd};

fn gaussian_rows(rng: &mut impl rand::Rng, n: usize, d: usize, mean: f64, scale: f64) -> Vec<f64> {
    use rand_distr::{Distribution, StandardNormal};
    (0..n * d).map(|_| mean + scale * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng)).collect()
}

#[test]
fn frechet_distance_matches_its_closed_forms_and_invariances() {
    let mut rng = rng("fd");
    // One dimension: (μa - μb)² + (σa - σb)² with the sample statistics.
    let (a, b) = (gaussian_rows(&mut rng, 400, 1, 0.3, 1.2), gaussian_rows(&mut rng, 300, 1, -0.5, 0.7));
    let stats = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (m, (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt())
    };
    let ((ma, sa), (mb, sb)) = (stats(&a), stats(&b));
    let want = (ma - mb).powi(2) + (sa - sb).powi(2);
    assert!(
        (frechet_distance(&a, &b, 1) - want).abs() < 1e-9 * want.max(1.0),
        "{} vs {want}",
        frechet_distance(&a, &b, 1)
    );

    // Odd dimensions: zero for a set against itself, symmetric, unchanged by a shared shift.
    for d in [3, 5] {
        let a = gaussian_rows(&mut rng, 200, d, 0.0, 1.0);
        let b: Vec<f64> = gaussian_rows(&mut rng, 150, d, 0.2, 1.5);
        assert!(frechet_distance(&a, &a, d).abs() < 1e-8);
        let (ab, ba) = (frechet_distance(&a, &b, d), frechet_distance(&b, &a, d));
        assert!((ab - ba).abs() < 1e-8 * ab, "{ab} vs {ba}");
        let shift = |v: &[f64]| v.iter().enumerate().map(|(k, x)| x + (k % d) as f64).collect::<Vec<_>>();
        assert!((frechet_distance(&shift(&a), &shift(&b), d) - ab).abs() < 1e-8 * ab);
        assert!(ab > 0.5, "a scale of 1.5 against 1 in {d} dimensions is far: {ab}");
    }

    // The matrix square root squares back.
    let m = [4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 2.0];
    let r = sqrt_psd(&m, 3);
    for i in 0..3 {
        for j in 0..3 {
            let v: f64 = (0..3).map(|k| r[i * 3 + k] * r[k * 3 + j]).sum();
            assert!((v - m[i * 3 + j]).abs() < 1e-10, "({i},{j}): {v}");
        }
    }
}

#[test]
fn kid_matches_a_direct_computation_and_precision_recall_their_cases() {
    let mut rng = rng("kid");
    let (d, n) = (4, 30);
    let (a, b) = (gaussian_rows(&mut rng, n, d, 0.0, 1.0), gaussian_rows(&mut rng, n, d, 0.7, 1.0));
    // One subset of all rows is the plain unbiased estimator.
    let k = |x: &[f64], y: &[f64]| (x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>() / d as f64 + 1.0).powi(3);
    let row = |v: &[f64], i: usize| v[i * d..(i + 1) * d].to_vec();
    let mut want = 0.0;
    for i in 0..n {
        for j in 0..n {
            if i != j {
                want += (k(&row(&a, i), &row(&a, j)) + k(&row(&b, i), &row(&b, j))) / (n * (n - 1)) as f64;
            }
            want -= 2.0 * k(&row(&a, i), &row(&b, j)) / (n * n) as f64;
        }
    }
    let got = kernel_distance(&a, &b, d, 1, n, 3);
    assert!((got - want).abs() < 1e-10 * want.abs().max(1.0), "{got} vs {want}");
    assert!(got > 0.0);

    // A generator that reproduces half the reals: full precision, recall about a half.
    let grid: Vec<f64> = (0..100).flat_map(|i| [(i % 10) as f64, (i / 10) as f64]).collect();
    let half = grid[..100].to_vec();
    let (p, r) = precision_recall(&grid, &half, 2, 3);
    assert!((p - 1.0).abs() < 1e-12 && r > 0.4 && r < 0.8, "precision {p}, recall {r}");
    let far: Vec<f64> = grid.iter().map(|v| v + 100.0).collect();
    assert_eq!(precision_recall(&grid, &far, 2, 3), (0.0, 0.0));
}

#[test]
fn eval_scores_a_generator_against_real_digits() {
    use shadergan::models::classifier::Classifier;
    use shadergan::train::{run, save_checkpoint, GanTrainer};
    let gpu = gpu();
    let config = tiny_dcgan();
    let data = run::load_dataset(&config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_checkpoint(&GanTrainer::new(&gpu, &config, data.len), dir.path()).unwrap();
    let mut c = Classifier::new(&gpu, 10, 1, 16, 4, 1);
    c.train(&data, 5, 16, 1e-3, 1, |_, _| {});
    let classifier = dir.path().join("c.safetensors");
    c.save(&classifier, 4, None).unwrap();
    let real = format!("{}/assets/mnist-test-images-idx3-ubyte.gz", env!("CARGO_MANIFEST_DIR"));
    let model = dir.path().join("model.safetensors");
    let q = shadergan::tasks::sample_quality(&gpu, &model, real.as_ref(), &classifier, 64, 0).unwrap();
    eprintln!("{q:?}");
    assert_eq!((q.images, q.dims), (64, c.feature_dims()));
    assert!(
        q.frechet > 0.0 && q.kid.is_finite() && (0.0..=1.0).contains(&q.precision) && (0.0..=1.0).contains(&q.recall)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shadergan"))
        .args([
            "eval",
            "--checkpoint",
            model.to_str().unwrap(),
            "--real",
            &real,
            "--classifier",
            classifier.to_str().unwrap(),
            "--n",
            "64",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains(&format!("frechet distance {:.4}", q.frechet)), "{text}");
}

/// The features and the NumPy/SciPy scores that scripts/sample_quality_reference.py wrote.
struct Reference {
    dims: usize,
    scores: std::collections::HashMap<String, f64>,
    real: Vec<f64>,
    fake: Vec<f64>,
}

fn read_reference() -> Reference {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample_quality_reference.txt");
    let text = std::fs::read_to_string(path).expect("tests/data/sample_quality_reference.txt");
    let mut r = Reference { dims: 0, scores: Default::default(), real: vec![], fake: vec![] };
    let mut section = "";
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        match line.split_once(' ') {
            _ if line == "real" || line == "fake" => section = if line == "real" { "real" } else { "fake" },
            Some((key, value)) if section.is_empty() => {
                let v: f64 = value.parse().unwrap();
                if key == "dims" {
                    r.dims = v as usize;
                }
                r.scores.insert(key.to_string(), v);
            }
            _ => {
                let row = line.split(' ').map(|v| v.parse::<f64>().unwrap());
                if section == "real" {
                    r.real.extend(row)
                } else {
                    r.fake.extend(row)
                }
            }
        }
    }
    r
}

#[test]
fn scores_match_numpy_and_scipy_on_the_same_features() {
    let r = read_reference();
    let d = r.dims;
    assert_eq!(r.real.len(), r.fake.len());
    assert_eq!(r.real.len(), d * r.scores["rows"] as usize);
    let n = r.real.len() / d;
    // KID over subsets as large as the sets is the full-set estimate the script computes.
    let (precision, recall) = shadergan::eval::precision_recall(&r.real, &r.fake, d, 3);
    let ours = [
        ("fd", shadergan::eval::frechet_distance(&r.real, &r.fake, d)),
        ("kid", shadergan::eval::kernel_distance(&r.real, &r.fake, d, 3, n, 7)),
        ("precision", precision),
        ("recall", recall),
    ];
    for (name, value) in ours {
        let expected = r.scores[name];
        let err = (value - expected).abs();
        assert!(
            err <= 1e-9 + 1e-7 * expected.abs(),
            "{name}: shadergan {value}, NumPy/SciPy {expected} (diff {err:e})"
        );
        println!("{name}: shadergan {value:.12}, NumPy/SciPy {expected:.12}");
    }
}

#[test]
fn training_evaluates_every_n_steps_charts_fd_and_resumes_the_table() {
    use shadergan::models::classifier::Classifier;
    use shadergan::train::run::{train, RunOptions};
    let gpu = gpu();
    let work = tempfile::tempdir().unwrap();
    let mut c = Classifier::new(&gpu, 10, 1, 16, 4, 1);
    let config = tiny_dcgan();
    c.train(&shadergan::train::run::load_dataset(&config).unwrap(), 5, 16, 1e-3, 1, |_, _| {});
    let classifier = work.path().join("c.safetensors");
    c.save(&classifier, 4, None).unwrap();
    let real =
        std::path::PathBuf::from(format!("{}/assets/mnist-test-images-idx3-ubyte.gz", env!("CARGO_MANIFEST_DIR")));
    let mut config = config;
    config.eval = Some(shadergan::config::EvalConfig {
        every: 2,
        classifier: classifier.clone(),
        real: Some(real.clone()),
        n: 40,
        seed: 5,
    });
    (config.train.steps, config.train.checkpoint_every) = (4, 2);
    let path = work.path().join("run.toml");
    std::fs::write(&path, config.to_toml()).unwrap();
    let run = |name: &str, steps: u64, resume: bool| {
        let out = work.path().join(name);
        let opts = RunOptions {
            config: path.clone(),
            steps: Some(steps),
            out: out.clone(),
            resume,
            progress: false,
            shard: shadergan::train::Shard::single(),
        };
        train(&gpu, &opts).unwrap();
        out
    };
    let whole = run("whole", 4, false);
    let table = std::fs::read_to_string(whole.join("eval.csv")).unwrap();
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows[0], "step,fd,kid,precision,recall");
    assert_eq!(rows.len(), 3, "evaluations at steps 2 and 4:\n{table}");
    let last: Vec<f64> = rows[2].split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(last[0], 4.0);
    // The last row is what `shadergan eval` says of the saved generator with the same settings.
    let q =
        shadergan::tasks::sample_quality(&gpu, &whole.join("model.safetensors"), &real, &classifier, 40, 5).unwrap();
    for (name, got, want) in [
        ("fd", last[1], q.frechet),
        ("kid", last[2], q.kid),
        ("precision", last[3], q.precision),
        ("recall", last[4], q.recall),
    ] {
        assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0), "{name}: during training {got}, eval {want}");
    }
    let html = std::fs::read_to_string(whole.join("report.html")).unwrap();
    assert!(
        html.contains("Fréchet distance") && html.contains("Precision and recall"),
        "report.html lacks the evaluation charts"
    );

    // Stopped after the first evaluation and resumed: the same table.
    run("resumed", 2, false);
    let resumed = run("resumed", 4, true);
    assert_eq!(std::fs::read_to_string(resumed.join("eval.csv")).unwrap(), table);

    // A missing classifier is named before training starts.
    let mut broken = config.clone();
    broken.eval.as_mut().unwrap().classifier = work.path().join("missing.safetensors");
    std::fs::write(&path, broken.to_toml()).unwrap();
    let opts = RunOptions {
        config: path.clone(),
        steps: Some(4),
        out: work.path().join("broken"),
        resume: false,
        progress: false,
        shard: shadergan::train::Shard::single(),
    };
    let e = train(&gpu, &opts).unwrap_err().to_string();
    assert!(e.contains("missing.safetensors"), "{e}");
}
