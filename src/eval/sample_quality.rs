//! Distances between a set of generated images and a set of real ones, in a feature space (the
//! engine's own classifier's): Fréchet distance, kernel distance (KID) and precision/recall of
//! the two k-NN manifolds (Kynkäänniemi et al. 2019). Features are rows of `dims` values, in f64
//! on the host. These figures compare runs on one dataset and one classifier; they are not
//! Inception-FID and do not compare with published FIDs.

/// Mean (`d` values) and covariance (`d` x `d`, divided by n - 1) of `n` rows of `d` features.
pub fn mean_and_covariance(rows: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = rows.len() / d;
    let mut mean = vec![0.0; d];
    for r in rows.chunks(d) {
        mean.iter_mut().zip(r).for_each(|(m, x)| *m += x / n as f64);
    }
    let mut cov = vec![0.0; d * d];
    for r in rows.chunks(d) {
        for i in 0..d {
            let a = r[i] - mean[i];
            for j in i..d {
                cov[i * d + j] += a * (r[j] - mean[j]);
            }
        }
    }
    let denom = (n.max(2) - 1) as f64;
    for i in 0..d {
        for j in i..d {
            cov[i * d + j] /= denom;
            cov[j * d + i] = cov[i * d + j];
        }
    }
    (mean, cov)
}

/// Eigenvalues and eigenvectors (columns of the returned [d, d]) of a symmetric matrix, by
/// cyclic Jacobi rotations.
pub fn symmetric_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v: Vec<f64> = (0..d * d).map(|k| if k / d == k % d { 1.0 } else { 0.0 }).collect();
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * d + j].powi(2))
            .sum();
        let scale: f64 = (0..d).map(|i| a[i * d + i].powi(2)).sum::<f64>().max(1e-300);
        if off <= 1e-28 * scale {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

/// The symmetric square root of a symmetric positive semi-definite matrix (negative
/// eigenvalues from rounding are taken as zero).
pub fn sqrt_psd(a: &[f64], d: usize) -> Vec<f64> {
    let (values, vectors) = symmetric_eigen(a, d);
    let mut out = vec![0.0; d * d];
    for (k, &lambda) in values.iter().enumerate() {
        let s = lambda.max(0.0).sqrt();
        for i in 0..d {
            for j in 0..d {
                out[i * d + j] += s * vectors[i * d + k] * vectors[j * d + k];
            }
        }
    }
    out
}

fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    for i in 0..d {
        for k in 0..d {
            let aik = a[i * d + k];
            for j in 0..d {
                out[i * d + j] += aik * b[k * d + j];
            }
        }
    }
    out
}

/// Fréchet distance between Gaussians fitted to two feature sets:
/// ||μa - μb||² + Tr(Σa + Σb - 2 (Σa Σb)^½), with Tr (Σa Σb)^½ = Tr (Σa^½ Σb Σa^½)^½.
pub fn frechet_distance(a: &[f64], b: &[f64], d: usize) -> f64 {
    let ((ma, ca), (mb, cb)) = (mean_and_covariance(a, d), mean_and_covariance(b, d));
    let root_a = sqrt_psd(&ca, d);
    let middle = matmul(&matmul(&root_a, &cb, d), &root_a, d);
    let cross: f64 = symmetric_eigen(&middle, d).0.iter().map(|l| l.max(0.0).sqrt()).sum();
    let shift: f64 = ma.iter().zip(&mb).map(|(x, y)| (x - y).powi(2)).sum();
    let traces: f64 = (0..d).map(|i| ca[i * d + i] + cb[i * d + i]).sum();
    (shift + traces - 2.0 * cross).max(0.0)
}

/// KID: the unbiased MMD² with the kernel (xᵀy / d + 1)³, averaged over `subsets` random
/// subsets of at most `size` rows of each set (the subsets are chosen by `seed`).
pub fn kernel_distance(a: &[f64], b: &[f64], d: usize, subsets: usize, size: usize, seed: u64) -> f64 {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let (na, nb) = (a.len() / d, b.len() / d);
    let m = size.min(na).min(nb);
    assert!(m >= 2, "KID needs at least 2 rows in each set");
    let k = |x: &[f64], y: &[f64]| (x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>() / d as f64 + 1.0).powi(3);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut total = 0.0;
    for _ in 0..subsets {
        let mut ia: Vec<usize> = (0..na).collect();
        let mut ib: Vec<usize> = (0..nb).collect();
        ia.shuffle(&mut rng);
        ib.shuffle(&mut rng);
        let row_a = |i: usize| &a[ia[i] * d..(ia[i] + 1) * d];
        let row_b = |i: usize| &b[ib[i] * d..(ib[i] + 1) * d];
        let (mut aa, mut bb, mut ab) = (0.0, 0.0, 0.0);
        for i in 0..m {
            for j in 0..m {
                if i != j {
                    aa += k(row_a(i), row_a(j));
                    bb += k(row_b(i), row_b(j));
                }
                ab += k(row_a(i), row_b(j));
            }
        }
        let mf = m as f64;
        total += aa / (mf * (mf - 1.0)) + bb / (mf * (mf - 1.0)) - 2.0 * ab / (mf * mf);
    }
    total / subsets as f64
}

fn squared_distance(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(p, q)| (p - q).powi(2)).sum()
}

/// Each row's squared distance to its k-th nearest other row of the same set.
fn knn_radii(rows: &[f64], d: usize, k: usize) -> Vec<f64> {
    let n = rows.len() / d;
    (0..n)
        .map(|i| {
            let mut dist: Vec<f64> = (0..n)
                .filter(|&j| j != i)
                .map(|j| squared_distance(&rows[i * d..(i + 1) * d], &rows[j * d..(j + 1) * d]))
                .collect();
            dist.sort_by(f64::total_cmp);
            dist[(k - 1).min(dist.len() - 1)]
        })
        .collect()
}

/// The share of `probe` rows inside the manifold of `support`: within some support row's k-NN
/// ball.
fn coverage(support: &[f64], radii: &[f64], probe: &[f64], d: usize) -> f64 {
    let inside =
        probe.chunks(d).filter(|p| support.chunks(d).zip(radii).any(|(s, &r)| squared_distance(p, s) <= r)).count();
    inside as f64 / (probe.len() / d).max(1) as f64
}

/// Precision (the share of generated rows inside the real manifold) and recall (the share of
/// real rows inside the generated manifold), manifolds as unions of k-NN balls.
pub fn precision_recall(real: &[f64], fake: &[f64], d: usize, k: usize) -> (f64, f64) {
    let (real_radii, fake_radii) = (knn_radii(real, d, k), knn_radii(fake, d, k));
    (coverage(real, &real_radii, fake, d), coverage(fake, &fake_radii, real, d))
}
