//! The modern recipe's pieces against references: the hinge loss against its formula, R1's
//! gradient with respect to the critic's weights against nested finite differences of an f64
//! copy of the critic, and a lazily regularised run that resumes bit for bit.

mod common;
use common::*;
use shadergan::config::{GanLoss, Norm};
use shadergan::grad;
use shadergan::nn::{Layer, Linear, Mode, Module, Sequential};
use shadergan::train::losses::{discriminator_loss, generator_loss, gradient_norm_penalty};
use shadergan::train::{run, GanTrainer, Trainer};

#[test]
fn hinge_losses_match_their_formulas() {
    let gpu = gpu();
    let mut rng = rng("hinge");
    let (real, fake) = (uniform(&mut rng, 11, -2.5, 2.5), uniform(&mut rng, 11, -2.5, 2.5));
    let (rt, ft) = (tensor(&gpu, &[11, 1], &real), tensor(&gpu, &[11, 1], &fake));
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    let want_d = mean(real.iter().map(|x| (1.0 - x).max(0.0)).collect())
        + mean(fake.iter().map(|x| (1.0 + x).max(0.0)).collect());
    assert_close("hinge D", &[discriminator_loss(GanLoss::Hinge, &rt, &ft, 1.0).item()], &[want_d], 1e-5, 1e-6);
    let want_g = -mean(fake.clone());
    assert_close("hinge G", &[generator_loss(GanLoss::Hinge, &ft).item()], &[want_g], 1e-5, 1e-6);
}

/// The critic D(x) = v · tanh(W x + b) + c in f64.
fn critic_f64(w: &[f64], b: &[f64], v: &[f64], c: f64, x: &[f64], (i, h): (usize, usize)) -> f64 {
    (0..h).map(|j| v[j] * ((0..i).map(|k| w[j * i + k] * x[k]).sum::<f64>() + b[j]).tanh()).sum::<f64>() + c
}

/// R1 = mean over samples of ||∇ₓ D(x)||², with ∇ₓ by central differences too.
fn r1_by_differences(w: &[f64], b: &[f64], v: &[f64], c: f64, xs: &[Vec<f64>], dims: (usize, usize)) -> f64 {
    let h = 1e-5;
    let per: Vec<f64> = xs
        .iter()
        .map(|x| {
            (0..x.len())
                .map(|k| {
                    let (mut up, mut down) = (x.clone(), x.clone());
                    up[k] += h;
                    down[k] -= h;
                    let d = (critic_f64(w, b, v, c, &up, dims) - critic_f64(w, b, v, c, &down, dims)) / (2.0 * h);
                    d * d
                })
                .sum()
        })
        .collect();
    per.iter().sum::<f64>() / per.len() as f64
}

#[test]
fn r1_gradient_with_respect_to_the_critic_matches_nested_finite_differences() {
    let gpu = gpu();
    let mut rng = rng("r1");
    for (n, i, h) in [(3, 4, 5), (2, 3, 7)] {
        let (w, b) = (uniform(&mut rng, h * i, -0.8, 0.8), uniform(&mut rng, h, -0.5, 0.5));
        let (v, c) = (uniform(&mut rng, h, -0.8, 0.8), 0.3);
        let x = uniform(&mut rng, n * i, -1.0, 1.0);
        let layer = |inputs: usize, outputs: usize, weight: &[f64], bias: &[f64]| {
            let l = Linear::new(&gpu, inputs, outputs);
            l.weight.assign(&f32s(weight));
            l.bias.as_ref().expect("a bias").assign(&f32s(bias));
            l
        };
        let (hidden, out) = (layer(i, h, &w, &b), layer(h, 1, &v, &[c]));
        let d = Sequential::default().push(hidden).then(Layer::Tanh).push(out);
        let penalty = gradient_norm_penalty(|x| d.forward(x, Mode::Train), &tensor(&gpu, &[n, i], &x));
        let params = d.parameters();
        let got: Vec<f32> = grad(&penalty, &params).iter().flat_map(|g| g.to_vec()).collect();

        let xs: Vec<Vec<f64>> = x.chunks(i).map(|r| r.to_vec()).collect();
        let theta: Vec<f64> = w.iter().chain(&b).chain(&v).copied().chain([c]).collect();
        let r1 = |t: &[f64]| {
            let (w, rest) = t.split_at(h * i);
            let (b, rest) = rest.split_at(h);
            let (v, c) = rest.split_at(h);
            r1_by_differences(w, b, v, c[0], &xs, (i, h))
        };
        let want = finite_diff(&theta, r1, 1e-4);
        eprintln!("R1 = {:.6} (GPU {:.6})", r1(&theta), penalty.item());
        assert_close("R1 value", &[penalty.item()], &[r1(&theta)], 1e-3, 1e-6);
        assert_close(&format!("dR1/dθ, {n} samples, {i} -> {h} -> 1"), &got, &want, 2e-3, 2e-5);
    }
}

#[test]
fn a_lazily_regularised_hinge_run_trains_and_resumes_bit_for_bit() {
    let gpu = gpu();
    let mut config = tiny_dcgan();
    (config.train.loss, config.model.d_norm) = (GanLoss::Hinge, Norm::Layer);
    (config.train.r1_gamma, config.train.r2_gamma, config.train.reg_every) = (1.0, 0.5, 2);
    let data = run::load_dataset(&config).unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut straight = GanTrainer::new(&gpu, &config, data.len);
    Trainer::new(a.path(), 4).fit(&mut straight, &data).unwrap();
    Trainer::new(b.path(), 3).fit(&mut GanTrainer::new(&gpu, &config, data.len), &data).unwrap();
    let mut resumed = GanTrainer::new(&gpu, &config, data.len);
    let summary = Trainer::new(b.path(), 4).resume(true).fit(&mut resumed, &data).unwrap();
    assert!(summary.last.iter().all(|(_, v)| v.is_finite()));
    let csv = |d: &std::path::Path| std::fs::read_to_string(d.join("metrics.csv")).unwrap();
    assert_eq!(csv(a.path()), csv(b.path()), "the resumed run's losses (penalty steps 1 and 3) differ");
    let w =
        |t: &GanTrainer| t.g.parameters().iter().chain(t.d.parameters().iter()).map(|p| p.to_vec()).collect::<Vec<_>>();
    assert_eq!(w(&straight), w(&resumed));

    // The penalty enters D's loss on every second step only: with it off, steps 1 and 3 change.
    let mut plain = config.clone();
    (plain.train.r1_gamma, plain.train.r2_gamma) = (0.0, 0.0);
    let mut t = GanTrainer::new(&gpu, &plain, data.len);
    let first = t.train_step(&data);
    let rows: Vec<Vec<f32>> =
        csv(a.path()).lines().skip(1).map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert!(rows[0][1] > first.d_loss + 1e-6, "step 1 carries the penalty: {} vs {}", rows[0][1], first.d_loss);
}

#[test]
fn the_ema_generator_follows_its_formula_and_is_what_checkpoints_sample() {
    let gpu = gpu();
    let mut config = tiny_dcgan();
    config.train.ema_half_life_images = 64.0; // batch 8: beta = 0.5^(8/64)
    let beta = 0.5f64.powf(8.0 / 64.0);
    let data = run::load_dataset(&config).unwrap();
    let mut t = GanTrainer::new(&gpu, &config, data.len);
    let params = |g: &Sequential| g.parameters().iter().map(|p| f64s(&p.to_vec())).collect::<Vec<_>>();
    let mut want = params(&t.g);
    for _ in 0..3 {
        t.train_step(&data);
        for (avg, now) in want.iter_mut().zip(params(&t.g)) {
            avg.iter_mut().zip(now).for_each(|(a, p)| *a = beta * *a + (1.0 - beta) * p);
        }
    }
    let ema = &t.ema.as_ref().expect("on").net;
    for (i, (got, want)) in params(ema).iter().zip(&want).enumerate() {
        assert_close(&format!("EMA parameter {i}"), &f32s(got), want, 1e-5, 1e-7);
    }
    // Buffers are G's; the average lags G.
    let buffers = |g: &Sequential| {
        g.named_tensors()
            .into_iter()
            .filter(|(_, _, r)| *r == shadergan::nn::Role::Buffer)
            .map(|(_, b, _)| b.to_vec())
            .collect::<Vec<_>>()
    };
    assert_eq!(buffers(ema), buffers(&t.g));
    assert_ne!(params(ema), params(&t.g));

    // Checkpoints keep it; loading a generator gives the average, as the grids showed.
    let dir = tempfile::tempdir().unwrap();
    shadergan::train::save_checkpoint(&t, dir.path()).unwrap();
    let (_, g) = shadergan::train::load_generator(&gpu, &dir.path().join("model.safetensors")).unwrap();
    assert_eq!(params(&g), params(ema));
    let z = &t.fixed_noise[..2 * config.model.latent_dim];
    let from_file =
        shadergan::train::generate(&gpu, &config, &g, &shadergan::train::Codes { z: z.to_vec(), ..Default::default() });
    assert_eq!(from_file, t.generate_with(z, &[]));
}

#[test]
fn relativistic_pairing_losses_match_their_formulas_and_train() {
    let gpu = gpu();
    let mut rng = rng("rpgan");
    let (real, fake) = (uniform(&mut rng, 13, -3.0, 3.0), uniform(&mut rng, 13, -3.0, 3.0));
    let (rt, ft) = (tensor(&gpu, &[13, 1], &real), tensor(&gpu, &[13, 1], &fake));
    let softplus = |t: f64| t.max(0.0) + (-t.abs()).exp().ln_1p();
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    let want_d = mean(real.iter().zip(&fake).map(|(r, f)| softplus(f - r)).collect());
    let want_g = mean(real.iter().zip(&fake).map(|(r, f)| softplus(r - f)).collect());
    assert_close("RpGAN D", &[discriminator_loss(GanLoss::Relativistic, &rt, &ft, 1.0).item()], &[want_d], 1e-5, 1e-6);
    let g = shadergan::train::losses::relativistic_generator_loss(&rt, &ft);
    assert_close("RpGAN G", &[g.item()], &[want_g], 1e-5, 1e-6);

    // R3GAN's baseline: RpGAN with R1 and R2, a few steps.
    let mut config = tiny_dcgan();
    (config.train.loss, config.model.d_norm) = (GanLoss::Relativistic, Norm::Layer);
    (config.train.r1_gamma, config.train.r2_gamma) = (0.1, 0.1);
    let data = run::load_dataset(&config).unwrap();
    let mut t = GanTrainer::new(&gpu, &config, data.len);
    for _ in 0..3 {
        let s = t.train_step(&data);
        assert!(s.d_loss.is_finite() && s.g_loss.is_finite() && s.d_loss > 0.0, "{s:?}");
    }
}

/// The largest singular value of `w` [rows, cols] by f64 power iteration on WᵀW.
fn largest_singular_value(w: &[f64], rows: usize, cols: usize) -> f64 {
    top_two_singular_values(w, rows, cols).0
}

/// The two largest singular values of W [rows, cols]: power iteration on WᵀW, then on WᵀW with
/// the first direction taken out.
fn top_two_singular_values(w: &[f64], rows: usize, cols: usize) -> (f64, f64) {
    let wtw = |v: &[f64]| -> Vec<f64> {
        let wv: Vec<f64> = (0..rows).map(|r| (0..cols).map(|c| w[r * cols + c] * v[c]).sum()).collect();
        (0..cols).map(|c| (0..rows).map(|r| w[r * cols + c] * wv[r]).sum()).collect()
    };
    let power = |deflate: Option<(&[f64], f64)>| {
        let mut v: Vec<f64> = (0..cols).map(|c| 1.0 + 0.1 * c as f64).collect();
        let mut eigenvalue = 0.0;
        for _ in 0..20000 {
            let mut next = wtw(&v);
            if let Some((top, lambda)) = deflate {
                let along: f64 = top.iter().zip(&v).map(|(a, b)| a * b).sum();
                next.iter_mut().zip(top).for_each(|(x, t)| *x -= lambda * along * t);
            }
            eigenvalue = next.iter().map(|x| x * x).sum::<f64>().sqrt();
            v = next.iter().map(|x| x / eigenvalue.max(1e-300)).collect();
        }
        (eigenvalue, v)
    };
    let (first, top) = power(None);
    let (second, _) = power(Some((&top, first)));
    (first.sqrt(), second.sqrt())
}

#[test]
fn spectral_norm_finds_the_largest_singular_value_and_its_gradient_matches_differences() {
    use rand::SeedableRng;
    use shadergan::nn::{Conv2d, SpectralNorm};
    let gpu = gpu();
    let mut rng = rng("spectral");
    for (cout, cin, k) in [(5, 3, 3), (4, 2, 1)] {
        let conv = Conv2d::new(&gpu, cin, cout, k);
        let w = uniform(&mut rng, cout * cin * k * k, -1.0, 1.0);
        conv.weight.assign(&f32s(&w));
        let sn = SpectralNorm::new(Layer::Conv2d(conv), &mut rand_chacha::ChaCha8Rng::seed_from_u64(1)).ok().unwrap();
        // One power iteration per training forward, as PyTorch's: its error shrinks by
        // (σ₂/σ₁)² each, so a random W whose top two singular values lie close needs more.
        let (want, second) = top_two_singular_values(&w, cout, cin * k * k);
        let steps = ((1e-7f64).ln() / (2.0 * (second / want).ln())).ceil().clamp(60.0, 5000.0) as usize;
        for _ in 0..steps {
            sn.normalized_weight(Mode::Train);
        }
        let what = format!("sigma of a {cout}x{cin}x{k}x{k} conv after {steps} steps (sigma_2 = {second:.4})");
        assert_close(&what, &[sn.sigma().item()], &[want], 1e-4, 1e-6);
        let normalized = f64s(&sn.normalized_weight(Mode::Eval).to_vec());
        let unit_sigma = largest_singular_value(&normalized, cout, cin * k * k);
        assert_close("sigma after normalising", &[unit_sigma as f32], &[1.0], 1e-3, 1e-6);
    }

    // d/dW of Σ r ⊙ (x Wᵀ / σ(W)), σ = uᵀ W v with u, v held (eval mode), against an f64 copy.
    let (n, i, o) = (3, 4, 2);
    let linear = shadergan::nn::Linear::new(&gpu, i, o).bias(false);
    let w = uniform(&mut rng, o * i, -1.0, 1.0);
    linear.weight.assign(&f32s(&w));
    let sn = SpectralNorm::new(Layer::Linear(linear), &mut rand_chacha::ChaCha8Rng::seed_from_u64(2)).ok().unwrap();
    sn.normalized_weight(Mode::Train);
    let (u, v) = (f64s(&sn.u.to_vec()), f64s(&sn.v.to_vec()));
    let (x, r) = (uniform(&mut rng, n * i, -1.0, 1.0), uniform(&mut rng, n * o, -1.0, 1.0));
    let loss = |w: &[f64]| {
        let sigma: f64 = (0..o).map(|a| u[a] * (0..i).map(|b| w[a * i + b] * v[b]).sum::<f64>()).sum();
        (0..n)
            .flat_map(|s| (0..o).map(move |a| (s, a)))
            .map(|(s, a)| r[s * o + a] * (0..i).map(|b| x[s * i + b] * w[a * i + b]).sum::<f64>() / sigma)
            .sum::<f64>()
    };
    let y = sn.forward(&tensor(&gpu, &[n, i], &x), Mode::Eval);
    let total = y.mul(&tensor(&gpu, &[n, o], &r)).sum_all();
    let weight = sn.named_tensors().remove(0).1;
    let got = grad(&total, &[&weight]).remove(0).to_vec();
    assert_close("d/dW through spectral norm", &got, &finite_diff(&w, loss, 1e-5), 1e-3, 1e-5);
}

#[test]
fn a_spectrally_normalised_critic_trains_and_resumes_with_its_vectors() {
    let gpu = gpu();
    let mut config = tiny_dcgan();
    (config.model.spectral_norm, config.model.d_norm, config.train.loss) = (true, Norm::None, GanLoss::Hinge);
    let data = run::load_dataset(&config).unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    Trainer::new(a.path(), 4).fit(&mut GanTrainer::new(&gpu, &config, data.len), &data).unwrap();
    Trainer::new(b.path(), 2).fit(&mut GanTrainer::new(&gpu, &config, data.len), &data).unwrap();
    Trainer::new(b.path(), 4).resume(true).fit(&mut GanTrainer::new(&gpu, &config, data.len), &data).unwrap();
    let (t, _) = shadergan::checkpoint::load(&b.path().join("model.safetensors")).unwrap();
    assert!(
        t.contains_key("discriminator.0.weight_orig") && t.contains_key("discriminator.0.weight_u"),
        "{:?}",
        t.keys()
    );
    let csv = |d: &std::path::Path| std::fs::read_to_string(d.join("metrics.csv")).unwrap();
    assert_eq!(csv(a.path()), csv(b.path()));
}

/// DiffAugment on the CPU in f64, image by image, from the same draws.
fn augment_reference(
    x: &[f64],
    [n, c, s]: [usize; 3],
    p: shadergan::train::augment::Policy,
    d: &shadergan::train::augment::Draws,
) -> Vec<f64> {
    let mut y = x.to_vec();
    let at = |i: usize, ch: usize, r: usize, col: usize| ((i * c + ch) * s + r) * s + col;
    for i in 0..n {
        if p.color {
            let [b, sat, con] = d.color[i].map(|v| v as f64);
            for ch in 0..c {
                for px in 0..s * s {
                    y[at(i, ch, 0, 0) + px] += b - 0.5;
                }
            }
            for px in 0..s * s {
                let m = (0..c).map(|ch| y[at(i, ch, 0, 0) + px]).sum::<f64>() / c as f64;
                (0..c).for_each(|ch| y[at(i, ch, 0, 0) + px] = (y[at(i, ch, 0, 0) + px] - m) * sat * 2.0 + m);
            }
            let m = (0..c * s * s).map(|k| y[at(i, 0, 0, 0) + k]).sum::<f64>() / (c * s * s) as f64;
            (0..c * s * s).for_each(|k| y[at(i, 0, 0, 0) + k] = (y[at(i, 0, 0, 0) + k] - m) * (con + 0.5) + m);
        }
        if p.translation {
            let (dy, dx) = d.shift[i];
            let before = y.clone();
            for ch in 0..c {
                for r in 0..s {
                    for col in 0..s {
                        let (sr, sc) = (r as i64 - dy, col as i64 - dx);
                        let inside = (0..s as i64).contains(&sr) && (0..s as i64).contains(&sc);
                        y[at(i, ch, r, col)] = if inside { before[at(i, ch, sr as usize, sc as usize)] } else { 0.0 };
                    }
                }
            }
        }
        if p.cutout {
            let (top, left) = d.cutout[i];
            for ch in 0..c {
                for r in 0..s {
                    for col in 0..s {
                        let (r, col) = (r as i64, col as i64);
                        if (top..top + s as i64 / 2).contains(&r) && (left..left + s as i64 / 2).contains(&col) {
                            y[at(i, ch, r as usize, col as usize)] = 0.0;
                        }
                    }
                }
            }
        }
    }
    y
}

#[test]
fn diffaugment_matches_its_reference_passes_gradients_and_trains() {
    use rand::SeedableRng;
    use shadergan::train::augment::{augment, Draws, Policy};
    let gpu = gpu();
    let mut rng = rng("diffaugment");
    for (n, c, s) in [(3, 3, 8), (2, 1, 12)] {
        let x = uniform(&mut rng, n * c * s * s, -1.0, 1.0);
        let draws = Draws::sample(&mut rand_chacha::ChaCha8Rng::seed_from_u64(n as u64), n, s);
        for words in ["color", "translation", "cutout", "color,translation,cutout"] {
            let p = Policy::parse(words).unwrap();
            let xt = tensor(&gpu, &[n, c, s, s], &x).requires_grad();
            let y = augment(&xt, p, &draws);
            let want = augment_reference(&x, [n, c, s], p, &draws);
            assert_close(&format!("{words} on {n}x{c}x{s}x{s}"), &y.to_vec(), &want, 1e-5, 1e-6);
            // d/dx of Σ r ⊙ augment(x) against finite differences of the reference.
            let r = uniform(&mut rng, y.numel(), -1.0, 1.0);
            let got = grad(&y.mul(&tensor(&gpu, y.shape(), &r)).sum_all(), &[&xt]).remove(0).to_vec();
            let loss =
                |x: &[f64]| augment_reference(x, [n, c, s], p, &draws).iter().zip(&r).map(|(a, b)| a * b).sum::<f64>();
            assert_close(&format!("d/dx {words}"), &got, &finite_diff(&x, loss, 1e-4), 1e-4, 1e-5);
        }
    }
    assert!(Policy::parse("color,flip").unwrap_err().contains("accepted: color, translation, cutout"));

    let mut config = tiny_dcgan();
    config.train.diffaugment = "color,translation,cutout".into();
    let data = run::load_dataset(&config).unwrap();
    let mut t = GanTrainer::new(&gpu, &config, data.len);
    let plain = GanTrainer::new(&gpu, &tiny_dcgan(), data.len).train_step(&data);
    let s = t.train_step(&data);
    assert!(s.d_loss.is_finite() && s.g_loss.is_finite(), "{s:?}");
    assert!((s.d_real - plain.d_real).abs() > 1e-6, "D saw the same real images with augmentation on");
}

#[test]
fn ada_moves_its_probability_by_its_rule_and_resumes() {
    use rand::SeedableRng;
    use shadergan::train::augment::{augment, Adaptive, Draws, Policy};
    let mut ada = Adaptive { p: 0.2, target: 0.6, speed_images: 1000.0, sign_sum: 0.0, count: 0.0 };
    ada.observe(70.0, 100.0); // r_t = 0.7 > 0.6: more augmentation
    ada.adjust(50);
    assert!((ada.p - 0.25).abs() < 1e-6, "{}", ada.p);
    ada.observe(10.0, 100.0); // r_t = 0.1: less
    ada.adjust(400);
    assert!(ada.p.abs() < 1e-6, "clamped at 0: {}", ada.p);

    // p = 0 changes no image; p = 1 is plain DiffAugment.
    let gpu = gpu();
    let x = tensor(&gpu, &[4, 3, 8, 8], &uniform(&mut rng("ada"), 4 * 3 * 64, -1.0, 1.0));
    let policy = Policy::parse("color,translation,cutout").unwrap();
    let draws = Draws::sample(&mut rand_chacha::ChaCha8Rng::seed_from_u64(5), 4, 8);
    let mut coin = rand_chacha::ChaCha8Rng::seed_from_u64(6);
    assert_close(
        "p = 0",
        &augment(&x, policy, &draws.clone().with_probability(0.0, &mut coin)).to_vec(),
        &f64s(&x.to_vec()),
        1e-6,
        1e-7,
    );
    let all = draws.clone().with_probability(1.0, &mut coin);
    assert_eq!(all, draws);

    let mut config = tiny_dcgan();
    (config.train.diffaugment, config.train.ada_target, config.train.ada_speed_images) =
        ("translation".into(), 0.05, 64.0);
    let data = run::load_dataset(&config).unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut straight = GanTrainer::new(&gpu, &config, data.len);
    Trainer::new(a.path(), 8).fit(&mut straight, &data).unwrap();
    Trainer::new(b.path(), 5).fit(&mut GanTrainer::new(&gpu, &config, data.len), &data).unwrap();
    let mut resumed = GanTrainer::new(&gpu, &config, data.len);
    Trainer::new(b.path(), 8).resume(true).fit(&mut resumed, &data).unwrap();
    eprintln!("ADA p after 8 steps: {}", straight.ada.as_ref().unwrap().p);
    assert_eq!(straight.ada, resumed.ada);
    let csv = |d: &std::path::Path| std::fs::read_to_string(d.join("metrics.csv")).unwrap();
    assert_eq!(csv(a.path()), csv(b.path()));
}
