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
