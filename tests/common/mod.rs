//! Shared test helpers: the device (a test fails, never skips, without one), seeded random
//! inputs, tolerance comparison that prints the first differing values, finite differences.
#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shadergan::{Gpu, Tensor};

mod compare;
// Each test binary uses some of these.
#[allow(unused_imports)]
pub use compare::{assert_close, finite_diff};

pub fn gpu() -> Gpu {
    match Gpu::default_device() {
        Ok(gpu) => gpu,
        Err(e) => panic!("GPU tests need an adapter (lavapipe in CI): {e}"),
    }
}

/// A device that asks for no more than WebGPU's default limits (`SHADERGAN_LIMITS=webgpu`): a
/// 128 MiB storage binding on every driver, for tests of what happens at the limit.
pub fn webgpu_limited_gpu() -> Gpu {
    let options = shadergan::GpuOptions { webgpu_limits: true, ..shadergan::GpuOptions::from_env() };
    Gpu::new(&options).unwrap_or_else(|e| panic!("GPU tests need an adapter (lavapipe in CI): {e}"))
}

/// The environment's device options with these `SHADERGAN_KERNELS` switches (e.g.
/// "storage-only,patch-matrix"), for a private device whose path a test chooses.
pub fn options_with(switches: &str) -> shadergan::GpuOptions {
    let kernels = shadergan::gpu::KernelSwitches::parse(switches).expect("test switches parse");
    shadergan::GpuOptions { kernels, ..shadergan::GpuOptions::from_env() }
}

/// What `f` returns, and the profile keys (shader::entry, grid, note, constants) of the
/// dispatches it recorded, run to completion.
pub fn profiled<T>(gpu: &Gpu, f: impl FnOnce() -> T) -> (T, Vec<String>) {
    gpu.profile_start();
    let out = f();
    gpu.synchronize();
    (out, gpu.profile_report().into_iter().map(|r| r.0).collect())
}

/// Fresh random values each run; the seed is printed so a failure can be replayed with
/// SHADERGAN_TEST_SEED.
pub fn rng(label: &str) -> ChaCha8Rng {
    let seed = std::env::var("SHADERGAN_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random::<u64>());
    eprintln!("[{label}] seed {seed}");
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn uniform(rng: &mut impl Rng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

pub fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// tests/fixtures/tiny-dcgan.toml with its data paths made absolute: a DCGAN small enough to
/// train a few steps in a test.
pub fn tiny_dcgan() -> shadergan::config::Config {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("tests/fixtures/tiny-dcgan.toml")).unwrap();
    let mut c = shadergan::config::Config::parse(&text, std::path::Path::new("tiny-dcgan.toml")).unwrap();
    c.data.images = root.join(&c.data.images);
    c.data.labels = c.data.labels.map(|l| root.join(l));
    c
}

/// configs/cyclegan-digits.toml shrunk to 16x16 images, 8 per domain, batch 8 and width-4
/// networks: a CycleGAN that trains a few steps in a test.
#[allow(dead_code)]
pub fn tiny_cyclegan() -> shadergan::config::CycleConfig {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("configs/cyclegan-digits.toml")).unwrap();
    let mut c = shadergan::config::CycleConfig::parse(&text, std::path::Path::new("cyclegan-digits.toml")).unwrap();
    for d in [&mut c.domain_x, &mut c.domain_y] {
        d.images = root.join(&d.images);
        d.labels = d.labels.as_ref().map(|l| root.join(l));
        d.image_size = 16;
        d.limit = 8;
    }
    (c.model.g_width, c.model.blocks, c.model.d_width, c.model.d_layers) = (4, 1, 4, 1);
    c.train.batch_size = 8;
    c
}

pub fn tensor(gpu: &Gpu, shape: &[usize], data: &[f64]) -> Tensor {
    Tensor::from_vec(gpu, shape, &f32s(data))
}

/// Sum of squares: a loss whose upstream gradient 2y differs per element.
pub fn sum_sq(y: &[f64]) -> f64 {
    y.iter().map(|v| v * v).sum()
}
