//! Every op's gradient against f64 finite differences of the CPU reference, with the
//! non-trivial upstream gradient of loss = sum(y^2); and second-order gradients (the gradient of
//! a gradient) against nested finite differences.

mod common;
use common::*;
use shadergan::gpu::wgsl_enum::WgslEnum;
use shadergan::reference as cpu;
use shadergan::tensor::kernels::LossKind;
use shadergan::tensor::{BinaryOp, UnaryOp};
use shadergan::{grad, grad_with, GradOptions, Tensor};

const H: f64 = 1e-6;

/// Checks d/dx_i sum(f(x)^2) for every input i.
fn check_first_order(
    what: &str,
    inputs: &[(Vec<usize>, Vec<f64>)],
    gpu_f: impl Fn(&[Tensor]) -> Tensor,
    cpu_f: impl Fn(&[Vec<f64>]) -> Vec<f64>,
    rtol: f64,
    atol: f64,
) {
    let gpu = gpu();
    let values: Vec<Vec<f64>> = inputs.iter().map(|(_, v)| f64s(&f32s(v))).collect();
    let leaves: Vec<Tensor> =
        inputs.iter().zip(&values).map(|((s, _), v)| common::tensor(&gpu, s, v).requires_grad()).collect();
    let loss = gpu_f(&leaves).square().sum_all();
    let refs: Vec<&Tensor> = leaves.iter().collect();
    let grads = grad(&loss, &refs);
    for (i, g) in grads.iter().enumerate() {
        let fd = finite_diff(
            &values[i],
            |xi| {
                let mut all = values.clone();
                all[i] = xi.to_vec();
                sum_sq(&cpu_f(&all))
            },
            H,
        );
        assert_close(&format!("{what}: d/d input {i}"), &g.to_vec(), &fd, rtol, atol);
    }
}

/// Checks the gradient of s(x) = sum((d sum(f(x)^2) / dx)^2), which differentiates through the
/// first backward pass (create_graph), against nested finite differences.
fn check_second_order(
    what: &str,
    shape: &[usize],
    x: &[f64],
    gpu_f: impl Fn(&Tensor) -> Tensor,
    cpu_f: impl Fn(&[f64]) -> Vec<f64>,
) {
    let gpu = gpu();
    let x = f64s(&f32s(x));
    let leaf = common::tensor(&gpu, shape, &x).requires_grad();
    let loss = gpu_f(&leaf).square().sum_all();
    let g = grad_with(&loss, &[&leaf], GradOptions::default().create_graph()).remove(0);
    let s = g.square().sum_all();
    let gg = grad(&s, &[&leaf]).remove(0);
    let h = 1e-4;
    let fd = finite_diff(&x, |xo| sum_sq(&finite_diff(xo, |xi| sum_sq(&cpu_f(xi)), h)), h);
    assert_close(&format!("{what}: second order"), &gg.to_vec(), &fd, 2e-3, 2e-3);
}

/// Values within 0.05 of a kink (where a piecewise op's derivative jumps) moved 0.1 past it,
/// so finite differences never straddle one.
fn away_from_kinks(v: Vec<f64>, kinks: &[f64]) -> Vec<f64> {
    v.into_iter().map(|x| if kinks.iter().any(|k| (x - k).abs() < 0.05) { x + 0.1 } else { x }).collect()
}

#[test]
fn unary_gradients() {
    let mut rng = rng("unary grads");
    let shape = vec![3usize, 5];
    for op in UnaryOp::ALL.iter().copied().filter(|op| op.has_gradient()) {
        let (a, b, lo, hi) = cpu::unary_test_case(op);
        let x = away_from_kinks(uniform(&mut rng, 15, lo, hi), &[0.0, a, b]);
        check_first_order(
            &format!("{op:?}"),
            &[(shape.clone(), x)],
            |t| t[0].unary_for_tests(op, a as f32, b as f32),
            |v| cpu::unary(op, a, b, &v[0]),
            1e-3,
            1e-4,
        );
    }
}

#[test]
fn unary_second_order() {
    let mut rng = rng("unary second order");
    for op in UnaryOp::ALL.iter().copied().filter(|op| op.has_gradient()) {
        let (a, b, lo, hi) = cpu::unary_test_case(op);
        let x = away_from_kinks(uniform(&mut rng, 6, lo, hi), &[0.0, a, b]);
        check_second_order(
            &format!("{op:?}"),
            &[2, 3],
            &x,
            |t| t.unary_for_tests(op, a as f32, b as f32),
            |v| cpu::unary(op, a, b, v),
        );
    }
}

#[test]
fn binary_broadcast_gradients() {
    let mut rng = rng("binary grads");
    let cases: [(Vec<usize>, Vec<usize>); 3] =
        [(vec![3, 4], vec![3, 4]), (vec![2, 3, 4], vec![3, 1]), (vec![1, 4], vec![3, 1])];
    for (sa, sb) in cases {
        for op in BinaryOp::ALL.iter().copied().filter(|op| op.has_gradient()) {
            let a = uniform(&mut rng, sa.iter().product(), -2.0, 2.0);
            let b = uniform(&mut rng, sb.iter().product(), 0.5, 2.0);
            let out_shape = shadergan::tensor::broadcast_shape(&sa, &sb).unwrap();
            let (sa2, sb2) = (sa.clone(), sb.clone());
            check_first_order(
                &format!("{op:?} {sa:?} {sb:?}"),
                &[(sa.clone(), a), (sb.clone(), b)],
                |t| t[0].binary_for_tests(op, &t[1]),
                |v| cpu::binary(op, &v[0], &sa2, &v[1], &sb2, &out_shape),
                1e-3,
                1e-4,
            );
        }
    }
}

#[test]
fn reduction_and_movement_gradients() {
    let mut rng = rng("movement grads");
    let shape = vec![2usize, 3, 4, 5];
    let x = uniform(&mut rng, 120, -1.0, 1.0);
    let s = shape.clone();
    check_first_order(
        "sum over (0,2)",
        &[(shape.clone(), x.clone())],
        |t| t[0].sum(&[0, 2], false),
        |v| cpu::reduce(&v[0], &s, &[0, 2], false),
        1e-3,
        1e-4,
    );
    check_first_order(
        "mean over last",
        &[(shape.clone(), x.clone())],
        |t| t[0].mean(&[-1], true),
        |v| cpu::reduce(&v[0], &s, &[3], false).iter().map(|x| x / 5.0).collect(),
        1e-3,
        1e-4,
    );
    check_first_order(
        "permute",
        &[(shape.clone(), x.clone())],
        |t| t[0].permute(&[2, 0, 3, 1]).mul(&t[0].permute(&[2, 0, 3, 1])),
        |v| cpu::permute(&v[0], &s, &[2, 0, 3, 1]).iter().map(|x| x * x).collect(),
        1e-3,
        1e-4,
    );
    let pads = [(1, 0), (0, 2), (1, 1), (2, 0)];
    check_first_order(
        "pad",
        &[(shape.clone(), x.clone())],
        |t| t[0].pad(&pads).exp(),
        |v| cpu::pad(&v[0], &s, &pads).iter().map(|x| x.exp()).collect(),
        1e-3,
        1e-4,
    );
    check_first_order(
        "narrow",
        &[(shape.clone(), x.clone())],
        |t| t[0].narrow(3, 1, 3).tanh(),
        |v| cpu::unary(UnaryOp::Tanh, 0.0, 0.0, &(0..72).map(|i| v[0][(i / 3) * 5 + 1 + i % 3]).collect::<Vec<_>>()),
        1e-3,
        1e-4,
    );
    check_first_order(
        "reflect pad",
        &[(shape.clone(), x.clone())],
        |t| t[0].reflect_pad2d(2, 1, 3, 2).sigmoid(),
        |v| cpu::unary(UnaryOp::Sigmoid, 0.0, 0.0, &cpu::reflect_pad2d(&v[0], &s, 2, 1, 3, 2)),
        1e-3,
        1e-4,
    );
    let small = vec![1usize, 3, 1, 2];
    let y = uniform(&mut rng, 6, -1.0, 1.0);
    check_first_order(
        "expand",
        &[(small.clone(), y)],
        |t| t[0].expand(&[2, 3, 4, 2]).exp(),
        |v| (0..48).map(|i| v[0][((i / 8) % 3) * 2 + i % 2].exp()).collect(),
        1e-3,
        1e-4,
    );
    check_second_order(
        "reflect pad",
        &[1, 1, 3, 3],
        &uniform(&mut rng, 9, -1.0, 1.0),
        |t| t.reflect_pad2d(1, 2, 2, 1).tanh(),
        |v| cpu::unary(UnaryOp::Tanh, 0.0, 0.0, &cpu::reflect_pad2d(v, &[1, 1, 3, 3], 1, 2, 2, 1)),
    );
}

#[test]
fn matmul_gradients_all_transposes() {
    let mut rng = rng("matmul grads");
    let (m, k, n) = (3usize, 4usize, 5usize);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let sa = if ta { vec![k, m] } else { vec![m, k] };
        let sb = if tb { vec![n, k] } else { vec![k, n] };
        let a = uniform(&mut rng, m * k, -1.0, 1.0);
        let b = uniform(&mut rng, k * n, -1.0, 1.0);
        check_first_order(
            &format!("matmul t({ta},{tb})"),
            &[(sa, a), (sb, b.clone())],
            |t| t[0].matmul_t(&t[1], ta, tb),
            |v| cpu::matmul(&v[0], &v[1], 1, m, k, n, ta, tb),
            1e-3,
            1e-4,
        );
        let b_shape = if tb { vec![n, k] } else { vec![k, n] };
        let a_shape = if ta { vec![k, m] } else { vec![m, k] };
        let bt = common::tensor(&gpu(), &b_shape, &b);
        let bv = f64s(&f32s(&b));
        let a2 = uniform(&mut rng, m * k, -1.0, 1.0);
        check_second_order(
            &format!("matmul t({ta},{tb})"),
            &a_shape,
            &a2,
            |t| t.matmul_t(&bt, ta, tb).tanh(),
            |v| cpu::unary(UnaryOp::Tanh, 0.0, 0.0, &cpu::matmul(v, &bv, 1, m, k, n, ta, tb)),
        );
    }
}

#[test]
fn convolution_gradients() {
    let mut rng = rng("conv grads");
    for (xs, co, k, stride, pad) in
        [([2usize, 2, 5, 5], 3usize, 3usize, 1usize, 1usize), ([1, 2, 6, 6], 2, 4, 2, 1), ([2, 1, 5, 4], 2, 3, 2, 0)]
    {
        let ws = [co, xs[1], k, k];
        let x = uniform(&mut rng, xs.iter().product(), -1.0, 1.0);
        let w = uniform(&mut rng, ws.iter().product(), -1.0, 1.0);
        check_first_order(
            &format!("conv2d {xs:?} k{k} s{stride} p{pad}"),
            &[(xs.to_vec(), x.clone()), (ws.to_vec(), w.clone())],
            |t| t[0].conv2d(&t[1], stride, pad),
            |v| cpu::conv2d(&v[0], xs, &v[1], ws, stride, pad),
            1e-3,
            1e-4,
        );
        // Second order through x with the weight fixed, and through w with x fixed: exercises
        // the conv / transposed conv / weight-gradient cycle of rules.
        let wt = common::tensor(&gpu(), &ws, &w);
        let wv = f64s(&f32s(&w));
        check_second_order(
            &format!("conv2d wrt x {xs:?}"),
            &xs,
            &x,
            |t| t.conv2d(&wt, stride, pad).tanh(),
            |v| cpu::unary(UnaryOp::Tanh, 0.0, 0.0, &cpu::conv2d(v, xs, &wv, ws, stride, pad)),
        );
        let xt = common::tensor(&gpu(), &xs, &x);
        let xv = f64s(&f32s(&x));
        check_second_order(
            &format!("conv2d wrt w {xs:?}"),
            &ws,
            &w,
            |t| xt.conv2d(t, stride, pad).tanh(),
            |v| cpu::unary(UnaryOp::Tanh, 0.0, 0.0, &cpu::conv2d(&xv, xs, v, ws, stride, pad)),
        );
    }
    for (xs, co, k, stride, pad, op) in [
        ([2usize, 3, 3, 3], 2usize, 4usize, 2usize, 1usize, 0usize),
        ([1, 2, 2, 3], 3, 3, 2, 1, 1),
        ([2, 2, 1, 1], 3, 4, 1, 0, 0),
    ] {
        let ws = [xs[1], co, k, k];
        let x = uniform(&mut rng, xs.iter().product(), -1.0, 1.0);
        let w = uniform(&mut rng, ws.iter().product(), -1.0, 1.0);
        let oh = (xs[2] - 1) * stride + k + op - 2 * pad;
        let ow = (xs[3] - 1) * stride + k + op - 2 * pad;
        check_first_order(
            &format!("conv_transpose2d {xs:?} k{k} s{stride} p{pad} op{op}"),
            &[(xs.to_vec(), x.clone()), (ws.to_vec(), w.clone())],
            |t| t[0].conv_transpose2d(&t[1], stride, pad, op),
            |v| cpu::conv_transpose2d(&v[0], xs, &v[1], ws, stride, pad, oh, ow),
            1e-3,
            1e-4,
        );
        let xt = common::tensor(&gpu(), &xs, &x);
        let xv = f64s(&f32s(&x));
        check_second_order(
            &format!("conv_transpose2d wrt w {xs:?}"),
            &ws,
            &w,
            |t| xt.conv_transpose2d(t, stride, pad, op).tanh(),
            |v| cpu::unary(UnaryOp::Tanh, 0.0, 0.0, &cpu::conv_transpose2d(&xv, xs, v, ws, stride, pad, oh, ow)),
        );
    }
}

#[test]
fn fused_normalisation_second_order() {
    // Batch, instance and layer norm run fused kernels; asking for a gradient of their gradient
    // switches their backward to the composite formula, which must agree with the nested finite
    // differences (and WGAN-GP's critic relies on it).
    let mut rng = rng("normalisation second order");
    let shape = [3usize, 2, 2, 3];
    let x = uniform(&mut rng, 36, -1.5, 1.5);
    let gamma = vec![1.3, 0.6];
    let beta = vec![0.2, -0.4];
    let gpu = gpu();
    let (gt, bt) = (common::tensor(&gpu, &[2], &gamma), common::tensor(&gpu, &[2], &beta));
    let (rm, rv) = (Tensor::zeros(&gpu, &[2]), Tensor::ones(&gpu, &[2]));
    check_second_order(
        "batch norm",
        &shape,
        &x,
        |t| t.batch_norm_train(&gt, &bt, &rm, &rv, 0.1, 1e-5).tanh(),
        |v| cpu::unary(UnaryOp::Tanh, 0.0, 0.0, &cpu::batch_norm_train(v, 3, 2, 6, &gamma, &beta, 1e-5).0),
    );
    check_second_order(
        "instance norm",
        &shape,
        &x,
        |t| t.instance_norm(1e-5).tanh(),
        |v| cpu::unary(UnaryOp::Tanh, 0.0, 0.0, &cpu::normalize_groups(v, 6, 1e-5)),
    );
    check_second_order(
        "layer norm",
        &shape,
        &x,
        |t| t.layer_norm(1e-5).tanh(),
        |v| cpu::unary(UnaryOp::Tanh, 0.0, 0.0, &cpu::normalize_groups(v, 12, 1e-5)),
    );
}

/// CPU terms of the fused losses (loss.wgsl), in f64.
fn loss_terms_cpu(kind: LossKind, x: &[f64], t: &[f64]) -> Vec<f64> {
    x.iter()
        .zip(t)
        .map(|(&v, &t)| match kind {
            LossKind::BceWithLogits => v.max(0.0) + (-v.abs()).exp().ln_1p() - v * t,
            LossKind::SquaredError => (v - t) * (v - t),
            LossKind::AbsoluteError => (v - t).abs(),
        })
        .collect()
}

#[test]
fn fused_loss_terms_first_and_second_order() {
    // Each loss's terms and gradient come from one pass; its backward scales the saved
    // gradient (first order) or differentiates the formula as ops (second order). Logits reach
    // +-6 (where a naive softplus or sigmoid loses precision); targets are soft labels. The
    // distances stay within +-1.5: their second order grows as (x - t)^5, and the nested
    // finite differences' rounding with it.
    let mut rng = rng("fused losses");
    let shape = vec![3usize, 5];
    for kind in [LossKind::BceWithLogits, LossKind::SquaredError, LossKind::AbsoluteError] {
        let reach = if kind == LossKind::BceWithLogits { 6.0 } else { 1.5 };
        let x = away_from_kinks(uniform(&mut rng, 15, -reach, reach), &[0.0]);
        let t = uniform(&mut rng, 15, 0.0, 1.0);
        // |x - t| has a kink at x = t: keep the points apart from it.
        let x: Vec<f64> = x.iter().zip(&t).map(|(&v, &t)| if (v - t).abs() < 0.05 { v + 0.1 } else { v }).collect();
        let what = format!("{kind:?}");
        check_first_order(
            &what,
            &[(shape.clone(), x.clone()), (shape.clone(), t.clone())],
            |l| l[0].loss_terms(kind, &l[1]),
            |v| loss_terms_cpu(kind, &v[0], &v[1]),
            1e-4,
            1e-5,
        );
        let tt = common::tensor(&gpu(), &shape, &f64s(&f32s(&t)));
        let t32 = f64s(&f32s(&t));
        check_second_order(&what, &shape, &x, |l| l.loss_terms(kind, &tt), |v| loss_terms_cpu(kind, v, &t32));
    }
}
