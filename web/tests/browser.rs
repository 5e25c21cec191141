//! The engine in a real browser (headless Chromium's WebGPU in CI; `bash web/test.sh`): kernels
//! against the f64 references on fresh random inputs at odd shapes, a second-order gradient
//! against finite differences, and DCGAN steps against the losses the native build records.
//! Every read is awaited: a browser cannot block on its GPU.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shadergan::reference as cpu;
use shadergan::train::codes::generate_async;
use shadergan::{grad, grad_with, Gpu, GpuOptions, GradOptions, Tensor};
use shadergan_web::{Sampler, Session};
use wasm_bindgen_test::*;

#[path = "../../tests/common/compare.rs"]
mod compare;
use compare::{assert_close, finite_diff};

wasm_bindgen_test_configure!(run_in_browser);

#[allow(dead_code)]
mod recorded {
    include!("../../tests/fixtures/recorded_losses.rs");
}
use recorded::RECORDED_DCGAN;

async fn gpu() -> Gpu {
    Gpu::new_async(&GpuOptions::default()).await.unwrap_or_else(|e| panic!("the browser's WebGPU: {e}"))
}

/// A fresh seed each run, printed so a failure can be replayed.
fn rng(label: &str) -> ChaCha8Rng {
    let seed = (js_sys_now() * 1000.0) as u64 ^ label.len() as u64;
    web_sys_log(&format!("[{label}] seed {seed}"));
    ChaCha8Rng::seed_from_u64(seed)
}

fn js_sys_now() -> f64 {
    wasm_bindgen_futures::js_sys::Date::now()
}

fn web_sys_log(line: &str) {
    wasm_bindgen_test::console_log!("{line}");
}

/// Values in [lo, hi) rounded to f32, as f64 for the references.
fn uniform(rng: &mut ChaCha8Rng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(lo..hi) as f32 as f64).collect()
}

fn tensor(gpu: &Gpu, shape: &[usize], values: &[f64]) -> Tensor {
    Tensor::from_vec(gpu, shape, &values.iter().map(|&v| v as f32).collect::<Vec<_>>())
}

#[wasm_bindgen_test]
async fn matmuls_match_the_reference_at_odd_shapes() {
    let gpu = gpu().await;
    web_sys_log(&format!("adapter: {}", shadergan::gpu::describe(gpu.info())));
    let mut rng = rng("matmul");
    for (batch, m, k, n) in [(1, 1, 1, 1), (1, 37, 19, 23), (2, 64, 64, 64), (3, 5, 130, 9)] {
        let a = uniform(&mut rng, batch * m * k, -1.0, 1.0);
        let b = uniform(&mut rng, batch * k * n, -1.0, 1.0);
        let got = tensor(&gpu, &[batch, m, k], &a).matmul(&tensor(&gpu, &[batch, k, n], &b)).to_vec_async().await;
        let want = cpu::matmul(&a, &b, batch, m, k, n, false, false);
        assert_close(&format!("matmul {batch}x{m}x{k}x{n}"), &got, &want, 1e-4, 1e-5);
    }
}

#[wasm_bindgen_test]
async fn convolutions_match_the_reference() {
    let gpu = gpu().await;
    let mut rng = rng("conv");
    // DCGAN's 4x4 stride-2 layers and an odd 3x3 one.
    for (xs, co, k, stride, pad) in
        [([2, 3, 16, 16], 8, 4, 2, 1), ([3, 5, 7, 9], 4, 3, 1, 1), ([1, 8, 8, 8], 16, 4, 2, 1)]
    {
        let ws = [co, xs[1], k, k];
        let x = uniform(&mut rng, xs.iter().product(), -1.0, 1.0);
        let w = uniform(&mut rng, ws.iter().product(), -1.0, 1.0);
        let got = tensor(&gpu, &xs, &x).conv2d(&tensor(&gpu, &ws, &w), stride, pad).to_vec_async().await;
        let want = cpu::conv2d(&x, xs, &w, ws, stride, pad);
        assert_close(&format!("conv2d {xs:?} k{k} s{stride} p{pad}"), &got, &want, 1e-4, 1e-5);
        // The transposed direction at the same geometry: the convolution's input gradient.
        let ts = [xs[0], co, (xs[2] + 2 * pad - k) / stride + 1, (xs[3] + 2 * pad - k) / stride + 1];
        let dy = uniform(&mut rng, ts.iter().product(), -1.0, 1.0);
        let out = tensor(&gpu, &ts, &dy).conv_transpose2d(&tensor(&gpu, &ws, &w), stride, pad, 0);
        let (oh, ow) = (out.shape()[2], out.shape()[3]);
        let want = cpu::conv_transpose2d(&dy, ts, &w, [co, xs[1], k, k], stride, pad, oh, ow);
        assert_close(&format!("conv_transpose2d {ts:?} k{k} s{stride}"), &out.to_vec_async().await, &want, 1e-4, 1e-5);
    }
}

/// The gradient penalty of y = tanh(x W): gp(W) = sum((dy/dx summed)^2), whose gradient in W
/// needs the second order through the matmul and tanh; in f64 on the CPU for the reference.
fn penalty_f64(x: &[f64], w: &[f64], (m, k, n): (usize, usize, usize)) -> f64 {
    let mut gx = vec![0.0; m * k];
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k).map(|q| x[i * k + q] * w[q * n + j]).sum();
            let d = 1.0 - s.tanh().powi(2);
            for q in 0..k {
                gx[i * k + q] += d * w[q * n + j];
            }
        }
    }
    gx.iter().map(|g| g * g).sum()
}

#[wasm_bindgen_test]
async fn second_order_gradients_match_finite_differences() {
    let gpu = gpu().await;
    let mut rng = rng("second order");
    let dims = (3, 5, 4);
    let x = uniform(&mut rng, dims.0 * dims.1, -1.0, 1.0);
    let w = uniform(&mut rng, dims.1 * dims.2, -1.0, 1.0);
    let xt = tensor(&gpu, &[dims.0, dims.1], &x).requires_grad();
    let wt = tensor(&gpu, &[dims.1, dims.2], &w).requires_grad();
    let y = xt.matmul(&wt).tanh().sum_all();
    let gx = grad_with(&y, &[&xt], GradOptions::default().create_graph()).remove(0);
    let gp = gx.mul(&gx).sum_all();
    let got = grad(&gp, &[&wt]).remove(0).to_vec_async().await;
    let want = finite_diff(&w, |w| penalty_f64(&x, w, dims), 1e-5);
    assert_close("d gp / dW", &got, &want, 2e-3, 2e-3);
}

#[wasm_bindgen_test]
async fn dcgan_steps_give_the_native_builds_recorded_losses() {
    let config = include_str!("../../tests/fixtures/tiny-dcgan.toml");
    let images = include_bytes!("../../assets/mnist-train-images-idx3-ubyte.gz");
    let mut session = Session::open(config, images).await.expect("the tiny DCGAN opens");
    let mut got = Vec::new();
    for _ in 0..3 {
        let s = session.step().await.expect("a step");
        got.extend([s.d_loss, s.g_loss, s.d_real, s.d_fake]);
    }
    web_sys_log(&format!("DCGAN in the browser: {got:?}"));
    for (i, (g, w)) in got.iter().zip(RECORDED_DCGAN).enumerate() {
        assert!((g - w).abs() <= 2e-3 * w.abs().max(0.1), "[{i}] got {g}, recorded {w} (all: {got:?})");
    }
}

#[wasm_bindgen_test]
async fn a_config_without_enough_images_is_refused_with_the_key_named() {
    let config = include_str!("../../tests/fixtures/tiny-dcgan.toml").replace("limit = 64", "limit = 4");
    let images = include_bytes!("../../assets/mnist-train-images-idx3-ubyte.gz");
    let err = Session::open(&config, images).await.err().expect("4 images for a batch of 8 are refused");
    assert!(err.contains("train.batch_size") && err.contains("4 images"), "{err}");
    let ada = include_str!("../../tests/fixtures/tiny-dcgan.toml")
        .replace("seed = 7", "seed = 7\ndiffaugment = \"translation\"\nada_target = 0.6");
    let err = Session::open(&ada, images).await.err().expect("ADA is refused in a browser");
    assert!(err.contains("train.ada_target = 0.6") && err.contains("not available in a browser"), "{err}");
}

#[wasm_bindgen_test]
async fn a_downloaded_checkpoint_reopens_with_the_generator_it_was_saved_from() {
    let config = include_str!("../../tests/fixtures/tiny-dcgan.toml");
    let images = include_bytes!("../../assets/mnist-train-images-idx3-ubyte.gz");
    let mut session = Session::open(config, images).await.expect("the tiny DCGAN opens");
    for _ in 0..2 {
        session.step().await.expect("a step");
    }
    let bytes = session.model_file().await.expect("the page's model.safetensors");
    let want = session.trainer.generate_fixed_async().await;
    let sampler = Sampler::open_on(session.gpu.clone(), &bytes, "model.safetensors").expect("the file reopens");
    let codes = session.trainer.fixed_codes();
    let got = generate_async(&sampler.gpu, &sampler.config, &sampler.generator, &codes).await;
    assert_close("reopened G(fixed z)", &got, &to_f64(&want), 1e-6, 1e-6);
    let (samples, columns) = sampler.samples(10, 3).await.expect("ten samples");
    assert_eq!((samples.len(), columns), (10 * 16 * 16, 4));
    assert!(samples.iter().all(|v| (-1.0..=1.0).contains(v)), "samples are tanh outputs");

    // What a page reports for a file that is not one, or is cut short.
    let not_one = Sampler::open_on(session.gpu.clone(), config.as_bytes(), "config.toml").err().expect("refused");
    assert!(not_one.contains("config.toml") && not_one.contains("not a valid safetensors file"), "{not_one}");
    let cut =
        Sampler::open_on(session.gpu.clone(), &bytes[..bytes.len() / 2], "cut.safetensors").err().expect("refused");
    assert!(cut.contains("cut.safetensors") && cut.contains("not a valid safetensors file"), "{cut}");
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}
