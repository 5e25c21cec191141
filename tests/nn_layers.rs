//! Normalisation layers, losses and optimizers against the CPU reference and finite
//! differences; the exact second-order gradient of WGAN-GP's penalty.

mod common;
use common::*;
use rand::Rng;
use shadergan::nn::{loss, BatchNorm, InstanceNorm, LayerNorm, Mode, Module};
use shadergan::optim::{clip_weights, Adam, Optimizer, RmsProp, Sgd};
use shadergan::reference as cpu;
use shadergan::tensor::UnaryOp;
use shadergan::{grad, grad_with, GradOptions, Tensor};

#[test]
fn batch_norm_train_eval_and_running_statistics() {
    let gpu = gpu();
    let mut rng = rng("batch norm");
    // Serial statistics (scalar, then vec4 through texture copies), then the workgroup tree for
    // groups past the serial loops' budget, with and without planes of a multiple of 4. The
    // last case sits far from zero (mean ~100, std ~0.3), where a variance taken as
    // E[x^2] - E[x]^2 without a shift would be off by about 1% in f32.
    for (n, c, spatial, shape, (lo, hi)) in [
        (4usize, 3usize, 15usize, vec![4usize, 3, 3, 5], (-2.0, 3.0)),
        (7, 5, 1, vec![7, 5], (-2.0, 3.0)),
        (64, 8, 256, vec![64, 8, 16, 16], (-2.0, 3.0)),
        (128, 2, 1024, vec![128, 2, 32, 32], (-2.0, 3.0)),
        (64, 2, 99, vec![64, 2, 9, 11], (-2.0, 3.0)),
        (64, 8, 64, vec![64, 8, 8, 8], (99.5, 100.5)),
    ] {
        let x = f64s(&f32s(&uniform(&mut rng, n * c * spatial, lo, hi)));
        let gamma = f64s(&f32s(&uniform(&mut rng, c, 0.5, 1.5)));
        let beta = f64s(&f32s(&uniform(&mut rng, c, -0.5, 0.5)));
        let bn = BatchNorm::new(&gpu, c);
        bn.weight.assign(&f32s(&gamma));
        bn.bias.assign(&f32s(&beta));
        let xt = common::tensor(&gpu, &shape, &x);
        let y = bn.forward(&xt, Mode::Train);
        let (want, mean, unbiased) = cpu::batch_norm_train(&x, n, c, spatial, &gamma, &beta, 1e-5);
        assert_close(&format!("bn train {shape:?}"), &y.to_vec(), &want, 1e-4, 1e-4);
        // running = 0.9 * running + 0.1 * batch statistic (unbiased variance), from (0, 1).
        let want_mean: Vec<f64> = mean.iter().map(|m| 0.1 * m).collect();
        let want_var: Vec<f64> = unbiased.iter().map(|v| 0.9 + 0.1 * v).collect();
        assert_close("running mean", &bn.running_mean.to_vec(), &want_mean, 1e-4, 1e-5);
        assert_close("running var", &bn.running_var.to_vec(), &want_var, 1e-4, 1e-5);
        assert_eq!(bn.num_batches_tracked.to_vec(), vec![1.0]);
        // Eval normalises with the running statistics, elementwise per channel.
        let ye = bn.forward(&xt, Mode::Eval).to_vec();
        let want_eval: Vec<f64> = (0..x.len())
            .map(|i| {
                let ch = (i / spatial) % c;
                (x[i] - want_mean[ch]) / (want_var[ch] + 1e-5).sqrt() * gamma[ch] + beta[ch]
            })
            .collect();
        assert_close("bn eval", &ye, &want_eval, 1e-4, 1e-4);
        assert_eq!(bn.num_batches_tracked.to_vec(), vec![1.0], "eval must not touch running statistics");
    }
}

/// Batch norm's gradients at training sizes (each kernel path) against the analytic formula in
/// f64, for loss = sum(y^2): dx = gamma / std * (dy - mean(dy) - x_hat * mean(dy * x_hat)),
/// dgamma = sum(dy * x_hat), dbeta = sum(dy), with dy = 2y.
#[test]
fn batch_norm_gradients_at_training_sizes() {
    let gpu = gpu();
    let mut rng = rng("batch norm grads large");
    for (n, c, s) in [(16usize, 3usize, 12usize), (64, 8, 256), (128, 2, 1024), (64, 2, 99)] {
        let x = f64s(&f32s(&uniform(&mut rng, n * c * s, -1.0, 2.0)));
        let gamma = f64s(&f32s(&uniform(&mut rng, c, 0.5, 1.5)));
        let beta = f64s(&f32s(&uniform(&mut rng, c, -0.5, 0.5)));
        let bn = BatchNorm::new(&gpu, c);
        bn.weight.assign(&f32s(&gamma));
        bn.bias.assign(&f32s(&beta));
        let xt = common::tensor(&gpu, &[n, c, s], &x).requires_grad();
        let loss = bn.forward(&xt, Mode::Train).square().sum_all();
        let g = grad(&loss, &[&xt, &bn.weight, &bn.bias]);
        let (y, _, _) = cpu::batch_norm_train(&x, n, c, s, &gamma, &beta, 1e-5);
        let count = (n * s) as f64;
        let (mut dx, mut dgamma, mut dbeta) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
        for ch in 0..c {
            let idx: Vec<usize> = (0..n).flat_map(|b| (0..s).map(move |j| (b * c + ch) * s + j)).collect();
            let mean = idx.iter().map(|&i| x[i]).sum::<f64>() / count;
            let var = idx.iter().map(|&i| (x[i] - mean).powi(2)).sum::<f64>() / count;
            let inv_std = 1.0 / (var + 1e-5).sqrt();
            let x_hat = |i: usize| (x[i] - mean) * inv_std;
            dbeta[ch] = idx.iter().map(|&i| 2.0 * y[i]).sum::<f64>();
            dgamma[ch] = idx.iter().map(|&i| 2.0 * y[i] * x_hat(i)).sum::<f64>();
            for &i in &idx {
                dx[i] = gamma[ch] * inv_std * (2.0 * y[i] - dbeta[ch] / count - x_hat(i) * dgamma[ch] / count);
            }
        }
        let what = |name: &str| format!("bn {name} [{n}, {c}, {s}]");
        assert_close(&what("dx"), &g[0].to_vec(), &dx, 1e-3, 1e-4);
        assert_close(&what("dgamma"), &g[1].to_vec(), &dgamma, 1e-3, 1e-2);
        assert_close(&what("dbeta"), &g[2].to_vec(), &dbeta, 1e-3, 1e-2);
    }
}

#[test]
fn batch_norm_gradients() {
    let gpu = gpu();
    let mut rng = rng("batch norm grads");
    // Planes of 4 take the vec4 kernels, planes of 3 the scalar ones.
    for (n, c, s, shape) in [(3usize, 2usize, 4usize, [3usize, 2, 2, 2]), (2, 3, 3, [2, 3, 3, 1])] {
        let x = f64s(&f32s(&uniform(&mut rng, n * c * s, -1.0, 1.0)));
        let gamma = f64s(&f32s(&uniform(&mut rng, c, 0.5, 1.5)));
        let beta = f64s(&f32s(&uniform(&mut rng, c, -0.5, 0.5)));
        let bn = BatchNorm::new(&gpu, c);
        bn.weight.assign(&f32s(&gamma));
        bn.bias.assign(&f32s(&beta));
        let xt = common::tensor(&gpu, &shape, &x).requires_grad();
        let loss = bn.forward(&xt, Mode::Train).square().sum_all();
        let g = grad(&loss, &[&xt, &bn.weight, &bn.bias]);
        let f = |x: &[f64], gm: &[f64], bt: &[f64]| sum_sq(&cpu::batch_norm_train(x, n, c, s, gm, bt, 1e-5).0);
        let what = |name: &str| format!("bn {name} {shape:?}");
        assert_close(&what("dx"), &g[0].to_vec(), &finite_diff(&x, |v| f(v, &gamma, &beta), 1e-6), 2e-3, 2e-4);
        assert_close(&what("dgamma"), &g[1].to_vec(), &finite_diff(&gamma, |v| f(&x, v, &beta), 1e-6), 2e-3, 2e-4);
        assert_close(&what("dbeta"), &g[2].to_vec(), &finite_diff(&beta, |v| f(&x, &gamma, v), 1e-6), 2e-3, 2e-4);
    }
}

#[test]
fn layer_and_instance_norm_forward_and_gradients() {
    let gpu = gpu();
    let mut rng = rng("layer/instance norm");
    let shape = [3usize, 2, 3, 5];
    let x = f64s(&f32s(&uniform(&mut rng, 90, -2.0, 2.0)));
    let w = f64s(&f32s(&uniform(&mut rng, 30, 0.5, 1.5)));
    let b = f64s(&f32s(&uniform(&mut rng, 30, -0.5, 0.5)));
    let ln = LayerNorm::new(&gpu, &shape[1..]);
    ln.weight.assign(&f32s(&w));
    ln.bias.assign(&f32s(&b));
    let ln_ref = |x: &[f64], w: &[f64], b: &[f64]| -> Vec<f64> {
        cpu::normalize_groups(x, 30, 1e-5).iter().enumerate().map(|(i, v)| v * w[i % 30] + b[i % 30]).collect()
    };
    let xt = common::tensor(&gpu, &shape, &x).requires_grad();
    let y = ln.forward(&xt);
    assert_close("layer norm", &y.to_vec(), &ln_ref(&x, &w, &b), 1e-4, 1e-4);
    let g = grad(&y.square().sum_all(), &[&xt, &ln.weight, &ln.bias]);
    assert_close("ln dx", &g[0].to_vec(), &finite_diff(&x, |v| sum_sq(&ln_ref(v, &w, &b)), 1e-6), 2e-3, 2e-4);
    assert_close("ln dw", &g[1].to_vec(), &finite_diff(&w, |v| sum_sq(&ln_ref(&x, v, &b)), 1e-6), 2e-3, 2e-4);
    assert_close("ln db", &g[2].to_vec(), &finite_diff(&b, |v| sum_sq(&ln_ref(&x, &w, v)), 1e-6), 2e-3, 2e-4);

    let inn = InstanceNorm::new(&gpu, 2, true);
    let (iw, ib) = (vec![1.3, 0.7], vec![0.1, -0.2]);
    inn.affine.as_ref().unwrap().0.assign(&f32s(&iw));
    inn.affine.as_ref().unwrap().1.assign(&f32s(&ib));
    let in_ref = |x: &[f64]| -> Vec<f64> {
        cpu::normalize_groups(x, 15, 1e-5)
            .iter()
            .enumerate()
            .map(|(i, v)| v * iw[(i / 15) % 2] + ib[(i / 15) % 2])
            .collect()
    };
    let y = inn.forward(&xt);
    assert_close("instance norm", &y.to_vec(), &in_ref(&x), 1e-4, 1e-4);
    let g = grad(&y.square().sum_all(), &[&xt]);
    assert_close("in dx", &g[0].to_vec(), &finite_diff(&x, |v| sum_sq(&in_ref(v)), 1e-6), 2e-3, 2e-4);
}

#[test]
fn losses_match_formulas_and_gradients() {
    let gpu = gpu();
    let mut rng = rng("losses");
    let n = 13;
    let logits = f64s(&f32s(&[uniform(&mut rng, n - 3, -5.0, 5.0), vec![-80.0, 0.0, 90.0]].concat()));
    let target = f64s(&f32s(&uniform(&mut rng, n, 0.0, 1.0)));
    let bce = |x: &[f64]| x.iter().zip(&target).map(|(&x, &t)| (1.0 + x.exp()).ln() - x * t).sum::<f64>() / n as f64;
    let bce_stable = |x: &[f64]| {
        x.iter().zip(&target).map(|(&x, &t)| x.max(0.0) - x * t + (1.0 + (-x.abs()).exp()).ln()).sum::<f64>() / n as f64
    };
    let lt = common::tensor(&gpu, &[n, 1], &logits).requires_grad();
    let tt = common::tensor(&gpu, &[n, 1], &target);
    let l = loss::bce_with_logits(&lt, &tt);
    assert!(l.item().is_finite());
    assert_close("bce", &[l.item()], &[bce_stable(&logits)], 1e-5, 1e-6);
    let g = grad(&l, &[&lt]).remove(0);
    let small: Vec<f64> = logits[..n - 3].to_vec();
    let fd = finite_diff(
        &logits,
        |v| {
            if v.iter().any(|x| x.abs() > 50.0) {
                bce_stable(v)
            } else {
                bce(v)
            }
        },
        1e-6,
    );
    assert_close("bce grad", &g.to_vec(), &fd, 1e-3, 1e-6);
    let _ = small;

    let x = f64s(&f32s(&uniform(&mut rng, n, -2.0, 2.0)));
    let xt = common::tensor(&gpu, &[n], &x).requires_grad();
    let tt = common::tensor(&gpu, &[n], &target);
    let mse = |v: &[f64]| v.iter().zip(&target).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / n as f64;
    let l1 = |v: &[f64]| v.iter().zip(&target).map(|(a, b)| (a - b).abs()).sum::<f64>() / n as f64;
    for (name, got, f) in
        [("mse", loss::mse(&xt, &tt), &mse as &dyn Fn(&[f64]) -> f64), ("l1", loss::l1(&xt, &tt), &l1)]
    {
        assert_close(name, &[got.item()], &[f(&x)], 1e-5, 1e-6);
        let g = grad(&got, &[&xt]).remove(0);
        assert_close(&format!("{name} grad"), &g.to_vec(), &finite_diff(&x, f, 1e-6), 1e-3, 1e-5);
    }
    let w = loss::wasserstein_mean(&xt);
    assert_close("wasserstein mean", &[w.item()], &[x.iter().sum::<f64>() / n as f64], 1e-5, 1e-6);

    let (rows, k) = (5usize, 4usize);
    let z = f64s(&f32s(&uniform(&mut rng, rows * k, -30.0, 30.0)));
    let labels: Vec<usize> = (0..rows).map(|_| rng.random_range(0..k)).collect();
    let onehot: Vec<f64> = (0..rows * k).map(|i| (labels[i / k] == i % k) as u8 as f64).collect();
    let ce = |v: &[f64]| -> f64 {
        (0..rows)
            .map(|r| {
                let row = &v[r * k..(r + 1) * k];
                let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = row.iter().map(|x| (x - m).exp()).sum::<f64>().ln() + m;
                lse - row[labels[r]]
            })
            .sum::<f64>()
            / rows as f64
    };
    let zt = common::tensor(&gpu, &[rows, k], &z).requires_grad();
    let l = loss::softmax_cross_entropy(&zt, &common::tensor(&gpu, &[rows, k], &onehot));
    assert_close("softmax ce", &[l.item()], &[ce(&z)], 1e-5, 1e-5);
    let g = grad(&l, &[&zt]).remove(0);
    assert_close("softmax ce grad", &g.to_vec(), &finite_diff(&z, ce, 1e-6), 1e-3, 1e-5);
}

#[test]
fn adam_sgd_rmsprop_and_clipping_match_reference() {
    let gpu = gpu();
    let mut rng = rng("optimizers");
    let n = 37;
    let p0 = f64s(&f32s(&uniform(&mut rng, n, -1.0, 1.0)));
    let grads: Vec<Vec<f64>> = (0..5).map(|_| f64s(&f32s(&uniform(&mut rng, n, -1.0, 1.0)))).collect();

    // 37 values take the scalar kernel; 8192 (with texture copies) four values per invocation.
    for len in [n, 8192] {
        let p0 = f64s(&f32s(&uniform(&mut rng, len, -1.0, 1.0)));
        let grads: Vec<Vec<f64>> = (0..5).map(|_| f64s(&f32s(&uniform(&mut rng, len, -1.0, 1.0)))).collect();
        let p = common::tensor(&gpu, &[len], &p0);
        let mut adam = Adam::new(2e-4, 0.5, 0.999);
        adam.weight_decay = 0.01;
        let (mut pr, mut m, mut v) = (p0.clone(), vec![0.0; len], vec![0.0; len]);
        for (t, g) in grads.iter().enumerate() {
            adam.step(std::slice::from_ref(&p), &[common::tensor(&gpu, &[len], g)]);
            cpu::adam_step(&mut pr, g, &mut m, &mut v, t as u32 + 1, 2e-4, 0.5, 0.999, 1e-8, 0.01);
        }
        assert_close(&format!("adam ({len} values)"), &p.to_vec(), &pr, 1e-6, 1e-7);
        let state = adam.state();
        assert_eq!(state.step, 5);
        assert_close(&format!("adam m ({len} values)"), &state.tensors[0].1, &m, 1e-5, 1e-7);
        assert_close(&format!("adam v ({len} values)"), &state.tensors[1].1, &v, 1e-4, 1e-9);
    }

    let p = common::tensor(&gpu, &[n], &p0);
    let mut sgd = Sgd::new(0.1, 0.9);
    let (mut pr, mut buf) = (p0.clone(), vec![0.0; n]);
    for g in &grads {
        sgd.step(std::slice::from_ref(&p), &[common::tensor(&gpu, &[n], g)]);
        for i in 0..n {
            buf[i] = 0.9 * buf[i] + g[i];
            pr[i] -= 0.1 * buf[i];
        }
    }
    assert_close("sgd", &p.to_vec(), &pr, 1e-5, 1e-6);

    let p = common::tensor(&gpu, &[n], &p0);
    let mut rms = RmsProp::new(5e-3);
    let (mut pr, mut sq) = (p0.clone(), vec![0.0; n]);
    for g in &grads {
        rms.step(std::slice::from_ref(&p), &[common::tensor(&gpu, &[n], g)]);
        for i in 0..n {
            sq[i] = 0.99 * sq[i] + 0.01 * g[i] * g[i];
            pr[i] -= 5e-3 * g[i] / (sq[i].sqrt() + 1e-8);
        }
    }
    assert_close("rmsprop", &p.to_vec(), &pr, 1e-5, 1e-6);

    let before = f64s(&f32s(&uniform(&mut rng, n, -0.02, 0.02)));
    let p = common::tensor(&gpu, &[n], &before);
    clip_weights(std::slice::from_ref(&p), 0.01);
    let want: Vec<f64> = before.iter().map(|v| v.clamp(-0.01, 0.01)).collect();
    assert_close("clip", &p.to_vec(), &want, 0.0, 1e-9);
}

/// A tiny WGAN-GP critic: conv(1->2, k3, s2, p1) -> leaky ReLU(0.2) -> layer norm -> linear.
struct Critic {
    params: Vec<Vec<f64>>,
}

const CRITIC_SHAPES: [&[usize]; 6] = [&[2, 1, 3, 3], &[2], &[2, 2, 2], &[2, 2, 2], &[1, 8], &[1]];

impl Critic {
    fn scores(&self, x: &[f64], batch: usize) -> Vec<f64> {
        let p = &self.params;
        let y = cpu::conv2d(x, [batch, 1, 4, 4], &p[0], [2, 1, 3, 3], 2, 1);
        let y: Vec<f64> = y.iter().enumerate().map(|(i, v)| v + p[1][(i / 4) % 2]).collect();
        let y = cpu::unary(UnaryOp::LeakyRelu, 0.2, 0.0, &y);
        let y: Vec<f64> =
            cpu::normalize_groups(&y, 8, 1e-5).iter().enumerate().map(|(i, v)| v * p[2][i % 8] + p[3][i % 8]).collect();
        (0..batch).map(|b| (0..8).map(|j| y[b * 8 + j] * p[4][j]).sum::<f64>() + p[5][0]).collect()
    }

    /// mean_b (||dC_b/dx_b|| - 1)^2 with the input gradient by central differences.
    fn penalty(&self, x: &[f64], batch: usize) -> f64 {
        let gx = finite_diff(x, |v| self.scores(v, batch).iter().sum(), 1e-5);
        (0..batch)
            .map(|b| (gx[b * 16..(b + 1) * 16].iter().map(|g| g * g).sum::<f64>().sqrt() - 1.0).powi(2))
            .sum::<f64>()
            / batch as f64
    }
}

#[test]
fn gradient_penalty_second_order_is_exact() {
    use shadergan::train::losses::gradient_penalty;
    let gpu = gpu();
    let mut rng = rng("gradient penalty");
    let batch = 2;
    let params: Vec<Vec<f64>> =
        CRITIC_SHAPES.iter().map(|s| f64s(&f32s(&uniform(&mut rng, s.iter().product(), -0.8, 0.8)))).collect();
    let real = f64s(&f32s(&uniform(&mut rng, batch * 16, -1.0, 1.0)));
    let fake = f64s(&f32s(&uniform(&mut rng, batch * 16, -1.0, 1.0)));
    let eps = f32s(&uniform(&mut rng, batch, 0.0, 1.0));
    // The interpolates x_hat = eps * real + (1 - eps) * fake, as the GPU forms them in f32.
    let x_hat: Vec<f64> = (0..batch * 16)
        .map(|i| {
            let e = eps[i / 16];
            (real[i] as f32 * e + fake[i] as f32 * (1.0 - e)) as f64
        })
        .collect();

    let leaves: Vec<Tensor> =
        CRITIC_SHAPES.iter().zip(&params).map(|(s, v)| common::tensor(&gpu, s, v).requires_grad()).collect();
    let critic_gpu = |x: &Tensor| {
        let h = x.conv2d(&leaves[0], 2, 1).add(&leaves[1].reshape(&[1, 2, 1, 1])).leaky_relu(0.2);
        let mean = h.mean(&[1, 2, 3], true);
        let centered = h.sub(&mean);
        let var = centered.square().mean(&[1, 2, 3], true);
        let h = centered.mul(&var.add_scalar(1e-5).powf(-0.5)).mul(&leaves[2]).add(&leaves[3]);
        h.reshape(&[batch, 8]).matmul_t(&leaves[4], false, true).add(&leaves[5])
    };
    let shape = [batch, 1, 4, 4];
    let penalty =
        gradient_penalty(critic_gpu, &common::tensor(&gpu, &shape, &real), &common::tensor(&gpu, &shape, &fake), &eps);
    let critic = Critic { params: params.clone() };
    assert_close("penalty value", &[penalty.item()], &[critic.penalty(&x_hat, batch)], 2e-3, 1e-5);

    let refs: Vec<&Tensor> = leaves.iter().collect();
    let grads = grad(&penalty, &refs);
    for (i, g) in grads.iter().enumerate() {
        let fd = finite_diff(
            &params[i],
            |v| {
                let mut p = params.clone();
                p[i] = v.to_vec();
                Critic { params: p }.penalty(&x_hat, batch)
            },
            1e-4,
        );
        assert_close(&format!("d penalty / d critic param {i}"), &g.to_vec(), &fd, 3e-3, 3e-4);
    }
    // The penalty depends on the critic's weights through the input gradient: a zero result here
    // would mean the second-order path was cut.
    assert!(grads[0].to_vec().iter().any(|v| v.abs() > 1e-4));
}

#[test]
fn one_hot_and_embedding_pick_rows_and_route_gradients() {
    use rand::SeedableRng;
    use shadergan::nn::{one_hot, Embedding};
    let gpu = gpu();
    let labels = [2u32, 0, 2, 4];
    let oh = one_hot(&gpu, &labels, 5).to_vec();
    assert_eq!(oh.len(), 20);
    for (i, &l) in labels.iter().enumerate() {
        for c in 0..5 {
            assert_eq!(oh[i * 5 + c], if c == l as usize { 1.0 } else { 0.0 });
        }
    }
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let emb = Embedding::new(&gpu, 5, 3, &mut r);
    let table = emb.weight.to_vec();
    let out = emb.forward(&labels);
    assert_eq!(out.shape(), &[4, 3]);
    let got = out.to_vec();
    for (i, &l) in labels.iter().enumerate() {
        assert_eq!(&got[i * 3..i * 3 + 3], &table[l as usize * 3..l as usize * 3 + 3]);
    }
    // d/dW sum(out^2) = 2 * (number of uses of the row) * row; unused rows get zero.
    let g = grad(&out.square().sum_all(), &[&emb.weight]).remove(0).to_vec();
    let uses = [1.0, 0.0, 2.0, 0.0, 1.0];
    let want: Vec<f64> = (0..15).map(|i| 2.0 * uses[i / 3] * table[i] as f64).collect();
    assert_close("embedding grad", &g, &want, 1e-5, 1e-6);
}

#[test]
fn conv_layers_with_bias_match_reference_gradients() {
    use rand::SeedableRng;
    use shadergan::nn::{Conv2d, ConvTranspose2d, Init};
    let gpu = gpu();
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut rng = rng("conv bias");
    let conv = Conv2d::new(&gpu, 2, 3, 4).stride(2).padding(1).init_with(Init::PyTorchDefault, &mut r);
    let convt = ConvTranspose2d::new(&gpu, 2, 3, 4).stride(2).padding(1).init_with(Init::PyTorchDefault, &mut r);
    let xs = [2usize, 2, 6, 6];
    let x = f64s(&f32s(&uniform(&mut rng, 144, -1.0, 1.0)));
    let xt = common::tensor(&gpu, &xs, &x).requires_grad();
    for (name, y, w, b, is_t) in [
        ("conv2d", conv.forward(&xt), &conv.weight, conv.bias.as_ref().unwrap(), false),
        ("conv_transpose2d", convt.forward(&xt), &convt.weight, convt.bias.as_ref().unwrap(), true),
    ] {
        let (wv, bv) = (f64s(&w.to_vec()), f64s(&b.to_vec()));
        let ws: [usize; 4] = w.shape().try_into().unwrap();
        let out_shape = y.shape().to_vec();
        let spatial = out_shape[2] * out_shape[3];
        let f = |x: &[f64], w: &[f64], b: &[f64]| -> Vec<f64> {
            let y = if is_t {
                cpu::conv_transpose2d(x, xs, w, ws, 2, 1, out_shape[2], out_shape[3])
            } else {
                cpu::conv2d(x, xs, w, ws, 2, 1)
            };
            y.iter().enumerate().map(|(i, v)| v + b[(i / spatial) % 3]).collect()
        };
        assert_close(&format!("{name} forward"), &y.to_vec(), &f(&x, &wv, &bv), 1e-4, 1e-5);
        let g = grad(&y.square().sum_all(), &[&xt, w, b]);
        assert_close(
            &format!("{name} dx"),
            &g[0].to_vec(),
            &finite_diff(&x, |v| sum_sq(&f(v, &wv, &bv)), 1e-6),
            2e-3,
            2e-4,
        );
        assert_close(
            &format!("{name} dw"),
            &g[1].to_vec(),
            &finite_diff(&wv, |v| sum_sq(&f(&x, v, &bv)), 1e-6),
            2e-3,
            2e-4,
        );
        assert_close(
            &format!("{name} dbias"),
            &g[2].to_vec(),
            &finite_diff(&bv, |v| sum_sq(&f(&x, &wv, v)), 1e-6),
            2e-3,
            2e-4,
        );
    }
}

#[test]
fn batch_norm_with_a_fused_activation_matches_the_separate_layers() {
    // Sequential runs batch norm + (leaky) ReLU as one fused layer in training mode; values and
    // first- and second-order-capable gradients must match the two layers applied apart.
    use shadergan::nn::{Layer, Sequential};
    let gpu = gpu();
    let mut rng = rng("fused bn activation");
    // Planes of 64 (vec4 runs), 6 (scalar, one invocation per channel), 1 value, and 2295
    // (statistics by a workgroup per channel): every pair of statistics and apply kernels,
    // with ReLU and leaky ReLU (whose backward recomputes the activation's mask).
    for (shape, leaky) in [
        ([4usize, 3, 8, 8], Some(0.2)),
        ([3, 5, 2, 3], Some(0.1)),
        ([3, 5, 2, 3], None),
        ([6, 4, 1, 1], None),
        ([2, 2, 45, 51], Some(0.3)),
    ] {
        let act = || leaky.map_or(Layer::Relu, Layer::LeakyRelu);
        let c = shape[1];
        let n: usize = shape.iter().product();
        let x0 = f64s(&f32s(&uniform(&mut rng, n, -2.0, 2.0)));
        let seed = f64s(&f32s(&uniform(&mut rng, n, -1.0, 1.0)));
        let what = format!("{shape:?} leaky slope {leaky:?}");
        let layers = |gpu: &shadergan::Gpu| {
            let bn = BatchNorm::new(gpu, c);
            bn.weight.assign(&f32s(&(0..c).map(|i| 0.5 + 0.25 * i as f64).collect::<Vec<_>>()));
            bn.bias.assign(&f32s(&(0..c).map(|i| 0.1 * i as f64 - 0.2).collect::<Vec<_>>()));
            bn
        };
        let fused_net = Sequential::new(vec![Layer::BatchNorm(layers(&gpu)), act()]);
        let apart_bn = layers(&gpu);
        for create_graph in [false, true] {
            let x = common::tensor(&gpu, &shape, &x0).requires_grad();
            let fused = fused_net.forward(&x, Mode::Train);
            let apart = act().forward(&apart_bn.forward(&x, Mode::Train), Mode::Train);
            assert_close(&format!("{what} forward"), &fused.to_vec(), &f64s(&apart.to_vec()), 1e-5, 1e-6);
            // forward_all fuses too, reporting the activated output in both layers' slots.
            let all = fused_net.forward_all(&x, Mode::Train);
            assert_eq!(all.len(), 2, "{what}");
            for out in &all {
                assert_close(&format!("{what} forward_all"), &out.to_vec(), &f64s(&apart.to_vec()), 1e-5, 1e-6);
            }
            let s = common::tensor(&gpu, &shape, &seed);
            let Layer::BatchNorm(bn) = &fused_net.layers[0] else { unreachable!() };
            let gf = grad_with(&fused, &[&x, &bn.weight, &bn.bias], options(&s, create_graph));
            let ga = grad_with(&apart, &[&x, &apart_bn.weight, &apart_bn.bias], options(&s, create_graph));
            for (name, (f, a)) in ["dx", "dgamma", "dbeta"].iter().zip(gf.iter().zip(&ga)) {
                let label = format!("{what} {name} create_graph={create_graph}");
                assert_close(&label, &f.to_vec(), &f64s(&a.to_vec()), 1e-4, 1e-5);
            }
        }
    }
    // The fused forward (and forward_all) runs no elementwise pass for the activation (a
    // private device, so no other test's dispatches join the profile).
    let own = shadergan::Gpu::new(&shadergan::GpuOptions::from_env()).expect("a second device");
    let net = Sequential::new(vec![Layer::BatchNorm(BatchNorm::new(&own, 3)), Layer::LeakyRelu(0.2)]);
    let x = Tensor::from_vec(&own, &[4, 3, 8, 8], &f32s(&uniform(&mut rng, 4 * 3 * 64, -1.0, 1.0)));
    own.profile_start();
    let y = net.forward(&x, Mode::Train).to_vec();
    let y_all = net.forward_all(&x, Mode::Train).pop().unwrap().to_vec();
    let used: Vec<String> = own.profile_report().into_iter().map(|r| r.0).collect();
    assert!(y_all.iter().all(|v| v.is_finite()));
    assert!(y.iter().all(|v| v.is_finite()));
    assert!(used.iter().any(|k| k.starts_with("batchnorm.wgsl::forward")), "{used:?}");
    // (OP=8 is the leaky ReLU; the counter of batches tracked still takes an affine pass.)
    let leaky = |k: &String| k.starts_with("unary.wgsl") && k.contains(" OP=8");
    assert!(!used.iter().any(leaky), "the activation ran apart: {used:?}");
}

#[test]
fn convolution_with_a_fused_activation_matches_the_separate_layers() {
    // Sequential runs a convolution followed by a (leaky) ReLU as one product whose stores add
    // the bias and apply the activation (where the implicit convolution serves the shape: 4x4,
    // stride 2); values and gradients (first order, and with create_graph) must match the
    // layers applied apart. A 3x3 convolution takes the ops apart inside the same call.
    use rand::SeedableRng;
    use shadergan::nn::{Conv2d, Init, Layer, Sequential};
    let gpu = shadergan::Gpu::new(&shadergan::GpuOptions::from_env()).expect("a second device");
    let mut rng = rng("fused conv activation");
    for (xs, c_out, k, bias, slope) in [
        ([2usize, 3, 16, 16], 8usize, 4usize, true, 0.2f32),
        ([3, 4, 8, 8], 70, 4, false, 0.0),
        ([2, 3, 8, 8], 6, 3, true, 0.2),
    ] {
        let what = format!("{xs:?} c_out {c_out} k{k} bias {bias} slope {slope}");
        let mut init_rng = rand::rngs::StdRng::seed_from_u64(5);
        let conv = Conv2d::new(&gpu, xs[1], c_out, k)
            .stride(2)
            .padding(1)
            .bias(bias)
            .init_with(Init::Normal(0.3), &mut init_rng);
        let act = if slope == 0.0 { Layer::Relu } else { Layer::LeakyRelu(slope) };
        let (weight, b) = (conv.weight.clone(), conv.bias.clone());
        let fused_net = Sequential::new(vec![Layer::Conv2d(conv), act]);
        let x0 = f64s(&f32s(&uniform(&mut rng, xs.iter().product(), -1.0, 1.0)));
        let x = common::tensor(&gpu, &xs, &x0).requires_grad();
        let (fused, used) = profiled(&gpu, || fused_net.forward(&x, Mode::Train));
        let apart = {
            let y = x.conv2d(&weight, 2, 1);
            let y = b.as_ref().map_or(y.clone(), |b| y.add(&b.reshape(&[1, c_out, 1, 1])));
            y.leaky_relu(slope)
        };
        assert_close(&format!("{what} forward"), &fused.to_vec(), &f64s(&apart.to_vec()), 1e-5, 1e-5);
        if gpu.implicit_convs() && k == 4 {
            assert!(used.iter().any(|key| key.contains("ACTIVATE=1")), "{what}: {used:?}");
            assert!(
                !used.iter().any(|key| key.starts_with("unary.wgsl") || key.starts_with("binary.wgsl")),
                "{what}: {used:?}"
            );
        }
        let all = fused_net.forward_all(&x, Mode::Train);
        assert_close(&format!("{what} forward_all"), &all[0].to_vec(), &f64s(&apart.to_vec()), 1e-5, 1e-5);
        let ys = fused.shape().to_vec();
        let seed = common::tensor(&gpu, &ys, &f64s(&f32s(&uniform(&mut rng, ys.iter().product(), -1.0, 1.0))));
        let mut wrt = vec![&x, &weight];
        wrt.extend(b.as_ref());
        for create_graph in [false, true] {
            let gf = grad_with(&fused, &wrt, options(&seed, create_graph));
            let ga = grad_with(&apart, &wrt, options(&seed, create_graph));
            for (i, (f, a)) in gf.iter().zip(&ga).enumerate() {
                let label = format!("{what} d/d input {i} create_graph={create_graph}");
                assert_close(&label, &f.to_vec(), &f64s(&a.to_vec()), 1e-4, 1e-5);
            }
        }
    }
}

/// A backward pass seeded with `seed`, recording its graph when `create_graph`.
fn options(seed: &Tensor, create_graph: bool) -> GradOptions<'_> {
    let seeded = GradOptions::default().seed(seed);
    if create_graph {
        seeded.create_graph()
    } else {
        seeded
    }
}
